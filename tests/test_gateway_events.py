"""A gateway's neutral events, applied by the services (no Stripe needed).

A gateway hands ``get_state().apply_gateway_event`` a ``GatewayNotice``; these tests hand
it notices directly, as a third party's gateway (PAY.JP, Komoju, Braintree) would, and
check what each event does to our rows, once, in any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_subscriptions import get_state, signals
from flask_subscriptions.gateways import ChargeResult, ChargeStatus, DeclineKind
from flask_subscriptions.gateways.events import (
    CardDetached,
    ChargeUpdated,
    DisputeState,
    DisputeUpdated,
    GatewayEvent,
    GatewayNotice,
    RefundUpdated,
)
from flask_subscriptions.models import BillingProfile, Order, Payment, PaymentMethod, ProcessedEvent
from flask_subscriptions.services import checkout, payment_methods
from flask_subscriptions.services.gateway_events import apply_gateway_event

from .conftest import Outbox
from .factories import add_card, subscribe
from .flows import THREE_D_SECURE
from .hosts import User, db

GATEWAY = "sandbox"  # the name of the gateway the app runs with; the events name no other


def apply(notice_id: str, *events: GatewayEvent, gateway: str = GATEWAY) -> str:
    notice = GatewayNotice(gateway=gateway, notice_id=notice_id, kind="test", events=events)
    return get_state().apply_gateway_event(notice)


@pytest.fixture
def waiting(app: Flask, alice: User, catalog: None) -> Payment:
    """A purchase whose charge waits for 3-D Secure."""
    card = add_card(alice, THREE_D_SECURE)
    order = checkout.start_order("small", "month", "USD", [], alice)
    checkout.choose_payment_method(order, alice, card.id)
    view = checkout.view_order(order, alice)
    placed = checkout.place_order(order.key, alice, view.quote.fingerprint, return_url="/back")
    assert placed.state == "charging"
    payment = db.session.scalars(select(Payment)).one()
    assert payment.status == "requires_action" and payment.charge_id
    db.session.commit()
    return payment


@pytest.fixture
def purchase(app: Flask, alice: User, catalog: None) -> Payment:
    """Small, bought for $100.00."""
    subscribe(alice)
    payment = db.session.scalars(select(Payment)).one()
    db.session.commit()
    return payment


_SIGNALS = ("payment_succeeded", "payment_refunded", "payment_disputed", "payment_method_removed")


@pytest.fixture
def received(app: Flask) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    got: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str) -> Any:
        def record(_sender: object, **kwargs: Any) -> None:
            got.append((name, kwargs))

        return record

    hooks = {name: recorder(name) for name in _SIGNALS}  # held here: blinker keeps weak refs
    for name, hook in hooks.items():
        getattr(signals, name).connect(hook)
    yield got
    for name, hook in hooks.items():
        getattr(signals, name).disconnect(hook)


def _payment(payment_id: int) -> Payment:
    db.session.expire_all()
    payment = db.session.get(Payment, payment_id)
    assert payment is not None
    return payment


def _order_state(payment: Payment) -> str:
    return str(db.session.scalar(select(Order.state).where(Order.invoice_id == payment.invoice_id)))


def _remembered() -> int:
    return int(db.session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)


def _succeeded(charge_id: str | None) -> ChargeResult:
    return ChargeResult(status=ChargeStatus.SUCCEEDED, charge_id=charge_id)


def test_init_app_registers_the_services_function_as_the_sink(app: Flask) -> None:
    assert get_state().apply_gateway_event is apply_gateway_event


def test_a_charge_outcome_by_our_key_pays_the_order_once_R_DUN_6(
    waiting: Payment, received: list[tuple[str, dict[str, Any]]]
) -> None:
    event = ChargeUpdated(_succeeded(waiting.charge_id), idempotency_key=waiting.idempotency_key)
    assert apply("n1", event) == "recorded"
    assert apply("n1", event) == "duplicate"
    assert apply("n2", event) == "unchanged"  # another notice of the same outcome
    payment = _payment(waiting.id)
    assert (payment.status, _order_state(payment)) == ("succeeded", "paid")
    assert [kind for kind, _ in received] == ["payment_succeeded"]
    assert _remembered() == 2


def test_a_charge_outcome_by_the_gateways_charge_id_alone(waiting: Payment) -> None:
    assert apply("n1", ChargeUpdated(_succeeded(waiting.charge_id))) == "recorded"
    assert _payment(waiting.id).status == "succeeded"


def test_a_decline_reported_later_fails_the_waiting_charge(waiting: Payment) -> None:
    declined = ChargeResult(
        status=ChargeStatus.DECLINED,
        charge_id=waiting.charge_id,
        decline_kind=DeclineKind.HARD,
        decline_code="card_declined",
        message="Your card was declined.",
    )
    event = ChargeUpdated(declined, idempotency_key=waiting.idempotency_key)
    assert apply("n1", event) == "recorded"
    payment = _payment(waiting.id)
    assert (payment.status, payment.decline_code) == ("declined", "card_declined")
    # A late "succeeded" cannot move a payment that has already left the open states.
    late = ChargeUpdated(_succeeded(waiting.charge_id), idempotency_key=waiting.idempotency_key)
    assert apply("n2", late) == "unchanged"
    assert _payment(waiting.id).status == "declined"


@pytest.mark.parametrize(
    "event",
    [
        ChargeUpdated(ChargeResult(status=ChargeStatus.UNKNOWN, charge_id="x")),
        ChargeUpdated(_succeeded("ch_not_ours")),
        ChargeUpdated(_succeeded(None), idempotency_key="purchase:not-ours"),
        ChargeUpdated(_succeeded(None)),
    ],
    ids=["unknown", "foreign-charge", "foreign-key", "no-ids"],
)
def test_a_charge_outcome_about_nothing_of_ours_changes_nothing(
    waiting: Payment, event: ChargeUpdated
) -> None:
    assert apply("n1", event) in ("ignored", "unchanged")
    assert _payment(waiting.id).status == "requires_action"


def test_a_charge_outcome_for_another_charge_than_the_keys_is_ignored(waiting: Payment) -> None:
    """Our key, but a charge the service made for it that is not the one we recorded."""
    event = ChargeUpdated(_succeeded("ch_other"), idempotency_key=waiting.idempotency_key)
    assert apply("n1", event) == "ignored"
    assert _payment(waiting.id).status == "requires_action"


def test_the_same_outcome_from_another_gateway_is_not_ours(waiting: Payment) -> None:
    event = ChargeUpdated(_succeeded(waiting.charge_id), idempotency_key=waiting.idempotency_key)
    assert apply("n1", event, gateway="braintree") == "ignored"
    assert _payment(waiting.id).status == "requires_action"


def _refunds() -> list[tuple[int, str, int | None, str | None]]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(Payment).where(Payment.purpose == "refund").order_by(Payment.id)
    )
    return [(r.amount, r.status, r.refund_of_id, r.charge_id) for r in rows]


def test_a_refund_made_at_the_service_is_recorded_once_and_moves_forward(
    purchase: Payment, received: list[tuple[str, dict[str, Any]]]
) -> None:
    charge = purchase.charge_id or ""

    def refund(status: Any, refund_id: str = "re_1") -> RefundUpdated:
        return RefundUpdated(charge, refund_id, 3000, "usd", status)

    assert apply("n1", refund("pending")) == "refund recorded"
    assert apply("n2", refund("succeeded")) == "refund updated"
    assert apply("n3", refund("pending")) == "unchanged"  # never back
    assert _refunds() == [(3000, "succeeded", purchase.id, "re_1")]
    assert [kind for kind, _ in received if kind == "payment_refunded"] == ["payment_refunded"]
    both = (refund("succeeded"), refund("succeeded", "re_2"))
    assert apply("n4", *both) == "refund recorded"


def test_a_refund_we_made_ourselves_is_not_recorded_again(purchase: Payment) -> None:
    ours = RefundUpdated(
        purchase.charge_id or "", "re_9", 500, "usd", "succeeded", idempotency_key="withdrawal:1"
    )
    assert apply("n1", ours) == "unchanged"
    assert _refunds() == []


def test_a_refund_of_a_charge_not_ours_or_in_another_currency_is_ignored(
    purchase: Payment,
) -> None:
    foreign = RefundUpdated("ch_not_ours", "re_1", 700, "usd", "succeeded")
    other_currency = RefundUpdated(purchase.charge_id or "", "re_2", 700, "eur", "succeeded")
    assert apply("n1", foreign, other_currency) == "ignored"
    assert _refunds() == []


def _dispute(purchase: Payment, state: DisputeState, status: str | None) -> DisputeUpdated:
    return DisputeUpdated(purchase.charge_id or "", "dp_1", state, 10000, "usd", status)


@pytest.mark.parametrize("closed_first", [False, True])
def test_a_dispute_marks_the_charge_mails_once_and_an_end_is_final(
    purchase: Payment,
    outbox: Outbox,
    received: list[tuple[str, dict[str, Any]]],
    closed_first: bool,
) -> None:
    opened = _dispute(purchase, DisputeState.OPEN, "needs_response")
    lost = _dispute(purchase, DisputeState.LOST, "lost_at_the_bank")
    order = [lost, opened] if closed_first else [opened, lost]
    outcomes = [apply(f"n{i}", event) for i, event in enumerate(order)]
    assert outcomes == (
        ["dispute recorded", "unchanged"] if closed_first else ["dispute recorded"] * 2
    )
    payment = _payment(purchase.id)
    assert payment.disputed_at is not None
    # Once ended, our own word, whatever the service calls it: a late opening cannot reopen it.
    assert (payment.status, payment.dispute_status) == ("succeeded", "lost")
    assert len(outbox.of_kind("payment_disputed")) == 1
    statuses = [kw["status"] for kind, kw in received if kind == "payment_disputed"]
    assert statuses == (["lost"] if closed_first else ["needs_response", "lost"])


def test_a_dispute_closed_without_an_outcome_is_final_too(purchase: Payment) -> None:
    assert apply("n1", _dispute(purchase, DisputeState.CLOSED, "warning_closed")) == (
        "dispute recorded"
    )
    assert apply("n2", _dispute(purchase, DisputeState.WON, None)) == "unchanged"
    assert _payment(purchase.id).dispute_status == "closed"


def test_a_dispute_of_a_charge_not_ours_is_ignored(purchase: Payment, outbox: Outbox) -> None:
    event = DisputeUpdated("ch_not_ours", "dp_1", DisputeState.OPEN, 100, "usd", "open")
    assert apply("n1", event) == "ignored"
    assert outbox.of_kind("payment_disputed") == []


def test_a_card_detached_at_the_service_is_removed_and_the_card_that_paid_is_default_R_DUN_5(
    app: Flask, alice: User, catalog: None, received: list[tuple[str, dict[str, Any]]]
) -> None:
    """The same rule as removing it on the payment methods page: the owner's choice of
    default is forgotten with the card, and the card that last paid is the default again."""
    subscribe(alice, card="5555 5555 5555 4444")
    second_id = db.session.scalar(select(PaymentMethod.id))
    first = add_card(alice)
    payment_methods.set_default(alice, first.id)
    first_id, token = first.id, first.token
    db.session.commit()
    assert apply("n1", CardDetached(token)) == "card removed"
    assert apply("n2", CardDetached(token)) == "unchanged"
    assert apply("n3", CardDetached("tok_unknown")) == "unchanged"
    db.session.expire_all()
    assert db.session.get(PaymentMethod, first_id).removed_at is not None  # type: ignore[union-attr]
    assert db.session.scalar(select(BillingProfile.default_payment_method_id)) is None
    assert payment_methods.default_method_id(alice.billing_id) == second_id
    removed = [kw for kind, kw in received if kind == "payment_method_removed"]
    assert removed == [{"account_id": "1", "payment_method_id": first_id}]


def test_a_notice_about_nothing_of_ours_is_remembered_and_ignored(app: Flask) -> None:
    assert apply("n1") == "ignored"
    assert apply("n1") == "duplicate"
    assert _remembered() == 1
