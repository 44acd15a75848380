"""Checkout step 3's **Use another card** with Stripe Elements: the card is registered on
a checkout page and the browser comes back to step 3 with it selected (R-BUY-4).

The browser version (localstripe's Stripe.js in Chromium) is in ``test_stripe_live.py``.
"""

from __future__ import annotations

import json
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.models import Order, PaymentMethod

from ..conftest import sign_in
from ..factories import add_card
from ..flows import choose_card, local_path, place, post_form, start_order
from ..hosts import User, db
from .driver import LocalStripeGateway


def test_use_another_card_registers_it_in_checkout_and_selects_it_R_BUY_4(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    add_card(alice)  # a Visa already registered, and the default
    sign_in(client, alice)
    key = start_order(client)
    step3 = f"/billing/orders/{key}/payment"
    form = post_form(client, step3, f"/billing/orders/{key}/new-card")
    assert form.status_code == 200, form.text
    assert "Use another card" in form.text and 'aria-current="step">3. Payment method' in form.text
    assert 'id="subs-card-element"' in form.text and "pk_test_localstripe" in form.text
    assert 'name="number"' not in form.text and 'name="cvc"' not in form.text  # R-SEC-1
    secret = re.search(r'"(seti_\w+_secret_\w+)"', form.text)
    back = re.search(r'returnUrl: ("[^"]+")', form.text)
    assert secret and back
    return_url = json.loads(back[1])
    assert local_path(return_url) == f"/billing/payment-methods/return?next={step3}"

    reference = secret[1].split("_secret_")[0]
    gateway.register_card(reference, "4000056655665556", 12, 2031)  # Stripe.js, in the page
    landed = client.get(f"{local_path(return_url)}&setup_reference={reference}")
    assert landed.status_code == 302
    new = db.session.scalars(select(PaymentMethod).where(PaymentMethod.last4 == "5556")).one()
    assert local_path(landed.headers["Location"]) == f"{step3}?card={new.id}"

    page = client.get(local_path(landed.headers["Location"]))
    assert "Visa •••• 5556 registered." in page.text
    checked = re.search(r'value="(\d+)" checked', page.text)
    assert checked and int(checked[1]) == new.id
    assert choose_card(client, key, new.id).status_code == 302
    assert place(client, key).status_code == 302
    db.session.expire_all()
    order = db.session.scalar(select(Order).where(Order.key == key))
    assert order is not None and (order.state, order.payment_method_id) == ("paid", new.id)


def test_use_another_card_cancelled_goes_back_to_step_3_R_BUY_4(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    sign_in(client, alice)
    key = start_order(client)
    form = post_form(client, f"/billing/orders/{key}/payment", f"/billing/orders/{key}/new-card")
    cancel = re.search(r'href="([^"]*setup_cancelled=1)"', form.text)
    assert cancel
    answer = client.get(local_path(cancel[1].replace("&amp;", "&")))
    assert local_path(answer.headers["Location"]) == f"/billing/orders/{key}/payment"
    assert db.session.scalars(select(PaymentMethod)).all() == []
