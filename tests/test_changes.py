"""Immediate plan changes with a quote (R-PRO-1..9) and the balance (R-BAL-1, R-BAL-3),
through the service layer and the pages, on the example's days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_subscriptions import get_entitlements
from flask_subscriptions.errors import PaymentDeclined, PlanNotAnOption, QuoteChanged
from flask_subscriptions.models import (
    BalanceEntry,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
    UsageReport,
)
from flask_subscriptions.services.balance import append_entry, current_balance
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for

from .conftest import Outbox, csrf_token, sign_in
from .factories import add_card, subscribe
from .flows import DECLINES_EVERY_CHARGE, post_form
from .hosts import User, db


def _at(clock: Any, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _change(
    user: User,
    subscription: Subscription,
    plan: str,
    interval: str = "month",
    addons: tuple[str, ...] = (),
) -> tuple[Any, Any]:
    request = ChangeRequest(plan, interval, addons)
    shown = quote_for(user, subscription.id, request)
    method = db.session.scalar(
        select(PaymentMethod.id).where(PaymentMethod.account_id == user.billing_id)
    )
    done = apply_change(user, subscription.id, request, shown.quote.fingerprint, method)
    return shown.quote, done


def _plan_code(subscription_id: int) -> str:
    from flask_subscriptions.models import Plan

    db.session.expire_all()
    return db.session.get(Plan, db.session.get(Subscription, subscription_id).plan_id).code


def _lines(quote: Any) -> list[tuple[str, str | None, int, int | None]]:
    return [(line.kind.value, line.item_code, line.amount, line.days) for line in quote.lines]


def _held() -> list[tuple[str, int, int, date, date]]:
    rows = db.session.execute(
        select(
            SubscriptionItem.kind,
            SubscriptionItem.paid_amount,
            SubscriptionItem.list_amount,
            SubscriptionItem.period_start,
            SubscriptionItem.period_end,
        )
        .where(SubscriptionItem.removed_on.is_(None))
        .order_by(SubscriptionItem.id)
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_E1_add_on_added_on_april_20_is_charged_13_days_R_PRO_2(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: Any, outbox: Outbox
) -> None:
    """E1: Small paid April 3 (term Apr 3 – May 3, 30 days); Operation added April 20 is
    charged from Apr 20 to May 2, 13 days: 30 × 13/30 = $13.00."""
    _at(clock, date(2026, 4, 3))
    subscription = subscribe(alice)
    _at(clock, date(2026, 4, 20))
    quote, _ = _change(alice, subscription, "small", addons=("operation",))
    assert _lines(quote) == [("charge", "operation", 1300, 13)]
    assert (quote.card_amount, quote.balance_after) == (1300, 0)
    assert [c.amount for c in gateway.charges()] == [10000, 1300]
    changed = db.session.get(Subscription, subscription.id)
    assert changed.current_term_end == date(2026, 5, 3)  # R-PRO-6: the term end is kept
    assert _held()[-1] == ("addon", 1300, 1300, date(2026, 4, 20), date(2026, 5, 3))
    assert outbox.kinds()[-1] == "plan_change_applied"


def test_E3_upgrade_x_small_to_small_uses_the_credit_first_R_PRO_3_R_PRO_4(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: Any
) -> None:
    """E3: credit X Small 50 × 10/31 = 16.13 (Apr 7 – Apr 16), charge Small 100 × 11/31 =
    35.48 (Apr 6 – Apr 16), add-ons unchanged; the balance pays 16.13, the card 19.35."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice, "x_small", addons=("operation", "marketing"))
    _at(clock, date(2026, 4, 6))
    quote, _ = _change(alice, subscription, "small", addons=("operation", "marketing"))
    assert _lines(quote) == [("credit", "x_small", -1613, 10), ("charge", "small", 3548, 11)]
    assert (quote.balance_used, quote.card_amount, quote.balance_after) == (1613, 1935, 0)
    assert gateway.charges()[-1].amount == 1935
    entries = db.session.execute(
        select(BalanceEntry.kind, BalanceEntry.amount).order_by(BalanceEntry.seq)
    ).all()
    assert [tuple(e) for e in entries] == [("credit", 1613), ("use", -1613)]
    assert _plan_code(subscription.id) == "small"
    invoice = db.session.scalar(select(Invoice).where(Invoice.kind == "change"))
    assert (invoice.status, invoice.total, invoice.balance_applied, invoice.amount_due) == (
        "paid",
        1935,
        1613,
        1935,
    )


