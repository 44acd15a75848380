"""Properties that hold for any price, any day and any calendar (R-MON-2, R-PRO-4/5).

Hypothesis generates the cases; the settings stay modest because CI has two cores.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, Literal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flask_subscriptions.core.money import allocate, round_half_up
from flask_subscriptions.core.proration import (
    charge_from,
    downgrade_credit,
    prorate,
    upgrade_credit,
)
from flask_subscriptions.core.quotes import (
    CouponTerms,
    Holding,
    LineKind,
    NothingToChange,
    Price,
    Quote,
    Target,
    make_quote,
    next_holding,
    quote_change,
    quote_purchase,
    quote_renewal,
    quote_settlement,
)
from flask_subscriptions.core.terms import (
    Interval,
    Term,
    add_interval,
    days_from,
    remaining_days_after,
    term_at,
    term_containing,
    used_days,
)

MODEST = settings(max_examples=150, deadline=None, database=None)

amounts = st.integers(min_value=0, max_value=10**9)
anchors = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
intervals = st.sampled_from([Interval.MONTH, Interval.YEAR])
currencies = st.sampled_from(["USD", "JPY", "KRW", "KWD"])


@st.composite
def terms_and_days(draw: st.DrawFn) -> tuple[Term, date]:
    """A real term of some subscription and a day inside it."""
    anchor, interval = draw(anchors), draw(intervals)
    term = term_at(anchor, interval, draw(st.integers(0, 24)))
    day = term.start + timedelta(days=draw(st.integers(0, term.days - 1)))
    return term, day


@st.composite
def priced(draw: st.DrawFn) -> tuple[int, int]:
    """(paid, list): what was paid is at most the list price (coupon, annual discount)."""
    list_amount = draw(amounts)
    return draw(st.integers(0, list_amount)), list_amount


def assert_int(*values: Any) -> None:
    """R-MON-1: every amount is an int, never a float, Fraction or Decimal."""
    for value in values:
        assert type(value) is int, value


@MODEST
@given(st.fractions(), st.integers(-(10**6), 10**6))
def test_round_half_up_is_within_half_and_symmetric_R_MON_2(value: Fraction, shift: int) -> None:
    """R-MON-2: rounding moves a value by at most 1/2, the same way for credits and charges."""
    rounded = round_half_up(value)
    assert_int(rounded)
    assert abs(rounded - value) <= Fraction(1, 2)
    assert round_half_up(-value) == -rounded
    magnitude, whole = abs(value), abs(shift)
    assert round_half_up(magnitude + whole) == round_half_up(magnitude) + whole


@MODEST
@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_allocate_adds_up_exactly_R_MON_2(total: int, weights: list[int]) -> None:
    """R-MON-2: spreading a rounded amount keeps the sum, each part within one of its share."""
    parts = allocate(total, weights)
    assert_int(*parts)
    assert sum(parts) == total
    if any(weights):
        for part, weight in zip(parts, weights, strict=True):
            assert abs(part - Fraction(total * weight, sum(weights))) < 1


@MODEST
@given(anchors, intervals, st.integers(0, 60))
def test_terms_follow_each_other_R_TIME_2(anchor: date, interval: Interval, index: int) -> None:
    """R-TIME-2: consecutive terms touch, keep the anchor day when the month has it."""
    term, following = term_at(anchor, interval, index), term_at(anchor, interval, index + 1)
    assert term.end == following.start
    assert term.start.day == anchor.day or term.start.day < anchor.day
    assert 28 <= term.days <= 31 if interval is Interval.MONTH else term.days in (365, 366)
    assert add_interval(anchor, interval, index) == term.start


@MODEST
@given(anchors, intervals, st.integers(0, 3000))
def test_term_containing_holds_the_day_R_TIME_2(
    anchor: date, interval: Interval, offset: int
) -> None:
    """R-TIME-2 / R-REN-2: every day after the anchor lies in exactly one term."""
    day = anchor + timedelta(days=offset)
    index, term = term_containing(anchor, interval, day)
    assert term.contains(day)
    assert term == term_at(anchor, interval, index)


@MODEST
@given(terms_and_days())
def test_day_counts_partition_the_term_R_TIME_3(case: tuple[Term, date]) -> None:
    """R-TIME-3 / R-PRO-2: used + remaining = term days; the change day is in both sides."""
    term, day = case
    assert used_days(term, day) + remaining_days_after(term, day) == term.days
    assert days_from(term, day) == remaining_days_after(term, day) + 1


@MODEST
@given(amounts, anchors, intervals, st.integers(0, 24))
def test_a_full_term_prices_to_exactly_the_price_R_MON_2(
    amount: int, anchor: date, interval: Interval, index: int
) -> None:
    """R-MON-2 / R-PRO-2: charging a whole term from its first day is the price, to the unit."""
    term = term_at(anchor, interval, index)
    charge = charge_from(amount, term, term.start)
    assert_int(charge)
    assert charge == amount
    assert prorate(amount, term.days, term.days) == amount


@MODEST
@given(priced(), terms_and_days())
def test_no_remaining_days_no_credit_R_PRO_4_R_PRO_5(
    money: tuple[int, int], case: tuple[Term, date]
) -> None:
    """R-PRO-4 / R-PRO-5: on the last day of a period nothing is left to credit."""
    (paid, list_amount), (term, _) = money, case
    assert upgrade_credit(paid, term, term.last_day) == 0
    split = downgrade_credit(paid, list_amount, term, term.last_day)
    assert (split.credit, split.penalty, split.net) == (0, 0, 0)


@MODEST
@given(priced(), terms_and_days())
def test_a_credit_never_exceeds_what_was_paid_R_PRO_4_R_PRO_5(
    money: tuple[int, int], case: tuple[Term, date]
) -> None:
    """R-PRO-4 / R-PRO-5: 0 <= downgrade credit <= upgrade credit <= paid; penalty >= 0."""
    (paid, list_amount), (term, day) = money, case
    up = upgrade_credit(paid, term, day)
    split = downgrade_credit(paid, list_amount, term, day)
    assert_int(up, split.credit, split.penalty, split.net)
    assert 0 <= split.net <= split.credit == up <= paid
    assert split.penalty >= 0
    exact = max(Fraction(0), paid - Fraction(list_amount * used_days(term, day), term.days))
    assert split.net == min(up, round_half_up(exact))


@MODEST
@given(amounts, terms_and_days())
def test_no_discount_means_no_penalty_R_PRO_5(amount: int, case: tuple[Term, date]) -> None:
    """R-PRO-5: an item paid at its list price is credited exactly as R-PRO-4 says."""
    term, day = case
    assert downgrade_credit(amount, amount, term, day).penalty == 0


@MODEST
@given(amounts, anchors, intervals, st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_split_term_parts_add_up_to_the_whole_R_MON_2(
    amount: int, anchor: date, interval: Interval, cuts: list[int]
) -> None:
    """R-MON-2: pricing the parts of a term separately adds up to its price within one unit
    per part (each part is rounded once, so each is off by at most one half)."""
    term = term_at(anchor, interval, 0)
    bounds = sorted({0, term.days, *(cut % term.days for cut in cuts)})
    parts = [prorate(amount, b - a, term.days) for a, b in itertools.pairwise(bounds)]
    assert_int(*parts)
    assert abs(sum(parts) - amount) <= Fraction(len(parts), 2)
    day = term.start + timedelta(days=cuts[0] % term.days)
    used = prorate(amount, used_days(term, day), term.days)
    assert abs(used + upgrade_credit(amount, term, day) - amount) <= 1


PLANS = ["xsmall", "small", "medium", "large"]
ADDONS = ["operation", "marketing"]


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[str, dict[tuple[str, Interval], Price]]:
    """A random catalog in one currency: 4 ranked plans, 2 add-ons, monthly and annual."""
    currency = draw(currencies)
    percent_paid = draw(st.integers(50, 100))  # R-CAT-4 annual discount
    prices: dict[tuple[str, Interval], Price] = {}
    for number, code in enumerate(PLANS + ADDONS):
        monthly = draw(st.integers(0, 10**6))
        kind: Literal["plan", "addon"] = "plan" if code in PLANS else "addon"
        yearly_list = 12 * monthly
        yearly = round_half_up(Fraction(yearly_list * percent_paid, 100))
        for interval, amount, list_amount in (
            (Interval.MONTH, monthly, monthly),
            (Interval.YEAR, yearly, yearly_list),
        ):
            price_id = 2 * number + (interval is Interval.YEAR)
            prices[code, interval] = Price(
                code, kind, code, price_id, amount, list_amount, currency, interval
            )
    return currency, prices


@st.composite
def orders(draw: st.DrawFn, prices: dict[tuple[str, Interval], Price]) -> Target:
    """A plan, some add-ons and an interval from ``prices``."""
    plan = draw(st.sampled_from(PLANS))
    addons = draw(st.lists(st.sampled_from(ADDONS), unique=True, max_size=2))
    interval = draw(intervals)
    chosen = tuple(prices[code, interval] for code in [plan, *addons])
    return Target(PLANS.index(plan) + 1, interval, chosen)


@st.composite
def coupons(draw: st.DrawFn, currency: str) -> CouponTerms | None:
    kind = draw(st.sampled_from(["none", "percent", "fixed"]))
    if kind == "none":
        return None
    value = draw(st.integers(1, 100) if kind == "percent" else st.integers(1, 10**6))
    duration = draw(st.sampled_from(["once", "repeating", "forever"]))
    terms = draw(st.integers(1, 5)) if duration == "repeating" else None
    money = currency if kind == "fixed" else None
    return CouponTerms("C", kind, value, money, duration, terms)  # type: ignore[arg-type]


@st.composite
def subscriptions(draw: st.DrawFn) -> tuple[dict[tuple[str, Interval], Price], Target, Holding]:
    """A subscription bought through quote_purchase (maybe with a coupon), as stored."""
    _, prices = draw(catalogs())
    bought = draw(orders(prices))
    currency = bought.prices[0].currency
    purchase = quote_purchase(bought.prices, draw(anchors), 0, draw(coupons(currency)))
    now = next_holding(purchase, bought)
    assert now is not None
    return prices, bought, now


def assert_settles(quote: Quote) -> None:
    """R-PRO-3: lines sum to the total and the balance arithmetic holds, all in ints."""
    assert sum(line.amount for line in quote.lines) == quote.total
    assert quote.total == quote.charge_total - quote.credit_total
    assert quote.credit_total >= 0 and quote.charge_total >= 0
    assert quote.balance_used == min(quote.balance_before + quote.credit_total, quote.charge_total)
    assert quote.card_amount == quote.charge_total - quote.balance_used >= 0
    assert quote.balance_after == quote.balance_before + quote.credit_total - quote.balance_used
    assert quote.balance_after >= 0
    assert_int(
        quote.credit_total,
        quote.charge_total,
        quote.balance_used,
        quote.card_amount,
        quote.balance_after,
        *(line.amount for line in quote.lines),
    )


@MODEST
@given(subscriptions(), st.data())
def test_upgrade_then_downgrade_back_never_creates_money_R_PRO_4_R_PRO_5(
    subscription: tuple[dict[tuple[str, Interval], Price], Target, Holding], data: st.DataObject
) -> None:
    """R-PRO-4 / R-PRO-5: a change and the change straight back on the same day never leave
    the customer richer: the change day is paid under both terms (R-PRO-2) and each credit
    is at most the unused share of what was really paid. The second quote starts from the
    holding that the first one leaves."""
    prices, before, now = subscription
    wanted = data.draw(orders(prices))
    day = now.term.start + timedelta(days=data.draw(st.integers(0, now.term.days - 1)))
    balance = data.draw(st.integers(0, 10**6))
    try:
        there = quote_change(now, wanted, day, balance)
    except NothingToChange:
        assume(False)
        return
    middle = next_holding(there, wanted, now)
    assert middle is not None
    back = quote_change(middle, before, day, there.balance_after)
    assert_settles(there)
    assert_settles(back)
    assert there.total + back.total >= 0
    paid_by_card = there.card_amount + back.card_amount
    assert back.balance_after - balance - paid_by_card <= 0


@MODEST
@given(subscriptions(), st.data())
def test_change_quotes_settle_R_PRO_3(
    subscription: tuple[dict[tuple[str, Interval], Price], Target, Holding], data: st.DataObject
) -> None:
    """R-PRO-3 / R-PRO-7: any change quote sums and settles; credits never reach a card."""
    prices, _, now = subscription
    day = now.term.start + timedelta(days=data.draw(st.integers(0, now.term.days - 1)))
    free = data.draw(st.booleans())
    wanted = Target(0, Interval.MONTH, ()) if free else data.draw(orders(prices))
    try:
        quote = quote_change(now, wanted, day, data.draw(st.integers(0, 10**7)))
    except NothingToChange:
        assume(False)
        return
    assert_settles(quote)
    credited = -sum(line.amount for line in quote.lines if line.kind is LineKind.CREDIT)
    assert credited <= sum(item.paid for item in now.items)


@MODEST
@given(st.data())
def test_purchase_renewal_settlement_quotes_settle_R_PRO_3(data: st.DataObject) -> None:
    """R-PRO-3 / R-REN-1 / R-DUN-3: balance first, card for the rest, in every quote kind."""
    currency, prices = data.draw(catalogs())
    wanted = data.draw(orders(prices))
    balance = data.draw(st.integers(0, 10**7))
    offer = data.draw(coupons(currency))
    purchase = quote_purchase(wanted.prices, data.draw(anchors), balance, offer)
    assert purchase.new_term is not None
    renewal = quote_renewal(
        wanted.prices, purchase.new_term, balance, offer, data.draw(st.integers(0, 6))
    )
    invoices = data.draw(
        st.lists(st.tuples(st.integers(1, 10**6), st.text(max_size=5), amounts), min_size=1)
    )
    settlement = quote_settlement(invoices, currency, balance)
    for quote in (purchase, renewal, settlement):
        assert_settles(quote)
    assert purchase.charge_total <= sum(p.amount for p in wanted.prices)
    holding = next_holding(purchase, wanted)
    assert holding is not None
    assert sum(item.paid for item in holding.items) == purchase.charge_total


@MODEST
@given(st.data())
def test_fingerprint_is_stable_and_changes_with_any_line_R_PRO_7(data: st.DataObject) -> None:
    """R-PRO-7 / R-BUY-9: equal inputs, equal fingerprint; any changed line field, another."""
    _, prices = data.draw(catalogs())
    wanted = data.draw(orders(prices))
    start, balance = data.draw(anchors), data.draw(st.integers(0, 10**6))
    quote = quote_purchase(wanted.prices, start, balance)
    assert quote_purchase(wanted.prices, start, balance).fingerprint == quote.fingerprint
    index = data.draw(st.integers(0, len(quote.lines) - 1))
    line = quote.lines[index]
    changes: dict[str, Any] = data.draw(
        st.sampled_from(
            [
                {"amount": line.amount + 1},
                {"name": line.name + "!"},
                {"item_code": f"{line.item_code}-x"},
                {"start": line.start - timedelta(days=1) if line.start else date(2020, 1, 1)},
                {"end": line.end + timedelta(days=1) if line.end else date(2020, 1, 2)},
                {"days": (line.days or 0) + 1},
                {"term_days": (line.term_days or 0) + 1},
                {"basis": (line.basis or 0) + 1},
                {"price_id": (line.price_id or 0) + 1},
                {"invoice_id": (line.invoice_id or 0) + 1},
                {"kind": LineKind.INVOICE},
            ]
        )
    )
    lines = list(quote.lines)
    lines[index] = dataclasses.replace(line, **changes)
    changed = make_quote(quote.kind, quote.currency, lines, balance, quote.new_term)
    assert changed.fingerprint != quote.fingerprint
