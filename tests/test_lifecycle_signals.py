"""Lifecycle signals for host code: each sent once, after its transaction committed, with
its documented arguments (the README's Signals table; ``flask_subscriptions/signals.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from blinker import NamedSignal
from flask import Flask

from flask_subscriptions import get_state, signals
from flask_subscriptions.services import _tx
from flask_subscriptions.services.balance import append_entry
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import update_license
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.settlement import settle, settlement_for
from flask_subscriptions.services.withdrawals import withdraw, withdrawal_quote

from .conftest import at_noon
from .factories import add_card, subscribe
from .flows import FIRST_CHARGE_ONLY
from .hosts import User, db

LIFECYCLE = [
    signals.subscription_renewed,
    signals.subscription_expired,
    signals.plan_change_scheduled,
    signals.plan_change_applied,
    signals.subscription_restricted,
    signals.restriction_lifted,
    signals.moved_to_free,
    signals.usage_over_limit,
    signals.usage_back_within_limit,
    signals.balance_credited,
    signals.balance_withdrawn,
]


class Seen:
    """Every lifecycle signal received, with its kwargs, and whether a transaction was
    still open when it arrived (it must not be: signals go after the commit)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def receiver(self, signal: NamedSignal) -> Any:
        def receive(sender: Flask, **kwargs: Any) -> None:
            assert db.session().get_transaction() is None, (
                f"{signal.name} sent inside a transaction"
            )
            self.calls.append((signal.name, kwargs))

        return receive

    def of(self, signal: NamedSignal) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == signal.name]


@pytest.fixture
def seen(app: Flask) -> Iterator[Seen]:
    recorder = Seen()
    receivers = [(signal, recorder.receiver(signal)) for signal in LIFECYCLE]
    for signal, receive in receivers:
        signal.connect(receive, app)
    yield recorder
    for signal, receive in receivers:
        signal.disconnect(receive, app)


def test_renewed_and_expired(alice: User, catalog: None, clock: Any, seen: Seen) -> None:
    subscription = subscribe(alice)  # March 17
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    [renewed] = seen.of(signals.subscription_renewed)
    assert renewed["account_id"] == alice.billing_id
    assert renewed["subscription_id"] == subscription.id
    assert (renewed["term_start"], renewed["term_end"]) == (date(2026, 4, 17), date(2026, 5, 17))
    update_license(alice, subscription.id, auto_renew=False, renew_with=None)
    at_noon(clock, date(2026, 5, 17))
    renew_due()
    assert seen.of(signals.subscription_expired) == [
        {
            "account_id": alice.billing_id,
            "subscription_id": subscription.id,
            "ended_on": date(2026, 5, 17),
            "reason": "disabled",
        }
    ]
    assert len(seen.of(signals.subscription_renewed)) == 1


def test_plan_change_scheduled_then_applied_at_renewal_R_LIC_5(
    alice: User, catalog: None, clock: Any, seen: Seen
) -> None:
    subscription = subscribe(alice)
    update_license(alice, subscription.id, auto_renew=True, renew_with="medium")
    assert seen.of(signals.plan_change_scheduled) == [
        {"account_id": alice.billing_id, "subscription_id": subscription.id, "plan": "medium"}
    ]
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    assert seen.of(signals.plan_change_applied) == [
        {
            "account_id": alice.billing_id,
            "subscription_id": subscription.id,
            "plan": "medium",
            "plan_change_id": None,
        }
    ]


def test_immediate_change_applied_and_its_credit_R_PRO_3(
    alice: User, catalog: None, clock: Any, seen: Seen
) -> None:
    subscription = subscribe(alice)  # Small, March 17
    at_noon(clock, date(2026, 4, 1))
    request = ChangeRequest("x_small", "month", ())
    shown = quote_for(alice, subscription.id, request)
    change = apply_change(alice, subscription.id, request, shown.quote.fingerprint)
    [applied] = seen.of(signals.plan_change_applied)
    assert applied == {
        "account_id": alice.billing_id,
        "subscription_id": subscription.id,
        "plan": "x_small",
        "plan_change_id": change.id,
    }
    [credited] = seen.of(signals.balance_credited)
    assert credited["kind"] == "credit" and credited["currency"] == "USD"
    assert credited["amount"] == shown.quote.credit_total > 0


def test_restricted_then_lifted_by_settling_R_DUN_1_R_DUN_3(
    alice: User, catalog: None, clock: Any, seen: Seen
) -> None:
    subscription = subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    renew_due()  # declined: grace starts
    for day in range(18, 25):
        at_noon(clock, date(2026, 4, day))
        run_dunning()
    [restricted] = seen.of(signals.subscription_restricted)
    assert restricted["account_id"] == alice.billing_id
    assert restricted["subscription_id"] == subscription.id
    assert isinstance(restricted["since"], date)
    card = add_card(alice)
    offer = settlement_for(alice.billing_id)
    assert offer.quote is not None
    settle(alice, offer.quote.fingerprint, card.id)
    assert seen.of(signals.restriction_lifted) == [
        {"account_id": alice.billing_id, "subscription_id": subscription.id}
    ]


@pytest.mark.parametrize("app_config", [{"SUBSCRIPTIONS_DUNNING_POLICY": "free"}])
def test_moved_to_free_R_DUN_2(alice: User, catalog: None, clock: Any, seen: Seen) -> None:
    subscription = subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    for day in range(18, 29):
        at_noon(clock, date(2026, 4, day))
        run_dunning()
    assert seen.of(signals.moved_to_free) == [
        {"account_id": alice.billing_id, "subscription_id": subscription.id}
    ]


def test_usage_over_and_back_within_the_limit_R_USE_2(
    alice: User, catalog: None, clock: Any, seen: Seen
) -> None:
    subscribe(alice)  # Small: MAU 1,000
    report = get_state().extension.report_usage
    report(alice, "mau", 1240)
    report(alice, "mau", 1300)  # still over: no second signal
    report(alice, "mau", 900)
    assert seen.of(signals.usage_over_limit) == [
        {"account_id": alice.billing_id, "overages": (("mau", 1240, 1000),)}
    ]
    assert seen.of(signals.usage_back_within_limit) == [{"account_id": alice.billing_id}]


def test_balance_credited_and_withdrawn_R_BAL_2(
    alice: User, catalog: None, clock: Any, seen: Seen
) -> None:
    subscribe(alice)
    append_entry(alice.billing_id, "credit", 2000, "USD", "Goodwill credit")
    _tx.commit()
    withdrawal = withdraw(alice, withdrawal_quote(alice.billing_id).seq)
    assert seen.of(signals.balance_credited) == [
        {
            "account_id": alice.billing_id,
            "amount": 2000,
            "currency": "USD",
            "kind": "credit",
            "balance": 2000,
        }
    ]
    assert seen.of(signals.balance_withdrawn) == [
        {
            "account_id": alice.billing_id,
            "withdrawal_id": withdrawal.id,
            "amount": 2000,
            "fee": 200,
            "net": 1800,
            "currency": "USD",
        }
    ]