@pytest.fixture
def e2_catalog(app: Flask, tmp_path: Path) -> None:
    """Pro annual: list $1,000, paid $900 (10% annual discount); Basic below it."""
    path = tmp_path / "e2.toml"
    path.write_text(
        '[[plans]]\ncode = "basic"\nname = "Basic"\nchange_options = ["pro"]\n'
        'prices = [{ currency = "USD", month = "20.00", year = "200.00", year_list = "240.00" }]\n'
        '[[plans]]\ncode = "pro"\nname = "Pro"\nchange_options = ["basic"]\n'
        'prices = [{ currency = "USD", month = "90.00", year = "900.00", year_list = "1000.00" }]\n'
    )
    result = app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(path)])
    assert result.exit_code == 0, result.output


def test_E2_downgrade_after_exactly_half_the_term_costs_a_penalty_R_PRO_5(
    app: Flask, alice: User, e2_catalog: None, clock: Any
) -> None:
    """E2: paid 900 on a list price of 1000; after exactly half the term the credit is
    900 − 1000 × ½ = $400: the R-PRO-4 credit of $450 less a $50 penalty, shown apart."""
    _at(clock, date(2027, 3, 17))  # a 366-day term, to March 17, 2028
    subscription = subscribe(alice, "pro", interval="year")
    _at(clock, date(2027, 9, 15))  # used: March 17 .. September 15 = 183 days = half
    shown = quote_for(alice, subscription.id, ChangeRequest("basic", "year", ()))
    quote = shown.quote
    credit = [(k, c, a) for k, c, a, _ in _lines(quote) if k in ("credit", "penalty")]
    assert credit == [("credit", "pro", -45000), ("penalty", "pro", 5000)]
    assert quote.credit_total == 40000
    assert shown.quote.direction == "downgrade"
    # Basic is charged from the change day: 200 × 184/366 = 100.546… → $100.55
    assert [(k, c, a) for k, c, a, _ in _lines(quote) if k == "charge"] == [
        ("charge", "basic", 10055)
    ]
    assert (quote.card_amount, quote.balance_after) == (0, 40000 - 10055)


@pytest.mark.parametrize(
    ("start", "held", "day", "target", "expected_lines", "card", "left"),
    [
        # tier up: Small → Medium on April 6 (31-day term): credit 100×10/31, charge 200×11/31
        (
            (2026, 3, 17),
            ("small", "month", ()),
            (2026, 4, 6),
            ("medium", "month", ()),
            [("credit", "small", -3226, 10), ("charge", "medium", 7097, 11)],
            3871,
            0,
        ),
        # tier down: Medium → Small: credit 200×10/31 (no discount: no penalty), charge 100×11/31
        (
            (2026, 3, 17),
            ("medium", "month", ()),
            (2026, 4, 6),
            ("small", "month", ()),
            [("credit", "medium", -6452, 10), ("charge", "small", 3548, 11)],
            0,
            2904,
        ),
        # add-on removed: Marketing credited for the days after the change
        (
            (2026, 3, 17),
            ("small", "month", ("marketing",)),
            (2026, 4, 6),
            ("small", "month", ()),
            [("credit", "marketing", -1290, 10)],
            0,
            1290,
        ),
        # monthly → annual: credit the month, a new year from the change day at $1,080
        (
            (2026, 3, 17),
            ("small", "month", ()),
            (2026, 4, 6),
            ("small", "year", ()),
            [("credit", "small", -3226, 10), ("charge", "small", 108000, 365)],
            104774,
            0,
        ),
        # paid → Free: everything credited, nothing charged
        (
            (2026, 3, 17),
            ("small", "month", ()),
            (2026, 4, 6),
            ("free", "month", ()),
            [("credit", "small", -3226, 10)],
            0,
            3226,
        ),
    ],
)
def test_reference_scenarios_in_USD_R_PRO_1(
    app: Flask,
    alice: User,
    catalog: None,
    clock: Any,
    start: tuple,
    held: tuple,
    day: tuple,
    target: tuple,
    expected_lines: list,
    card: int,
    left: int,
) -> None:
    """R-PRO-1: each scenario of the reference page, with its exact lines."""
    _at(clock, date(*start))
    subscription = subscribe(alice, held[0], interval=held[1], addons=held[2])
    _at(clock, date(*day))
    quote, _ = _change(alice, subscription, target[0], target[1], target[2])
    assert _lines(quote) == expected_lines
    assert (quote.card_amount, quote.balance_after) == (card, left)
    assert current_balance(alice.billing_id).amount == left


