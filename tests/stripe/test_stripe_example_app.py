"""The example app takes payments through Stripe when Stripe's settings are in the
environment (#11 item 4); without them it keeps Sandbox Pay (tests/test_example_app.py).

Here the environment points it at localstripe, and alice buys Small through its pages:
the card goes into the embedded form (confirmed as Stripe.js would, at localstripe), and
the purchase is a PaymentIntent at localstripe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from example_app import create_app, prepare
from example_app.models import db
from flask_subscriptions.gateways.stripe import EXTENSION_KEY, StripeGateway
from flask_subscriptions.models import Payment, PaymentMethod, Subscription

from ..flows import choose_card, local_path, place, post_form, start_order
from ..test_example_app import sign_in_as
from .conftest import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET


@pytest.fixture
def stripe_example(
    tmp_path: Path, localstripe: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("SUBSCRIPTIONS_STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("SUBSCRIPTIONS_STRIPE_PUBLISHABLE_KEY", PUBLISHABLE_KEY)
    monkeypatch.setenv("SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SUBSCRIPTIONS_STRIPE_API_BASE", localstripe)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "SUBSCRIPTIONS_SCHEDULER_ENABLED": False,
            "SECRET_KEY": "example-app-tests",
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        prepare()  # what `flask --app example_app setup` (make demo) does
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def _register_on_the_embedded_form(client: FlaskClient, localstripe: str) -> None:
    page = post_form(client, "/billing/payment-methods", "/billing/payment-methods/register")
    assert page.status_code == 200, page.text
    assert 'id="subs-card-element"' in page.text and f"{localstripe}/js.stripe.com/v3/" in page.text
    secret = re.search(r'"(seti_\w+_secret_\w+)"', page.text)
    back = re.search(r'returnUrl: ("[^"]+")', page.text)
    assert secret and back
    reference = secret[1].split("_secret_")[0]
    # What Stripe.js does with the card typed into Stripe's fields: localstripe only.
    at_stripe = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe})
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    at_stripe.v1.setup_intents.confirm(
        reference,
        params={"payment_method_data": {"type": "card", "card": card}},  # type: ignore[typeddict-item]
    )
    return_url = local_path(json.loads(back[1]))
    joiner = "&" if "?" in return_url else "?"
    landed = client.get(f"{return_url}{joiner}setup_reference={reference}")
    assert landed.status_code == 302, landed.text


def test_the_example_app_buys_a_plan_through_stripe_when_configured_R_EX_1(
    stripe_example: Flask, localstripe: str
) -> None:
    assert isinstance(stripe_example.extensions[EXTENSION_KEY].gateway, StripeGateway)
    assert "sandbox_pay" not in stripe_example.extensions
    client = stripe_example.test_client()
    sign_in_as(client, "alice")
    _register_on_the_embedded_form(client, localstripe)
    with stripe_example.app_context():
        card = db.session.scalars(select(PaymentMethod)).one()
        card_id = card.id
        assert (card.gateway, card.last4, card.token[:3]) == ("stripe", "4242", "pm_")
    key = start_order(client, "small")
    assert choose_card(client, key, card_id).status_code == 302
    placed = place(client, key)
    assert placed.status_code == 302, placed.text
    done = client.get(local_path(placed.headers["Location"]))
    assert "Thank you for your order" in done.text and "$100.00" in done.text
    with stripe_example.app_context():
        payment = db.session.scalars(select(Payment)).one()
        assert (payment.gateway, payment.status, payment.amount) == ("stripe", "succeeded", 10000)
        assert db.session.scalar(select(Subscription.state)) == "active"
        intent_id = payment.charge_id or ""
    at_stripe = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe})
    intent = at_stripe.v1.payment_intents.retrieve(intent_id)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 10000, "usd")
    home = client.get("/")
    assert "Small" in home.text
