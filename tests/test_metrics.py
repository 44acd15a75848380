"""Metrics (R-OPS-2) against figures worked out by hand for a seeded history: purchases,
an upgrade, an annual plan, a coupon that lasts, a churned and reactivated account, a
restricted one and a recovered one; and a statement count that does not grow with the
number of accounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from flask_subscriptions.models import Coupon
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.audit import Actor
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.metrics import metrics
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.support import adjust_credit

from .conftest import signed_in, statements
from .factories import add_card, new_user, subscribe
from .flows import FIRST_CHARGE_ONLY, VISA, text_of
from .hosts import db
from .test_support import _person

PERIOD = (date(2026, 3, 1), date(2026, 5, 1))


def _at(clock: Any, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _change(user: Any, subscription_id: int, plan: str) -> None:
    request = ChangeRequest(plan, "month", ())
    shown = quote_for(user, subscription_id, request)
    method = payment_methods.default_method_id(user.billing_id)
    apply_change(user, subscription_id, request, shown.quote.fingerprint, method)


@pytest.fixture
def history(app: Flask, catalog: None, clock: Any) -> dict[str, Any]:
    """March 17: seven purchases. April 6: dave upgrades, erin moves to Free. April 17:
    renewals; frank's and george's are declined; george's new card recovers it on the
    18th; frank is restricted on the 24th. April 25: erin buys again; alice gets a $25
    credit from support."""
    db.session.add(
        Coupon(code="FOREVER20", kind="percent", value=20, duration="forever", plan_codes=[])
    )
    db.session.commit()
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "george"]
    people = {name: new_user(name) for name in names}
    subs = {
        "alice": subscribe(people["alice"], "x_small"),
        "bob": subscribe(people["bob"], "small", interval="year"),
        "carol": subscribe(people["carol"], "medium", coupon="FOREVER20"),
        "dave": subscribe(people["dave"], "x_small"),
        "erin": subscribe(people["erin"], "small"),
        "frank": subscribe(people["frank"], "small", card=FIRST_CHARGE_ONLY),
        "george": subscribe(people["george"], "small", card=FIRST_CHARGE_ONLY),
    }
    ids = {name: sub.id for name, sub in subs.items()}
    _at(clock, date(2026, 4, 6))
    _change(people["dave"], ids["dave"], "small")
    _change(people["erin"], ids["erin"], "free")
    for offset in range(8):  # April 17 .. 24
        _at(clock, date(2026, 4, 17) + timedelta(days=offset))
        if offset == 1:
            method = add_card(people["george"], VISA)
            payment_methods.set_default(people["george"], method.id)
        renew_due()
        run_dunning()
    _at(clock, date(2026, 4, 25))
    subscribe(people["erin"], "x_small")
    adjust_credit(Actor("sam"), "k" * 32, people["alice"].billing_id, "25.00", "x", grant=True)
    return people


def test_r_ops_2_figures_worked_out_by_hand(history: dict[str, Any]) -> None:
    m = metrics(*PERIOD)
    # alice X Small 50 + bob Small annual 1,080/12 = 90 + carol Medium 200 − 20% = 160
    # + dave Small 100 (upgraded) + frank Small 100 (restricted, still billed) + george
    # Small 100 + erin X Small 50 (again) = $650.00 a month.
    [usd] = m.recurring
    assert (usd.currency, usd.mrr, usd.arr, usd.licenses) == ("USD", 65000, 780000, 7)
    assert [(p.plan, p.interval, p.licenses) for p in m.plans] == [
        ("X Small", "month", 2),
        ("Small", "month", 3),
        ("Small", "year", 1),
        ("Medium", "month", 1),
    ]
    assert (m.movements.new, m.movements.ended, m.movements.reactivated) == (7, 1, 1)
    assert [(r.currency, r.count, r.amount) for r in m.in_dunning] == [("USD", 1, 10000)]
    assert [(r.currency, r.count, r.amount) for r in m.recovered] == [("USD", 1, 10000)]
    assert m.restricted_accounts == 1
    # erin's credit from Free (100 × 10/31 = 32.26) paid part of her new X Small.
    assert [(r.currency, r.count, r.amount) for r in m.balances] == [("USD", 1, 2500)]
    # March 31: the seven first invoices: 50 + 90 + 160 + 50 (dave's X Small then)
    # + 100 + 100 + 100 = $650.00; nothing before March; today's from the licenses.
    assert [(p.day, p.mrr) for p in m.history[-2:]] == [
        (date(2026, 3, 31), {"USD": 65000}),
        (date(2026, 4, 25), {"USD": 65000}),
    ]
    assert all(p.mrr == {} for p in m.history[:-2])
    assert len(m.history) == 12


def test_r_ops_2_statements_do_not_grow_with_accounts(app: Flask, history: dict[str, Any]) -> None:
    with statements() as before:
        metrics(*PERIOD)
    for n in range(3):
        subscribe(new_user(f"more{n}"), "medium")
    with statements() as after:
        figures = metrics(*PERIOD)
    assert figures.recurring[0].licenses == 10
    assert len(_reads(after)) == len(_reads(before)) <= 20


def _reads(sent: list[str]) -> list[str]:
    """The queries among the statements (not SQLite's BEGIN, nor a COMMIT)."""
    return [s for s in sent if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def test_r_ops_2_page_chart_and_csv(app: Flask, history: dict[str, Any]) -> None:
    sam = signed_in(app, _person("sam", "support"))
    query = {"from": "2026-03-01", "to": "2026-04-30"}
    page = sam.get("/billing/admin/metrics", query_string=query)
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "$650.00" in shown and "$7,800.00" in shown
    assert "<svg" in page.text and "<polyline" in page.text
    csv = sam.get("/billing/admin/metrics/recurring.csv", query_string=query)
    assert csv.mimetype == "text/csv"
    assert csv.text.splitlines() == ["currency,mrr_minor,arr_minor,licenses", "USD,65000,780000,7"]
    movements = sam.get("/billing/admin/metrics/movements.csv", query_string=query).text
    assert movements.splitlines()[1] == "2026-03-01,2026-04-30,7,1,1"
    owner = signed_in(app, history["alice"])
    assert owner.get("/billing/admin/metrics").status_code == 404
    assert owner.get("/billing/admin/metrics/recurring.csv").status_code == 404
    assert sam.get("/billing/admin/metrics", query_string={"from": "x"}).status_code == 400
