"""Stripe's webhooks at /billing/stripe/webhook: verified, once per event, in any order.

The events are localstripe's own (``GET /v1/events``), signed the way Stripe (and
localstripe's sender) signs them; a few are built from localstripe's objects where
localstripe sends none (``payment_method.detached``) or to replay an older state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions import signals
from flask_subscriptions.models import (
    BillingProfile,
    Order,
    Payment,
    PaymentMethod,
    ProcessedEvent,
)
from flask_subscriptions.services import checkout, payment_methods

from ..factories import add_card
from ..flows import THREE_D_SECURE
from ..hosts import User, db
from . import driver as faults
from .conftest import WEBHOOK_SECRET
from .driver import LocalStripeGateway

WEBHOOK = "/billing/stripe/webhook"


def sign(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def deliver(client: FlaskClient, event: dict[str, Any], **signing: Any) -> Any:
    body = json.dumps(event).encode()
    return client.post(
        WEBHOOK,
        data=body,
        headers={"Stripe-Signature": sign(body, **signing), "Content-Type": "application/json"},
    )


def stripe_event(gateway: LocalStripeGateway, kind: str, object_id: str) -> dict[str, Any]:
    """The event localstripe recorded for ``object_id`` (what it would deliver)."""
    found = gateway.client.v1.events.list(params={"type": kind, "limit": 100})
    [event] = [e.to_dict() for e in found.data if e.data.object["id"] == object_id]
    return event


def built_event(kind: str, obj: dict[str, Any], event_id: str) -> dict[str, Any]:
    created = int(time.time())
    return {"id": event_id, "object": "event", "type": kind, "created": created,
            "livemode": False, "data": {"object": obj}}  # fmt: skip


@pytest.fixture
def succeeded_signals(app: Flask) -> Iterator[list[int]]:
    received: list[int] = []

    def record(_sender: object, **kwargs: Any) -> None:
        received.append(kwargs["payment_id"])

    signals.payment_succeeded.connect(record)
    yield received
    signals.payment_succeeded.disconnect(record)


@pytest.fixture
def waiting(app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway) -> Payment:
    """A purchase whose charge waits for 3-D Secure; the person then approves it at their
    bank, and no one has come back to our site yet."""
    card = add_card(alice, THREE_D_SECURE)
    order = checkout.start_order("small", "month", "USD", [], alice)
    checkout.choose_payment_method(order, alice, card.id)
    view = checkout.view_order(order, alice)
    placed = checkout.place_order(order.key, alice, view.quote.fingerprint, return_url="/back")
    assert placed.state == "charging"
    payment = db.session.scalars(select(Payment)).one()
    assert payment.status == "requires_action"
    db.session.commit()
    gateway.complete_authentication(payment.charge_id or "", succeeded=True)
    return payment


def _state(payment_id: int) -> tuple[str, str]:
    db.session.expire_all()
    payment = db.session.get(Payment, payment_id)
    assert payment is not None
    order_state = db.session.scalar(
        select(Order.state).where(Order.invoice_id == payment.invoice_id)
    )
    return payment.status, str(order_state)


def _remembered() -> int:
    return int(db.session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)


def test_a_payment_approved_at_the_bank_is_recorded_from_the_webhook(
    client: FlaskClient, gateway: LocalStripeGateway, waiting: Payment, succeeded_signals: list[int]
) -> None:
    event = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    answer = deliver(client, event)
    assert answer.status_code == 200 and answer.json["outcome"] == "recorded"
    assert _state(waiting.id) == ("succeeded", "paid")
    assert succeeded_signals == [waiting.id]


def test_a_replayed_event_is_handled_once(
    client: FlaskClient, gateway: LocalStripeGateway, waiting: Payment, succeeded_signals: list[int]
) -> None:
    event = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    outcomes = [deliver(client, event).json["outcome"] for _ in range(3)]
    assert outcomes == ["recorded", "duplicate", "duplicate"]
    assert _state(waiting.id) == ("succeeded", "paid")
    assert succeeded_signals == [waiting.id] and _remembered() == 1


@pytest.mark.parametrize("stale_first", [True, False])
def test_events_in_any_order_leave_the_payment_as_stripe_has_it(
    client: FlaskClient,
    gateway: LocalStripeGateway,
    waiting: Payment,
    succeeded_signals: list[int],
    stale_first: bool,
) -> None:
    """An older "payment failed" delivered before or after "succeeded" cannot undo it:
    each event only says "ask Stripe", and Stripe says the payment succeeded."""
    succeeded = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    old = dict(succeeded["data"]["object"], status="requires_payment_method",
               last_payment_error={"code": "card_declined", "message": "Declined."})  # fmt: skip
    stale = built_event("payment_intent.payment_failed", old, "evt_stale_failure")
    order = [stale, succeeded] if stale_first else [succeeded, stale]
    outcomes = [deliver(client, event).json["outcome"] for event in order]
    assert sorted(outcomes) == ["recorded", "unchanged"]
    assert _state(waiting.id) == ("succeeded", "paid")
    assert succeeded_signals == [waiting.id] and _remembered() == 2


@pytest.mark.parametrize(
    "forge",
    [
        {"secret": "whsec_someone_else"},
        {"at": int(time.time()) - 3600},  # an old delivery replayed by a third party
        "tampered",
        "unsigned",
    ],
)
def test_a_forged_event_is_refused_and_changes_nothing(
    client: FlaskClient, gateway: LocalStripeGateway, waiting: Payment, forge: Any
) -> None:
    event = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    if forge == "tampered":
        body = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign(body)}
        body = body.replace(b'"succeeded"', b'"canceled"')
        answer = client.post(WEBHOOK, data=body, headers=headers)
    elif forge == "unsigned":
        answer = client.post(WEBHOOK, data=json.dumps(event))
    else:
        answer = deliver(client, event, **forge)
    assert answer.status_code == 400
    assert _state(waiting.id) == ("requires_action", "charging")
    assert _remembered() == 0


def test_an_event_is_not_remembered_when_stripe_cannot_be_asked(
    client: FlaskClient, gateway: LocalStripeGateway, waiting: Payment
) -> None:
    """Stripe delivers it again after a 503; then it is handled."""
    event = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    gateway.faults.fail_before = faults.about_payment_intents
    assert deliver(client, event).status_code == 503
    assert _state(waiting.id) == ("requires_action", "charging") and _remembered() == 0
    gateway.faults.fail_before = None
    assert deliver(client, event).json["outcome"] == "recorded"
    assert _state(waiting.id) == ("succeeded", "paid")


def test_events_about_payment_intents_not_ours_are_ignored(
    client: FlaskClient, gateway: LocalStripeGateway, waiting: Payment
) -> None:
    event = stripe_event(gateway, "payment_intent.succeeded", waiting.charge_id or "")
    intent = event["data"]["object"]
    foreign = built_event("payment_intent.succeeded", dict(intent, metadata={}), "evt_foreign")
    # Same key, another PaymentIntent: one that lost the race for the key, say.
    loser = built_event("payment_intent.succeeded", dict(intent, id="pi_loser"), "evt_loser")
    unknown = built_event("customer.created", {"id": "cus_x", "object": "customer"}, "evt_c")
    assert [deliver(client, e).json["outcome"] for e in (foreign, loser, unknown)] == [
        "ignored",
        "ignored",
        "ignored",
    ]
    assert _state(waiting.id) == ("requires_action", "charging") and _remembered() == 3


def test_a_card_detached_at_stripe_is_removed_here(
    app: Flask, client: FlaskClient, alice: User, gateway: LocalStripeGateway
) -> None:
    first, second = add_card(alice), add_card(alice, "5555 5555 5555 4444")
    payment_methods.set_default(alice, first.id)
    first_id, second_id, token = first.id, second.id, first.token
    db.session.commit()
    detached = gateway.client.v1.payment_methods.detach(token).to_dict()
    event = built_event("payment_method.detached", detached, "evt_detached")
    assert deliver(client, event).json["outcome"] == "card removed"
    assert deliver(client, event).json["outcome"] == "duplicate"
    again = built_event("payment_method.detached", detached, "evt_detached_again")
    assert deliver(client, again).json["outcome"] == "unchanged"
    db.session.expire_all()
    assert db.session.get(PaymentMethod, first_id).removed_at is not None
    # the owner's choice goes with the card; the other card never paid: no default (R-DUN-5)
    assert db.session.scalar(select(BillingProfile.default_payment_method_id)) is None
    assert payment_methods.default_method_id(alice.billing_id) is None
    assert second_id != first_id
