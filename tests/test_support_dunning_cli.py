"""Support's dunning actions and the CLI (R-OPS-1): retry now, give a restricted account
more days, and the same actions from ``flask subscriptions support …``, audited alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_subscriptions.models import AuditEntry, BalanceEntry, Invoice, Payment, Subscription
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_due

from .conftest import signed_in
from .factories import add_card, subscribe
from .flows import FIRST_CHARGE_ONLY, VISA, text_of
from .hosts import User, db
from .test_support import _form_of, _person


def _at(clock: Any, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _days(clock: Any, first: date, count: int) -> None:
    for offset in range(count):
        _at(clock, first + timedelta(days=offset))
        renew_due()
        run_dunning()


def _failing(user: User, clock: Any) -> Subscription:
    """Small bought on March 17; its April 17 renewal is declined."""
    subscription = subscribe(user, "small", card=FIRST_CHARGE_ONLY)
    _at(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    return subscription


def _sub(subscription_id: int) -> Subscription:
    db.session.expire_all()
    return db.session.get_one(Subscription, subscription_id)


def _audit() -> list[tuple[str, str, str]]:
    db.session.expire_all()
    return [
        (e.action, e.outcome, e.source)
        for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    ]


def test_r_ops_1_retry_an_unpaid_renewal_now_once(
    app: Flask, catalog: None, clock: Any, alice: User
) -> None:
    subscription = _failing(alice, clock)
    sam = signed_in(app, _person("sam", "support"))
    url = f"/billing/admin/accounts/{alice.billing_id}"
    page = sam.get(url)
    assert "Retry now" in text_of(page.text)
    declined = _form_of(page.text, "subs-admin-retry") | {"reason": "Customer says card works"}
    refused = sam.post(f"{url}/retry", data=declined)
    assert refused.status_code == 400
    assert "The retry was declined" in text_of(refused.text)
    payment_methods.set_default(alice, add_card(alice, VISA).id)
    form = _form_of(sam.get(url).text, "subs-admin-retry") | {"reason": "New card registered"}
    assert sam.post(f"{url}/retry", data=form).status_code == 303
    assert sam.post(f"{url}/retry", data=form).status_code == 303
    assert status_of(_sub(subscription.id)) == "Enabled"
    paid = db.session.scalar(
        select(func.count(Payment.id)).where(
            Payment.status == "succeeded", Payment.invoice_id.is_not(None)
        )
    )
    assert paid == 2  # the purchase and one retry
    assert _audit() == [("retry", "refused", "web"), ("retry", "done", "web")]
    assert "Enabled" in text_of(signed_in(app, alice).get("/billing/licenses").text)


def test_r_ops_1_give_a_restricted_account_more_days(
    app: Flask, catalog: None, clock: Any, alice: User
) -> None:
    subscription = _failing(alice, clock)
    _days(clock, date(2026, 4, 18), 7)  # restricted on April 24
    assert status_of(_sub(subscription.id)) == "Restricted"
    sam = signed_in(app, _person("sam", "support"))
    url = f"/billing/admin/accounts/{alice.billing_id}"
    form = _form_of(sam.get(url).text, "subs-admin-give-days") | {
        "days": "5",
        "reason": "Waiting for the bank",
    }
    assert sam.post(f"{url}/give-days", data=form).status_code == 303
    assert sam.post(f"{url}/give-days", data=form).status_code == 303
    held = _sub(subscription.id)
    assert (status_of(held), held.grace_ends_on) == ("Payment failed", date(2026, 4, 29))
    assert "Payment failed" in text_of(signed_in(app, alice).get("/billing/licenses").text)
    _days(clock, date(2026, 4, 29), 1)
    assert status_of(_sub(subscription.id)) == "Restricted"
    assert _audit() == [("give_days", "done", "web")]


# --- the CLI ---------------------------------------------------------------------------------


def _cli(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=["subscriptions", "support", *args])
    db.session.expire_all()
    return result


def test_r_ops_1_cli_find_credit_change_extend_refund_end(
    app: Flask, catalog: None, clock: Any, alice: User
) -> None:
    subscription = subscribe(alice, "x_small")
    x_small = subscription.plan_id
    account = alice.billing_id
    found = _cli(app, "find", "alice@example.com")
    assert found.exit_code == 0 and account in found.output and "owner e-mail" in found.output
    common = ["--by", "sam@support.example", "--yes"]
    credit = _cli(app, "credit", account, "12.50", "--reason", "Goodwill", "--key", "k1", *common)
    assert credit.exit_code == 0, credit.output
    again = _cli(app, "credit", account, "12.50", "--reason", "Goodwill", "--key", "k1", *common)
    assert again.exit_code == 1 and "already done" in again.output
    assert db.session.scalar(select(func.sum(BalanceEntry.amount))) == 1250
    _at(clock, date(2026, 4, 6))
    moved = _cli(
        app, "change-plan", account, str(subscription.id), "large", "--reason", "By phone", *common
    )
    assert moved.exit_code == 0, moved.output
    assert "Charged to the default card" in moved.output
    assert _sub(subscription.id).plan_id != x_small
    extended = _cli(
        app, "extend", account, str(subscription.id), "7", "--reason", "Outage", *common
    )
    assert extended.exit_code == 0, extended.output
    charge = db.session.scalar(
        select(Payment.id).where(Payment.purpose == "charge").order_by(Payment.id)
    )
    refunded = _cli(
        app, "refund", account, str(charge), "5.00", "--to", "card", "--reason", "Error", *common
    )
    assert refunded.exit_code == 0, refunded.output
    ended = _cli(app, "end", account, str(subscription.id), "--reason", "Closing", *common)
    assert ended.exit_code == 0, ended.output
    assert _sub(subscription.id).state == "ended"
    assert _audit() == [
        ("grant_credit", "done", "cli"),
        ("change_plan", "done", "cli"),
        ("extend", "done", "cli"),
        ("refund", "done", "cli"),
        ("end", "done", "cli"),
    ]
    owner = text_of(signed_in(app, alice).get("/billing/balance").text)
    assert "Credit granted by support" in owner


@pytest.mark.parametrize("days", ["0", "-3", "400"])
def test_r_sec_4_cli_refuses_bad_days(app: Flask, catalog: None, alice: User, days: str) -> None:
    subscription = subscribe(alice, "x_small")
    result = _cli(
        app, "extend", alice.billing_id, str(subscription.id), days, "--reason", "r", "--yes"
    )
    assert result.exit_code != 0
    assert _audit() == []
    assert db.session.scalar(select(func.count(Invoice.id))) == 1