def test_annual_to_monthly_moves_the_billing_date_and_penalises_the_discount_R_PRO_6(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-PRO-6: the billing date moves to the change day; annual → monthly is a downgrade."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice, "small", interval="year")
    _at(clock, date(2026, 6, 1))
    quote, _ = _change(alice, subscription, "small", "month")
    kinds = [k for k, *_ in _lines(quote)]
    assert kinds == ["credit", "penalty", "charge"]
    changed = db.session.get(Subscription, subscription.id)
    assert (changed.interval, changed.anchor_date, changed.current_term_end) == (
        "month",
        date(2026, 6, 1),
        date(2026, 7, 1),
    )


def test_paid_to_free_ends_the_license_today(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice)
    _at(clock, date(2026, 4, 6))
    _change(alice, subscription, "free")
    ended = db.session.get(Subscription, subscription.id)
    assert (ended.state, ended.live_account_id, ended.end_reason) == (
        "ended",
        None,
        "changed_to_free",
    )


def test_the_free_plan_needs_no_payment_method_R_CAT_3(
    app: Flask, client: Any, alice: User, catalog: None, clock: Any, gateway: Any
) -> None:
    """R-CAT-3: an account that never registered a card is on the Free plan, and a license
    whose only card was removed moves to Free without one; no card is charged."""
    assert get_entitlements(alice).plan_code == "free"
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice)
    sign_in(client, alice)
    card = db.session.scalar(select(PaymentMethod.id))
    removed = post_form(  # confirmed: the owner was told the renewal would fail
        client,
        "/billing/payment-methods",
        f"/billing/payment-methods/{card}/remove",
        {"confirm": "1"},
    )
    assert removed.status_code == 302
    assert "No card registered yet." in client.get("/billing/payment-methods").text
    _at(clock, date(2026, 4, 6))
    page = client.get(f"/billing/licenses/{subscription.id}/change?plan=free&interval=month")
    assert '<td class="subs-total"><strong>$0.00</strong>' in page.text
    request = ChangeRequest("free", "month", ())
    done = client.post(
        f"/billing/licenses/{subscription.id}/change",
        data={
            "csrf_token": csrf_token(page.text),
            "plan": "free",
            "interval": "month",
            "fingerprint": quote_for(alice, subscription.id, request).quote.fingerprint,
        },
    )
    assert done.status_code == 302, done.text
    assert get_entitlements(alice).plan_code == "free"
    assert [c.amount for c in gateway.charges()] == [10000]  # the purchase only
    assert current_balance(alice.billing_id).amount == 3226  # Small 100 × 10/31


