"""A renewal the bank wants confirmed (3-D Secure), with Stripe (localstripe) as the gateway.

The off-session PaymentIntent of the April 17 renewal answers ``requires_action``; the
owner's e-mail links to our page, whose button opens the adapter's Stripe.js page
(``confirmCardPayment``) told to come back to ours; back there, the PaymentIntent is looked
up and its outcome recorded.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.models import Invoice, Payment, Subscription
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_due

from ..conftest import Outbox, at_noon, sign_in
from ..factories import add_card, renewal_attempts, subscribe
from ..flows import THREE_D_SECURE, local_path
from ..hosts import User, db
from .driver import LocalStripeGateway


def _waiting_renewal(alice: User, clock: Any) -> Payment:
    subscribe(alice)
    secure = add_card(alice, THREE_D_SECURE)
    payment_methods.set_default(alice, secure.id)
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().pending == 1
    [payment] = renewal_attempts()
    assert payment.status == "requires_action" and (payment.charge_id or "").startswith("pi_")
    return payment


def _stripe_page(client: FlaskClient, our_page: str) -> str:
    page = client.get(our_page)
    assert page.status_code == 200, page.text
    button = re.search(r'href="([^"]*/billing/stripe/authenticate/[^"]+)"', page.text)
    assert button, page.text
    return local_path(button[1].replace("&amp;", "&"))


def test_a_stripe_renewal_waiting_for_3ds_is_confirmed_on_our_pages_R_REN_1_R_DUN_1(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    clock: Any,
    gateway: LocalStripeGateway,
    outbox: Outbox,
) -> None:
    payment = _waiting_renewal(alice, clock)
    subscription = db.session.scalar(select(Subscription))
    assert subscription is not None and status_of(subscription) == "Payment failed"
    [mail] = outbox.of_kind("payment_action_required")
    assert "$100.00" in mail.text_body and "Visa ending in 3184" in mail.text_body
    our_page = f"/billing/payments/{payment.id}/authenticate"
    assert f"http://host.test{our_page}" in mail.text_body

    at_noon(clock, date(2026, 4, 18))
    run_dunning()  # waits for the card holder: no second PaymentIntent
    assert len(renewal_attempts()) == 1

    sign_in(client, alice)
    stripe_page = client.get(_stripe_page(client, our_page))
    assert stripe_page.status_code == 200, stripe_page.text
    assert "confirmCardPayment" in stripe_page.text and "$100.00" in stripe_page.text
    secret = re.search(r'clientSecret: ("[^"]+")', stripe_page.text)
    back = re.search(r'returnUrl: ("[^"]+")', stripe_page.text)
    assert secret and json.loads(secret[1]).startswith(f"{payment.charge_id}_secret_")
    assert back and json.loads(back[1]) == f"http://host.test{our_page}"

    gateway.complete_authentication(payment.charge_id or "", succeeded=True)  # Stripe.js
    done = client.get(our_page)
    assert "Thank you: the payment is complete." in done.text
    [paid] = renewal_attempts()
    assert paid.status == "succeeded"
    assert db.session.get(Invoice, paid.invoice_id).status == "paid"  # type: ignore[union-attr]
    db.session.expire_all()
    subscription = db.session.scalar(select(Subscription))
    assert subscription is not None and status_of(subscription) == "Enabled"
    assert "renewal_receipt" in outbox.kinds()
    assert gateway.charge_count() == 2  # the purchase and this renewal, once each


def test_a_stripe_authentication_that_fails_is_a_declined_renewal_R_DUN_1(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    clock: Any,
    gateway: LocalStripeGateway,
    outbox: Outbox,
) -> None:
    payment = _waiting_renewal(alice, clock)
    gateway.complete_authentication(payment.charge_id or "", succeeded=False)
    sign_in(client, alice)
    page = client.get(f"/billing/payments/{payment.id}/authenticate")
    assert "The payment was not completed" in page.text
    [declined] = renewal_attempts()
    assert (declined.status, declined.decline_code) == (
        "declined",
        "payment_intent_authentication_failure",
    )
    assert len(outbox.of_kind("payment_failed")) == 1
