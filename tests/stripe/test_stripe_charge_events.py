"""Refunds made in Stripe's dashboard and disputes, from Stripe's webhooks (#11 item 3).

localstripe makes the refunds (as the dashboard would) but sends no ``charge.*`` events,
so those are built from localstripe's own objects and signed as Stripe signs them; a
dispute (which localstripe does not model) is built the way Stripe shapes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions import signals
from flask_subscriptions.models import Payment, ProcessedEvent
from flask_subscriptions.services.refund_records import record_refund

from ..conftest import Outbox
from ..factories import subscribe
from ..hosts import User, db
from .driver import LocalStripeGateway
from .test_stripe_webhooks import built_event, deliver


@pytest.fixture
def purchase(app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway) -> Payment:
    """Small, bought for $100.00: one succeeded PaymentIntent."""
    subscribe(alice)
    payment = db.session.scalars(select(Payment)).one()
    assert payment.status == "succeeded" and payment.amount == 10000
    db.session.commit()
    return payment


@pytest.fixture
def received(app: Flask) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    hooks = {
        "refunded": lambda _s, **kw: got.append(("refunded", kw)),
        "disputed": lambda _s, **kw: got.append(("disputed", kw)),
    }
    signals.payment_refunded.connect(hooks["refunded"])
    signals.payment_disputed.connect(hooks["disputed"])
    yield got
    signals.payment_refunded.disconnect(hooks["refunded"])
    signals.payment_disputed.disconnect(hooks["disputed"])


def _charge_of(gateway: LocalStripeGateway, intent_id: str) -> dict[str, Any]:
    [charge] = gateway.client.v1.charges.list(params={"limit": 100}).data
    assert charge.payment_intent == intent_id
    return charge.to_dict()


def _refund_in_dashboard(gateway: LocalStripeGateway, intent_id: str, amount: int) -> Any:
    return gateway.client.v1.refunds.create(params={"payment_intent": intent_id, "amount": amount})


def _refunds() -> list[tuple[int, str, int | None, str]]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(Payment).where(Payment.purpose == "refund").order_by(Payment.id)
    )
    return [(r.amount, r.status, r.refund_of_id, r.charge_id or "") for r in rows]


def _remembered() -> int:
    return int(db.session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)


def test_a_refund_made_in_the_dashboard_is_recorded_once(
    client: FlaskClient,
    gateway: LocalStripeGateway,
    purchase: Payment,
    received: list[tuple[str, dict[str, Any]]],
) -> None:
    intent = purchase.charge_id or ""
    refund = _refund_in_dashboard(gateway, intent, 3000)
    refunded = built_event("charge.refunded", _charge_of(gateway, intent), "evt_refunded")
    updated = built_event("charge.refund.updated", refund.to_dict(), "evt_refund_updated")
    outcomes = [deliver(client, e).json["outcome"] for e in (refunded, refunded, updated)]
    assert outcomes == ["refund recorded", "duplicate", "unchanged"]
    assert _refunds() == [(3000, "succeeded", purchase.id, refund.id)]
    assert db.session.get(Payment, purchase.id).status == "succeeded"  # type: ignore[union-attr]
    [our_refund] = db.session.scalars(select(Payment.id).where(Payment.purpose == "refund"))
    assert received == [
        ("refunded", {"account_id": "1", "payment_id": purchase.id,
                      "refund_id": our_refund, "amount": 3000,
                      "currency": "USD"}),
    ]  # fmt: skip
    assert _remembered() == 2


def test_partial_refunds_reported_in_any_order_are_each_recorded_once(
    client: FlaskClient, gateway: LocalStripeGateway, purchase: Payment
) -> None:
    intent = purchase.charge_id or ""
    first = _refund_in_dashboard(gateway, intent, 1000)
    second = _refund_in_dashboard(gateway, intent, 2500)
    late = built_event("charge.refund.updated", first.to_dict(), "evt_first")
    early = built_event("charge.refund.updated", second.to_dict(), "evt_second")
    charge = built_event("charge.refunded", _charge_of(gateway, intent), "evt_charge")
    assert deliver(client, early).json["outcome"] == "refund recorded, refund recorded"
    assert [deliver(client, e).json["outcome"] for e in (late, charge)] == [
        "unchanged",
        "unchanged",
    ]
    assert sorted(amount for amount, *_ in _refunds()) == [1000, 2500]


def test_a_refund_this_app_made_is_not_recorded_again(
    client: FlaskClient, gateway: LocalStripeGateway, purchase: Payment
) -> None:
    """A withdrawal paid back as a refund (``gateway.refund`` / ``payout``) carries our key."""
    intent = purchase.charge_id or ""
    db.session.commit()  # on SQLite, hold no transaction while the adapter writes its row
    assert gateway.refund(intent, 500, "withdrawal:test").status == "succeeded"
    event = built_event("charge.refunded", _charge_of(gateway, intent), "evt_ours")
    assert deliver(client, event).json["outcome"] == "unchanged"
    assert _refunds() == []


def test_a_refund_of_a_charge_not_ours_is_ignored(
    client: FlaskClient, gateway: LocalStripeGateway, purchase: Payment
) -> None:
    charge = dict(_charge_of(gateway, purchase.charge_id or ""), payment_intent="pi_not_ours")
    assert deliver(client, built_event("charge.refunded", charge, "evt_x")).json["outcome"] == (
        "ignored"
    )
    assert _refunds() == []


def test_a_pending_refund_moves_to_its_final_state_and_never_back(
    app: Flask, purchase: Payment
) -> None:
    """The service behind ``charge.refund.updated``: pending → succeeded; a late "pending"
    changes nothing."""
    intent = purchase.charge_id or ""
    assert record_refund("stripe", intent, "re_1", 700, "usd", "pending") == "refund recorded"
    assert record_refund("stripe", intent, "re_1", 700, "usd", "succeeded") == "refund updated"
    assert record_refund("stripe", intent, "re_1", 700, "usd", "pending") == "unchanged"
    assert record_refund("stripe", intent, "re_2", 700, "eur", "succeeded") == "ignored"
    assert _refunds() == [(700, "succeeded", purchase.id, "re_1")]


def _dispute(gateway: LocalStripeGateway, purchase: Payment, status: str, **extra: Any) -> Any:
    charge = _charge_of(gateway, purchase.charge_id or "")
    return {"id": "dp_1", "object": "dispute", "amount": purchase.amount, "currency": "usd",
            "charge": charge["id"], "payment_intent": purchase.charge_id, "status": status,
            "reason": "fraudulent", **extra}  # fmt: skip


@pytest.mark.parametrize("closed_first", [False, True])
def test_a_dispute_marks_the_payment_and_mails_the_owners_once(
    client: FlaskClient,
    gateway: LocalStripeGateway,
    purchase: Payment,
    outbox: Outbox,
    received: list[tuple[str, dict[str, Any]]],
    closed_first: bool,
) -> None:
    created = built_event(
        "charge.dispute.created", _dispute(gateway, purchase, "needs_response"), "evt_dp_open"
    )
    closed = built_event(
        "charge.dispute.closed", _dispute(gateway, purchase, "lost"), "evt_dp_lost"
    )
    order = [closed, created] if closed_first else [created, closed]
    outcomes = [deliver(client, e).json["outcome"] for e in (*order, *order)]
    expected_first = ["dispute recorded", "unchanged"] if closed_first else ["dispute recorded"] * 2
    assert outcomes == [*expected_first, "duplicate", "duplicate"]
    db.session.expire_all()
    payment = db.session.get(Payment, purchase.id)
    assert payment is not None and payment.disputed_at is not None
    assert (payment.status, payment.dispute_status) == ("succeeded", "lost")
    [mail] = outbox.of_kind("payment_disputed")
    assert mail.recipients == ["alice@example.com"]
    assert mail.subject == "A payment of $100.00 was disputed with your bank"
    statuses = [kw["status"] for kind, kw in received if kind == "disputed"]
    assert statuses == (["lost"] if closed_first else ["needs_response", "lost"])


def test_a_dispute_naming_only_its_charge_is_found_through_stripe(
    client: FlaskClient, gateway: LocalStripeGateway, purchase: Payment
) -> None:
    dispute = _dispute(gateway, purchase, "needs_response", payment_intent=None)
    event = built_event("charge.dispute.created", dispute, "evt_dp_charge_only")
    assert deliver(client, event).json["outcome"] == "dispute recorded"
    db.session.expire_all()
    assert db.session.get(Payment, purchase.id).dispute_status == "needs_response"  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["charge.refunded", "charge.dispute.created"])
def test_a_forged_refund_or_dispute_is_refused_and_changes_nothing(
    client: FlaskClient, gateway: LocalStripeGateway, purchase: Payment, outbox: Outbox, kind: str
) -> None:
    intent = purchase.charge_id or ""
    _refund_in_dashboard(gateway, intent, 3000)
    obj = (
        _charge_of(gateway, intent)
        if kind == "charge.refunded"
        else _dispute(gateway, purchase, "needs_response")
    )
    answer = deliver(client, built_event(kind, obj, "evt_forged"), secret="whsec_someone_else")
    assert answer.status_code == 400
    assert _refunds() == [] and _remembered() == 0
    db.session.expire_all()
    assert db.session.get(Payment, purchase.id).disputed_at is None  # type: ignore[union-attr]
    assert outbox.of_kind("payment_disputed") == []