def test_stale_quote_is_refused_and_nothing_changes_R_PRO_7(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: Any
) -> None:
    """R-PRO-7: a quote whose day, balance or license changed is not executed."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice)
    _at(clock, date(2026, 4, 6))
    request = ChangeRequest("medium", "month", ())
    shown = quote_for(alice, subscription.id, request)
    method = db.session.scalar(select(PaymentMethod.id))
    _at(clock, date(2026, 4, 7))  # a day later: other days, other amounts
    with pytest.raises(QuoteChanged):
        apply_change(alice, subscription.id, request, shown.quote.fingerprint, method)
    shown = quote_for(alice, subscription.id, request)
    append_entry(alice.billing_id, "credit", 500, "USD", "Goodwill credit")  # the balance moved
    db.session.commit()
    with pytest.raises(QuoteChanged):
        apply_change(alice, subscription.id, request, shown.quote.fingerprint, method)
    assert (
        db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.kind == "change"))
        == 0
    )
    assert gateway.charge_count() == 1
    assert _plan_code(subscription.id) == "small"


def test_declined_card_changes_nothing_and_never_enters_dunning_R_PRO_8(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-PRO-8: no credit, no plan change; the reason is given; no dunning."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice)
    append_entry(alice.billing_id, "credit", 1000, "USD", "Goodwill credit")
    db.session.commit()
    bad = add_card(alice, DECLINES_EVERY_CHARGE)
    _at(clock, date(2026, 4, 6))
    request = ChangeRequest("medium", "month", ())
    shown = quote_for(alice, subscription.id, request)
    with pytest.raises(PaymentDeclined, match=r"declined\. Nothing was changed\."):
        apply_change(alice, subscription.id, request, shown.quote.fingerprint, bad.id)
    db.session.expire_all()
    after = db.session.get(Subscription, subscription.id)
    assert (_plan_code(subscription.id), after.payment_failed_on) == ("small", None)
    assert current_balance(alice.billing_id).amount == 1000
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "change")) == "void"
    assert _held()[0][1] == 10000  # the plan item untouched


def test_plan_that_is_not_an_option_is_refused_R_CAT_2(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    subscription = subscribe(alice, "x_small")
    with pytest.raises(PlanNotAnOption):
        quote_for(alice, subscription.id, ChangeRequest("large", "month", ()))


def test_downgrade_below_current_usage_warns_first_R_PRO_9(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-PRO-9: allowed, with a warning on the quote."""
    subscription = subscribe(alice, "medium")
    db.session.add(
        UsageReport(
            account_id=alice.billing_id, metric="mau", value=1240, reported_at=datetime(2026, 3, 18)
        )
    )
    db.session.commit()
    _at(clock, date(2026, 4, 6))
    shown = quote_for(alice, subscription.id, ChangeRequest("small", "month", ()))
    assert shown.warnings == (
        "Your current MAU of 1,240 is over the Small plan's limit of 1,000: paid features will "
        "be restricted at once after this change, and billing continues.",
    )


def test_change_page_quote_and_confirm_R_PRO_7(
    app: Flask, client: Any, alice: User, catalog: None, clock: Any
) -> None:
    """Through the pages: the quote shows each line with its days, then Confirm change."""
    _at(clock, date(2026, 4, 3))
    subscription = subscribe(alice)
    _at(clock, date(2026, 4, 20))
    sign_in(client, alice)
    url = f"/billing/licenses/{subscription.id}/change?plan=small&interval=month&addons=operation"
    page = client.get(url)
    assert "Operation, Apr 20, 2026 to May 2, 2026 (13 of 30 days)" in page.text
    assert "<strong>$13.00</strong>" in page.text and "May 3, 2026" in page.text
    form = {
        "csrf_token": csrf_token(page.text),
        "plan": "small",
        "interval": "month",
        "addons": ["operation"],
        "fingerprint": quote_for(
            alice, subscription.id, ChangeRequest("small", "month", ("operation",))
        ).quote.fingerprint,
        "payment_method": db.session.scalar(select(PaymentMethod.id)),
    }
    tampered = client.post(
        f"/billing/licenses/{subscription.id}/change", data={**form, "plan": "large"}
    )
    assert tampered.status_code == 409  # another plan than the quote: nothing happens
    done = client.post(f"/billing/licenses/{subscription.id}/change", data=form)
    assert done.status_code == 302
    history = client.get("/billing/history")
    assert "Plan change" in history.text and "$13.00" in history.text
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 2


