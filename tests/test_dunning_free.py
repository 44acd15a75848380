"""Dunning policy "grace then Free" (R-DUN-2): update the card, or the account goes Free."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_subscriptions.models import Invoice, Payment
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, sign_in
from .factories import add_card
from .flows import DECLINES_EVERY_CHARGE, VISA
from .hosts import User, db
from .test_dunning import _failing_license, _sub


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SUBSCRIPTIONS_DUNNING_POLICY": "free"}


def _at(clock: Any, day: date, hour: int = 12, minute: int = 0) -> None:
    clock.set(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC))


def _update_card(user: User, number: str) -> None:
    """The owner registers a card and makes it the default (the update R-DUN-2 waits for)."""
    method = add_card(user, number)
    payment_methods.set_default(user, method.id)


def test_no_daily_retries_and_free_on_day_10_with_the_invoice_voided_R_DUN_2(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox, gateway: Any
) -> None:
    _failing_license(alice, clock)
    assert _sub().grace_ends_on == date(2026, 4, 27)  # 10 days
    for day in range(18, 27):
        _at(clock, date(2026, 4, day))
        run_dunning()
    assert status_of(_sub()) == "Payment failed"
    assert gateway.charge_count() == 2  # the purchase and the failed renewal: no retries
    _at(clock, date(2026, 4, 27))
    assert run_dunning().moved_to_free == 1
    ended = _sub()
    assert (status_of(ended), ended.end_reason, ended.live_account_id) == (
        "Expired",
        "unpaid",
        None,
    )
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "renewal")) == "void"
    assert "moved_to_free" in outbox.kinds() and "grace_ending" in outbox.kinds()
    _at(clock, date(2026, 5, 17))
    assert renew_due().renewed == 0  # nothing renews on Free


def test_card_updated_on_day_3_is_retried_within_20_minutes_R_DUN_2(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    _failing_license(alice, clock)
    _at(clock, date(2026, 4, 19), 10, 0)
    _update_card(alice, VISA)
    _at(clock, date(2026, 4, 19), 10, 15)  # the next run of the 15-minute job
    report = run_dunning()
    assert (report.retried, report.recovered) == (1, 1)
    subscription = _sub()
    assert (status_of(subscription), subscription.payment_failed_on) == ("Enabled", None)
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "renewal")) == "paid"
    assert outbox.kinds()[-1] == "renewal_receipt"


def test_update_that_still_fails_asks_to_contact_support_after_a_day_R_DUN_2(
    app: Flask, client: Any, alice: User, catalog: None, clock: Any
) -> None:
    subscription = _failing_license(alice, clock)
    _at(clock, date(2026, 4, 19), 10, 0)
    _update_card(alice, DECLINES_EVERY_CHARGE)
    _at(clock, date(2026, 4, 19), 10, 15)
    assert run_dunning().retried == 1
    _at(clock, date(2026, 4, 19), 10, 30)
    assert run_dunning().retried == 0  # one retry per update
    sign_in(client, alice)
    page = client.get(f"/billing/licenses/{subscription.id}")
    assert "Payment failed" in page.text and "has not completed" not in page.text
    _at(clock, date(2026, 4, 20), 10, 1)
    page = client.get(f"/billing/licenses/{subscription.id}")
    assert (
        "Payment has not completed since you updated your payment method: please contact support"
        in page.text
    )
    assert db.session.scalar(select(Payment.status).order_by(Payment.id.desc())) == "declined"
    assert _sub().state == "active"