def test_another_accounts_license_cannot_be_changed_R_SEC_2(
    app: Flask, client: Any, alice: User, catalog: None
) -> None:
    from .factories import new_user

    bob = new_user("bob")
    subscription = subscribe(bob)
    sign_in(client, alice)
    assert client.get(f"/billing/licenses/{subscription.id}/change").status_code == 404
    assert client.post(f"/billing/licenses/{subscription.id}/change", data={}).status_code in (
        400,
        404,
    )
    assert db.session.scalar(select(func.count()).select_from(InvoiceLine)) == 1


@pytest.fixture
def yen_catalog(app: Flask, tmp_path: Path) -> None:
    """The sample tiers priced in JPY (no minor unit), annual at 90 % of 12 months."""
    path = tmp_path / "jpy.toml"
    path.write_text(
        "annual_discount_percent = 10\n"
        '[[plans]]\ncode = "free"\nname = "Free"\nfree = true\n'
        '[[plans]]\ncode = "small"\nname = "Small"\naddons = ["operation"]\n'
        'change_options = ["free", "medium"]\nprices = [{ currency = "JPY", month = "15000" }]\n'
        '[[plans]]\ncode = "medium"\nname = "Medium"\naddons = ["operation"]\n'
        'change_options = ["free", "small"]\nprices = [{ currency = "JPY", month = "30000" }]\n'
        '[[addons]]\ncode = "operation"\nname = "Operation"\n'
        'prices = [{ currency = "JPY", month = "4500" }]\n'
    )
    result = app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("held", "target", "expected_lines", "card", "left"),
    [
        # tier up: 15000 × 10/31 = 4838.7 → 4839 credited; 30000 × 11/31 = 10645.2 → 10645
        (
            ("small", ()),
            ("medium", "month", ()),
            [("credit", "small", -4839, 10), ("charge", "medium", 10645, 11)],
            5806,
            0,
        ),
        # tier down: 30000 × 10/31 = 9677.4 → 9677; 15000 × 11/31 = 5322.6 → 5323
        (
            ("medium", ()),
            ("small", "month", ()),
            [("credit", "medium", -9677, 10), ("charge", "small", 5323, 11)],
            0,
            4354,
        ),
        # add-on added: 4500 × 11/31 = 1596.8 → 1597
        (
            ("small", ()),
            ("small", "month", ("operation",)),
            [("charge", "operation", 1597, 11)],
            1597,
            0,
        ),
        # add-on removed: 4500 × 10/31 = 1451.6 → 1452
        (
            ("small", ("operation",)),
            ("small", "month", ()),
            [("credit", "operation", -1452, 10)],
            0,
            1452,
        ),
        # monthly → annual: ¥162,000 (12 × 15000 × 90 %) for a new year from the change day
        (
            ("small", ()),
            ("small", "year", ()),
            [("credit", "small", -4839, 10), ("charge", "small", 162000, 365)],
            157161,
            0,
        ),
        # paid → Free
        (("small", ()), ("free", "month", ()), [("credit", "small", -4839, 10)], 0, 4839),
    ],
)
def test_reference_scenarios_in_JPY_R_PRO_1_R_MON_1(
    app: Flask,
    alice: User,
    yen_catalog: None,
    clock: Any,
    held: tuple,
    target: tuple,
    expected_lines: list,
    card: int,
    left: int,
) -> None:
    """R-PRO-1 in a currency without a minor unit: every amount a whole yen (R-MON-1)."""
    from flask_subscriptions.services import checkout
    from flask_subscriptions.services.payment_methods import usable_methods

    _at(clock, date(2026, 3, 17))
    add_card(alice)
    order = checkout.start_order(held[0], "month", "JPY", list(held[1]), alice)
    checkout.choose_payment_method(order, alice, usable_methods(alice.billing_id)[0].id)
    view = checkout.view_order(order, alice)
    assert checkout.place_order(order.key, alice, view.quote.fingerprint).state == "paid"
    subscription = db.session.scalar(select(Subscription))
    _at(clock, date(2026, 4, 6))
    quote, _ = _change(alice, subscription, target[0], target[1], target[2])
    assert _lines(quote) == expected_lines
    assert (quote.currency, quote.card_amount, quote.balance_after) == ("JPY", card, left)
    assert current_balance(alice.billing_id).amount == left
