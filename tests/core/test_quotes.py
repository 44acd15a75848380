"""Quotes to the cent: SPEC E1-E3 and golden tables in USD, JPY, KRW and KWD (R-PRO, R-CPN).

Every expected integer is computed by hand in the comment beside it: amount x days / term
days as an exact fraction, then rounded once, half up (R-MON-2).

Catalog (monthly; annual = 12 x monthly list, 90% paid, R-CAT-4):
    USD  xsmall 5000  small 10000  medium 20000  operation 3000  marketing 4000
    JPY  xsmall  550  small  1100  medium  2200  operation  330  marketing  440
    KRW  xsmall 4900  small  9900  medium 19900  operation 2900  marketing 3900
    KWD  xsmall 15000 small 30000  medium 60000  operation 9000  marketing 12000
    e.g. USD small/year: list 120000, paid 108000; JPY small/year: list 13200, paid 11880.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from fractions import Fraction
from typing import Literal

import pytest

from flask_subscriptions.core.money import CurrencyMismatch
from flask_subscriptions.core.quotes import (
    CouponNotApplicable,
    CouponTerms,
    HeldItem,
    Holding,
    LineKind,
    NothingToChange,
    Price,
    Quote,
    QuoteLine,
    Target,
    make_quote,
    next_holding,
    quote_change,
    quote_purchase,
    quote_renewal,
    quote_settlement,
    withdrawal,
)
from flask_subscriptions.core.terms import Interval, Term

MONTH, YEAR = Interval.MONTH, Interval.YEAR
MONTHLY = {
    "USD": {"xsmall": 5000, "small": 10000, "medium": 20000, "operation": 3000, "marketing": 4000},
    "JPY": {"xsmall": 550, "small": 1100, "medium": 2200, "operation": 330, "marketing": 440},
    "KRW": {"xsmall": 4900, "small": 9900, "medium": 19900, "operation": 2900, "marketing": 3900},
    "KWD": {
        "xsmall": 15000,
        "small": 30000,
        "medium": 60000,
        "operation": 9000,
        "marketing": 12000,
    },
}
MONTHLY["USD"]["support"] = 1515  # 15.15: chosen so that 1515 x 13 / 30 = 656.5 exactly
RANK = {"xsmall": 1, "small": 2, "medium": 3}
NAMES = {"xsmall": "X Small", "small": "Small", "medium": "Medium"}
CODES = ["xsmall", "small", "medium", "operation", "marketing", "support"]

TM = Term(date(2026, 3, 17), date(2026, 4, 17))  # 31 days (SPEC E3)
D = date(2026, 4, 6)  # in TM: 21 used, 10 after, 11 from
TE1 = Term(date(2026, 4, 3), date(2026, 5, 3))  # 30 days (SPEC E1)
TY = Term(date(2024, 1, 1), date(2025, 1, 1))  # 366 days
DY = date(2024, 7, 1)  # in TY: 183 used (exactly half), 183 after, 184 from
TJ = Term(date(2026, 1, 15), date(2027, 1, 15))  # 365 days
DJ = date(2026, 5, 20)  # in TJ: 126 used, 239 after, 240 from


def price(currency: str, code: str, interval: Interval = MONTH) -> Price:
    """The catalog price of ``code``; annual = 12 x monthly list, 90% paid (R-CAT-4)."""
    monthly = MONTHLY[currency][code]
    kind: Literal["plan", "addon"] = "plan" if code in RANK else "addon"
    list_amount = monthly if interval is MONTH else 12 * monthly
    amount = list_amount if interval is MONTH else list_amount * 9 // 10
    price_id = CODES.index(code) * 2 + (interval is YEAR) + 1
    name = NAMES.get(code, code.title())
    return Price(code, kind, name, price_id, amount, list_amount, currency, interval)


def held(p: Price, period: Term, paid: int | None = None) -> HeldItem:
    """What a full-price purchase of ``p`` for ``period`` leaves (``paid`` if discounted)."""
    paid = p.amount if paid is None else paid
    return HeldItem(
        p.item_code, p.item_kind, p.name, p.price_id, paid, p.list_amount, p.currency, period
    )


HeldSpec = str | tuple[str, int]


def holding(currency: str, specs: list[HeldSpec], interval: Interval, term: Term) -> Holding:
    """A holding of catalog items for ``term``; a (code, paid) spec was paid less (coupon)."""
    items = []
    for spec in specs:
        code, paid = (spec, None) if isinstance(spec, str) else spec
        items.append(held(price(currency, code, interval), term, paid))
    plan = next(item.item_code for item in items if item.item_kind == "plan")
    return Holding(RANK[plan], interval, term, tuple(items))


def target(currency: str, codes: list[str], interval: Interval) -> Target:
    """What the owner asks for; no codes is the Free plan (rank 0)."""
    prices = tuple(price(currency, code, interval) for code in codes)
    rank = next((RANK[code] for code in codes if code in RANK), 0)
    return Target(rank, interval, prices)


def summary(quote: Quote) -> list[tuple[str, str | None, int]]:
    return [(line.kind.value, line.item_code, line.amount) for line in quote.lines]


def assert_invariants(quote: Quote) -> None:
    """R-PRO-3 / R-PRO-7: how every quote settles against the balance."""
    assert sum(line.amount for line in quote.lines) == quote.total
    assert quote.total == quote.charge_total - quote.credit_total
    assert quote.balance_used == min(quote.balance_before + quote.credit_total, quote.charge_total)
    assert quote.card_amount == quote.charge_total - quote.balance_used >= 0
    assert quote.balance_after == quote.balance_before + quote.credit_total - quote.balance_used
    assert quote.balance_after >= 0
    for value in (quote.credit_total, quote.charge_total, quote.card_amount, quote.balance_after):
        assert type(value) is int


# ---------------------------------------------------------------------------------------
# SPEC worked examples
# ---------------------------------------------------------------------------------------


def test_add_on_charge_E1_R_PRO_2() -> None:
    """R-PRO-2 (E1): Operation (30/month) added Apr 20 to a term Apr 3 - May 3 costs 13.00.

    Charged from Apr 20 to May 2, 13 days: 3000 x 13 / 30 = 1300 exactly.
    """
    now = holding("USD", ["small"], MONTH, TE1)
    quote = quote_change(now, target("USD", ["small", "operation"], MONTH), date(2026, 4, 20), 0)
    (line,) = quote.lines
    assert (line.kind, line.item_code, line.amount) == (LineKind.CHARGE, "operation", 1300)
    assert (line.start, line.end, line.days, line.term_days) == (
        date(2026, 4, 20),
        date(2026, 5, 3),
        13,
        30,
    )
    assert line.basis == 3000
    assert line.description == "Operation, Apr 20, 2026 to May 2, 2026 (13 of 30 days)"
    assert (quote.card_amount, quote.direction, quote.new_term) == (1300, "upgrade", None)
    assert_invariants(quote)


def _e2_plan() -> Price:
    # R-CAT-4: annual list 1000.00, paid 900.00 after the 10% annual discount.
    return Price("pro", "plan", "Pro", 77, 90000, 100000, "USD", YEAR)


def test_discounted_downgrade_E2_R_PRO_5_R_CPN_3() -> None:
    """R-PRO-5 / R-CPN-3 (E2): after exactly half the term the credit is 400, penalty 50.

    Term 2024-01-01 .. 2025-01-01 is 366 days; Jul 1 is day 183, so used = 183/366 = 1/2.
    R-PRO-4 credit: 90000 x 183/366 = 45000. R-PRO-5 credit: 90000 - 100000 x 1/2 = 40000.
    Lines: CREDIT -45000 and PENALTY +5000, netting to the R-PRO-5 credit of 40000.
    """
    now = Holding(5, YEAR, TY, (held(_e2_plan(), TY),))
    quote = quote_change(now, Target(0, YEAR, ()), DY, 0)
    assert summary(quote) == [("credit", "pro", -45000), ("penalty", "pro", 5000)]
    credit, penalty = quote.lines
    assert (credit.start, credit.end, credit.days, credit.term_days, credit.basis) == (
        date(2024, 7, 2),
        date(2025, 1, 1),
        183,
        366,
        90000,
    )
    assert (penalty.start, penalty.end, penalty.days, penalty.basis) == (
        date(2024, 1, 1),
        date(2024, 7, 2),
        183,
        100000,
    )
    assert (quote.credit_total, quote.charge_total, quote.card_amount) == (40000, 0, 0)
    assert (quote.balance_after, quote.direction, quote.new_term) == (40000, "downgrade", None)
    assert_invariants(quote)


def test_discounted_downgrade_to_cheaper_plan_E2_R_PRO_5() -> None:
    """R-PRO-5 (E2 numbers): the penalty is shown beside the new plan's charge (R-PRO-7).

    Lite/year 450.00 list 500.00 from Jul 1, 184 of 366 days: 45000 x 184/366 = 22622.95
    -> 22623. Credit 40000 net pays it; 17377 stays on the balance.
    """
    now = Holding(5, YEAR, TY, (held(_e2_plan(), TY),))
    lite = Price("lite", "plan", "Lite", 78, 45000, 50000, "USD", YEAR)
    quote = quote_change(now, Target(3, YEAR, (lite,)), DY, 0)
    assert summary(quote) == [
        ("credit", "pro", -45000),
        ("penalty", "pro", 5000),
        ("charge", "lite", 22623),
    ]
    assert (quote.balance_used, quote.card_amount, quote.balance_after) == (22623, 0, 17377)
    assert_invariants(quote)


def test_upgrade_credit_E3_R_PRO_4() -> None:
    """R-PRO-4 (E3): X Small -> Small on Apr 6 of Mar 17 - Apr 17 (31 days); card pays 19.35.

    Credit X Small 5000 x 10/31 = 1612.90 -> 1613 (Apr 7 - Apr 16).
    Charge Small 10000 x 11/31 = 3548.39 -> 3548 (Apr 6 - Apr 16).
    Balance 1613 is used first: the card pays 3548 - 1613 = 1935. Add-ons: no lines.
    """
    now = holding("USD", ["xsmall", "operation", "marketing"], MONTH, TM)
    quote = quote_change(now, target("USD", ["small", "operation", "marketing"], MONTH), D, 0)
    assert summary(quote) == [("credit", "xsmall", -1613), ("charge", "small", 3548)]
    credit, charge = quote.lines
    assert (credit.start, credit.end, credit.days, credit.term_days) == (
        date(2026, 4, 7),
        date(2026, 4, 17),
        10,
        31,
    )
    assert (charge.start, charge.end, charge.days, charge.term_days) == (D, TM.end, 11, 31)
    assert credit.description == (
        "Credit for X Small, unused Apr 7, 2026 to Apr 16, 2026 (10 of 31 days)"
    )
    assert charge.description == "Small, Apr 6, 2026 to Apr 16, 2026 (11 of 31 days)"
    assert (quote.balance_used, quote.card_amount, quote.balance_after) == (1613, 1935, 0)
    assert quote.direction == "upgrade"
    assert_invariants(quote)


# ---------------------------------------------------------------------------------------
# Golden table: immediate changes (R-PRO-1..6)
# ---------------------------------------------------------------------------------------

Line = tuple[str, str, int]
CHANGES = [
    # ---- USD, monthly term Mar 17 - Apr 17 (31 days), change Apr 6 ----------------------
    pytest.param(
        "USD", ["xsmall", "operation", "marketing"], MONTH, TM,
        ["small", "operation", "marketing"], MONTH, D, 5000,
        # 5000x10/31=1612.90->1613; 10000x11/31=3548.39->3548; balance 5000+1613 covers it
        [("credit", "xsmall", -1613), ("charge", "small", 3548)], 0, 3065, "upgrade",
        id="usd-upgrade-balance-covers-R-PRO-3",
    ),
    pytest.param(
        "USD", ["small"], MONTH, TM, ["xsmall"], MONTH, D, 0,
        # R-PRO-5 no discount: 10000 - 10000x21/31 = 3225.81 -> 3226 (= R-PRO-4, no penalty)
        # 5000x11/31 = 1774.19 -> 1774; balance after 3226 - 1774 = 1452
        [("credit", "small", -3226), ("charge", "xsmall", 1774)], 0, 1452, "downgrade",
        id="usd-downgrade-no-discount-R-PRO-5",
    ),
    pytest.param(
        "USD", [("small", 8000)], MONTH, TM, ["xsmall"], MONTH, D, 0,
        # paid 8000 (20% coupon), list 10000. R-PRO-4: 8000x10/31 = 2580.65 -> 2581
        # R-PRO-5: 8000 - 10000x21/31 = 1225.81 -> 1226; penalty 2581 - 1226 = 1355
        # charge 1774; balance 1226 used; card 1774 - 1226 = 548
        [("credit", "small", -2581), ("penalty", "small", 1355), ("charge", "xsmall", 1774)],
        548, 0, "downgrade",
        id="usd-downgrade-coupon-discount-R-CPN-3",
    ),
    pytest.param(
        "USD", ["small", "operation", "marketing"], MONTH, TM,
        ["small", "operation"], MONTH, D, 0,
        # remove Marketing: 4000x10/31 = 1290.32 -> 1290, no penalty (list price paid)
        [("credit", "marketing", -1290)], 0, 1290, "downgrade",
        id="usd-remove-add-on-R-PRO-1",
    ),
    pytest.param(
        "USD", ["small"], MONTH, TM, ["small", "operation"], MONTH, D, 0,
        # add Operation: 3000x11/31 = 1064.52 -> 1065; nothing else changes
        [("charge", "operation", 1065)], 1065, 0, "upgrade",
        id="usd-add-add-on-R-PRO-2",
    ),
    pytest.param(
        "USD", ["small", "marketing"], MONTH, TM, ["small", "operation"], MONTH, D, 0,
        # swap: credit Marketing 1290, charge Operation 1065; 1290 - 1065 = 225 left
        [("credit", "marketing", -1290), ("charge", "operation", 1065)], 0, 225, "none",
        id="usd-swap-add-ons-R-PRO-1",
    ),
    pytest.param(
        "USD", ["xsmall"], MONTH, TM, ["small"], MONTH, date(2026, 3, 17), 0,
        # first day: 1 used, 30 after, 31 from. 5000x30/31 = 4838.71 -> 4839; 10000x31/31
        [("credit", "xsmall", -4839), ("charge", "small", 10000)], 5161, 0, "upgrade",
        id="usd-upgrade-first-day-of-term",
    ),
    pytest.param(
        "USD", ["xsmall"], MONTH, TM, ["small"], MONTH, date(2026, 4, 16), 0,
        # last day: 0 after -> no credit line; 10000x1/31 = 322.58 -> 323
        [("charge", "small", 323)], 323, 0, "upgrade",
        id="usd-upgrade-last-day-of-term",
    ),
    pytest.param(
        "USD", ["small"], MONTH, TM, [], MONTH, date(2026, 4, 16), 700,
        # last day to Free: R-PRO-4 0 days, R-PRO-5 10000 - 10000x31/31 = 0: no lines
        [], 0, 700, "downgrade",
        id="usd-free-on-last-day-nothing-to-credit",
    ),
    pytest.param(
        "USD", ["small", "operation"], MONTH, TM, [], MONTH, D, 0,
        # to Free: 10000x10/31 = 3225.81 -> 3226; 3000x10/31 = 967.74 -> 968; sum 4194
        [("credit", "small", -3226), ("credit", "operation", -968)], 0, 4194, "downgrade",
        id="usd-paid-to-free-R-PRO-1",
    ),
    pytest.param(
        "USD", ["small"], MONTH, TE1, ["small", "support"], MONTH, date(2026, 4, 20), 0,
        # E1 term, 13 days from Apr 20: 1515x13/30 = 656.5 exactly -> 657 (half up, not even)
        [("charge", "support", 657)], 657, 0, "upgrade",
        id="usd-half-cent-charge-rounds-up-R-MON-2",
    ),
    pytest.param(
        "USD", ["small", "support"], MONTH, TE1, ["small"], MONTH, date(2026, 4, 19), 0,
        # 13 days after Apr 19: 1515x13/30 = 656.5 -> credit -657 (symmetric half up)
        [("credit", "support", -657)], 0, 657, "downgrade",
        id="usd-half-cent-credit-rounds-up-R-MON-2",
    ),
    pytest.param(
        "USD", ["small"], MONTH, TM, ["small"], YEAR, D, 0,
        # month -> year: credit 3226 (R-PRO-4); new term Apr 6 2026 - Apr 6 2027 at 108000
        [("credit", "small", -3226), ("charge", "small", 108000)], 104774, 0, "upgrade",
        id="usd-monthly-to-annual-R-PRO-6",
    ),
    pytest.param(
        "USD", ["small", "operation"], MONTH, TM, ["small", "operation"], YEAR, D, 0,
        # credits 3226 + 968 = 4194; charges 108000 + 32400 = 140400; card 136206
        [("credit", "small", -3226), ("credit", "operation", -968),
         ("charge", "small", 108000), ("charge", "operation", 32400)], 136206, 0, "upgrade",
        id="usd-monthly-to-annual-with-add-on-R-PRO-6",
    ),
    pytest.param(
        "USD", ["small"], YEAR, TY, ["small"], MONTH, DY, 0,
        # year -> month, half used: R-PRO-4 108000/2 = 54000; R-PRO-5 108000 - 120000/2
        # = 48000, penalty 6000; new month Jul 1 - Aug 1 at 10000; 48000 - 10000 left
        [("credit", "small", -54000), ("penalty", "small", 6000), ("charge", "small", 10000)],
        0, 38000, "downgrade",
        id="usd-annual-to-monthly-penalty-R-PRO-6",
    ),
    pytest.param(
        "USD", ["small"], YEAR, TY, ["xsmall"], YEAR, DY, 0,
        # credit 54000, penalty 6000 (as above); 54000x184/366 = 27147.54 -> 27148
        [("credit", "small", -54000), ("penalty", "small", 6000), ("charge", "xsmall", 27148)],
        0, 20852, "downgrade",
        id="usd-annual-tier-downgrade-penalty-R-PRO-5",
    ),
    pytest.param(
        "USD", ["xsmall"], YEAR, TY, ["medium"], YEAR, DY, 0,
        # upgrade keeps the discount: 54000x183/366 = 27000; 216000x184/366 = 108590.16
        [("credit", "xsmall", -27000), ("charge", "medium", 108590)], 81590, 0, "upgrade",
        id="usd-annual-upgrade-no-penalty-R-PRO-4",
    ),
    pytest.param(
        "USD", ["small", "marketing"], YEAR, TY, ["small"], YEAR, DY, 0,
        # Marketing/year paid 43200 list 48000: R-PRO-4 21600; R-PRO-5 43200 - 24000 = 19200
        [("credit", "marketing", -21600), ("penalty", "marketing", 2400)], 0, 19200,
        "downgrade",
        id="usd-annual-remove-add-on-penalty-R-PRO-5",
    ),
    pytest.param(
        "USD", ["small", "operation"], YEAR, TY, [], YEAR, DY, 100,
        # to Free: small 54000/6000; Operation/year paid 32400 list 36000: 16200 - 1800
        # net 48000 + 14400 = 62400, plus the 100 already there
        [("credit", "small", -54000), ("penalty", "small", 6000),
         ("credit", "operation", -16200), ("penalty", "operation", 1800)], 0, 62500,
        "downgrade",
        id="usd-annual-to-free-R-PRO-5",
    ),
    # ---- JPY (exponent 0) ----------------------------------------------------------------
    pytest.param(
        "JPY", ["xsmall"], MONTH, TM, ["small"], MONTH, D, 0,
        # 550x10/31 = 177.42 -> 177; 1100x11/31 = 390.32 -> 390; card 213
        [("credit", "xsmall", -177), ("charge", "small", 390)], 213, 0, "upgrade",
        id="jpy-upgrade-R-PRO-4",
    ),
    pytest.param(
        "JPY", ["small"], MONTH, TM, ["small", "operation"], MONTH, D, 0,
        # 330x11/31 = 117.10 -> 117
        [("charge", "operation", 117)], 117, 0, "upgrade",
        id="jpy-add-add-on-R-PRO-2",
    ),
    pytest.param(
        "JPY", ["small"], YEAR, TJ, ["xsmall"], YEAR, DJ, 0,
        # 365-day term, May 20 = day 126. R-PRO-4: 11880x239/365 = 7779.10 -> 7779
        # R-PRO-5: 11880 - 13200x126/365 = 11880 - 4556.71 = 7323.29 -> 7323; penalty 456
        # charge 5940x240/365 = 3905.75 -> 3906; 7323 - 3906 = 3417 left
        [("credit", "small", -7779), ("penalty", "small", 456), ("charge", "xsmall", 3906)],
        0, 3417, "downgrade",
        id="jpy-annual-downgrade-penalty-R-PRO-5",
    ),
    pytest.param(
        "JPY", ["small", "marketing"], MONTH, TM, [], MONTH, D, 0,
        # 1100x10/31 = 354.84 -> 355; 440x10/31 = 141.94 -> 142; 497 to the balance
        [("credit", "small", -355), ("credit", "marketing", -142)], 0, 497, "downgrade",
        id="jpy-paid-to-free",
    ),
    pytest.param(
        "JPY", ["small"], MONTH, TM, ["small"], YEAR, D, 0,
        # credit 355; Small/year 13200 x 90% = 11880; card 11525
        [("credit", "small", -355), ("charge", "small", 11880)], 11525, 0, "upgrade",
        id="jpy-monthly-to-annual-R-PRO-6",
    ),
    # ---- KRW (exponent 0) ----------------------------------------------------------------
    pytest.param(
        "KRW", ["xsmall"], MONTH, TM, ["small"], MONTH, D, 10000,
        # 4900x10/31 = 1580.65 -> 1581; 9900x11/31 = 3512.90 -> 3513; 11581 - 3513 = 8068
        [("credit", "xsmall", -1581), ("charge", "small", 3513)], 0, 8068, "upgrade",
        id="krw-upgrade-balance-R-PRO-3",
    ),
    pytest.param(
        "KRW", ["small", "marketing"], MONTH, TM, ["small"], MONTH, D, 0,
        # 3900x10/31 = 1258.06 -> 1258
        [("credit", "marketing", -1258)], 0, 1258, "downgrade",
        id="krw-remove-add-on",
    ),
    pytest.param(
        "KRW", ["small"], MONTH, TM, ["xsmall"], MONTH, D, 0,
        # 9900x10/31 = 3193.55 -> 3194; 4900x11/31 = 1738.71 -> 1739; 3194 - 1739 = 1455
        [("credit", "small", -3194), ("charge", "xsmall", 1739)], 0, 1455, "downgrade",
        id="krw-downgrade",
    ),
    pytest.param(
        "KRW", ["small"], MONTH, TM, ["small"], YEAR, D, 0,
        # credit 3194; Small/year 118800 x 90% = 106920; card 103726
        [("credit", "small", -3194), ("charge", "small", 106920)], 103726, 0, "upgrade",
        id="krw-monthly-to-annual",
    ),
    pytest.param(
        "KRW", ["small"], YEAR, TY, ["small"], MONTH, DY, 0,
        # half used: 106920/2 = 53460; 106920 - 118800/2 = 47520; penalty 5940; 47520 - 9900
        [("credit", "small", -53460), ("penalty", "small", 5940), ("charge", "small", 9900)],
        0, 37620, "downgrade",
        id="krw-annual-to-monthly-penalty",
    ),
    # ---- KWD (exponent 3) ----------------------------------------------------------------
    pytest.param(
        "KWD", ["xsmall"], MONTH, TM, ["small"], MONTH, D, 0,
        # 15000x10/31 = 4838.71 -> 4839; 30000x11/31 = 10645.16 -> 10645; card 5806
        [("credit", "xsmall", -4839), ("charge", "small", 10645)], 5806, 0, "upgrade",
        id="kwd-upgrade",
    ),
    pytest.param(
        "KWD", ["small", "operation"], MONTH, TM, [], MONTH, D, 0,
        # 30000x10/31 = 9677.42 -> 9677; 9000x10/31 = 2903.23 -> 2903; sum 12580
        [("credit", "small", -9677), ("credit", "operation", -2903)], 0, 12580, "downgrade",
        id="kwd-paid-to-free",
    ),
    pytest.param(
        "KWD", ["small"], MONTH, TM, ["small", "marketing"], MONTH, D, 0,
        # 12000x11/31 = 4258.06 -> 4258
        [("charge", "marketing", 4258)], 4258, 0, "upgrade",
        id="kwd-add-add-on",
    ),
    pytest.param(
        "KWD", ["small"], YEAR, TY, ["xsmall"], YEAR, DY, 0,
        # 324000/2 = 162000; 324000 - 360000/2 = 144000, penalty 18000
        # 162000x184/366 = 81442.62 -> 81443; 144000 - 81443 = 62557 left
        [("credit", "small", -162000), ("penalty", "small", 18000), ("charge", "xsmall", 81443)],
        0, 62557, "downgrade",
        id="kwd-annual-downgrade-penalty",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "now", "now_interval", "term", "wanted", "wanted_interval", "day", "balance",
     "lines", "card", "balance_after", "direction"),
    CHANGES,
)  # fmt: skip
def test_change_golden_R_PRO_1_to_6(
    currency: str,
    now: list[HeldSpec],
    now_interval: Interval,
    term: Term,
    wanted: list[str],
    wanted_interval: Interval,
    day: date,
    balance: int,
    lines: list[Line],
    card: int,
    balance_after: int,
    direction: str,
) -> None:
    """R-PRO-1..6, R-PRO-3: every line, the card amount and the balance left, to the unit."""
    quote = quote_change(
        holding(currency, now, now_interval, term),
        target(currency, wanted, wanted_interval),
        day,
        balance,
    )
    assert summary(quote) == lines
    assert (quote.card_amount, quote.balance_after, quote.direction) == (
        card,
        balance_after,
        direction,
    )
    assert quote.kind == "change"
    assert quote.currency == currency
    assert_invariants(quote)


def test_tier_and_add_on_changes_keep_the_term_end_R_PRO_6() -> None:
    """R-PRO-6: charges for a tier change run to the current term's end; no new term."""
    quote = quote_change(
        holding("USD", ["xsmall"], MONTH, TM),
        target("USD", ["small", "operation"], MONTH),
        D,
        0,
    )
    assert quote.new_term is None
    assert {line.end for line in quote.lines} == {TM.end}


def test_interval_switch_moves_the_billing_date_R_PRO_6() -> None:
    """R-PRO-6: monthly <-> annual starts a new term on the change day itself."""
    up = quote_change(holding("USD", ["small"], MONTH, TM), target("USD", ["small"], YEAR), D, 0)
    assert up.new_term == Term(D, date(2027, 4, 6))
    down = quote_change(holding("USD", ["small"], YEAR, TY), target("USD", ["small"], MONTH), DY, 0)
    assert down.new_term == Term(DY, date(2024, 8, 1))
    charge = down.lines[-1]
    assert (charge.start, charge.end, charge.days, charge.term_days) == (
        DY,
        date(2024, 8, 1),
        31,
        31,
    )


def test_an_interval_switch_takes_its_direction_from_the_interval_R_PRO_10() -> None:
    """R-PRO-10: annual -> monthly is a downgrade even to a higher tier (the reference's
    "Small annual to Large monthly"), so R-PRO-5 applies with its penalty; monthly ->
    annual is an upgrade even to a lower tier, so every item gets R-PRO-4's credit with no
    penalty, a discounted add-on given up included."""
    down = quote_change(
        holding("USD", ["small"], YEAR, TY), target("USD", ["medium"], MONTH), DY, 0
    )
    # paid 108000, list 120000, 183 of 366 days used: 108000 - 120000 x 1/2 = 48000;
    # R-PRO-4 would give 54000, so the penalty is 6000.
    assert down.direction == "downgrade"
    assert summary(down) == [
        ("credit", "small", -54000),
        ("penalty", "small", 6000),
        ("charge", "medium", 20000),
    ]
    up = quote_change(
        holding("USD", ["medium", ("operation", 1500)], MONTH, TM),
        target("USD", ["xsmall"], YEAR),
        D,
        0,
    )
    # 20000 x 10/31 = 6451.61 -> 6452; 1500 x 10/31 = 483.87 -> 484; no penalty line
    assert up.direction == "upgrade"
    assert summary(up) == [
        ("credit", "medium", -6452),
        ("credit", "operation", -484),
        ("charge", "xsmall", 54000),
    ]
    assert_invariants(down)
    assert_invariants(up)


def test_credits_go_to_the_balance_never_to_the_card_R_PRO_3() -> None:
    """R-PRO-3: a credit larger than the charge stays on the balance; the card pays 0."""
    quote = quote_change(
        holding("USD", ["medium"], MONTH, TM), target("USD", ["xsmall"], MONTH), D, 250
    )
    # 20000x10/31 = 6451.61 -> 6452 credit; 5000x11/31 = 1774.19 -> 1774 charge
    assert (quote.credit_total, quote.charge_total) == (6452, 1774)
    assert (quote.balance_used, quote.card_amount) == (1774, 0)
    assert quote.balance_after == 250 + 6452 - 1774
    assert quote.total == -4678


def test_same_plan_and_items_is_nothing_to_change_R_PRO_1() -> None:
    """R-PRO-1: asking for exactly what is held is refused, not quoted as zero."""
    now = holding("USD", ["small", "operation"], MONTH, TM)
    with pytest.raises(NothingToChange):
        quote_change(now, target("USD", ["operation", "small"], MONTH), D, 0)
    assert issubclass(NothingToChange, ValueError)


def test_change_day_must_be_in_the_current_term_R_PRO_2() -> None:
    """R-PRO-2: a change splits the current term, so its day must be inside it."""
    now = holding("USD", ["xsmall"], MONTH, TM)
    with pytest.raises(ValueError, match="not within"):
        quote_change(now, target("USD", ["small"], MONTH), TM.end, 0)


def test_change_into_another_currency_raises_R_MON_3() -> None:
    """R-MON-3: an account bills in one currency; a target in another is refused."""
    now = holding("USD", ["xsmall"], MONTH, TM)
    with pytest.raises(CurrencyMismatch):
        quote_change(now, target("JPY", ["small"], MONTH), D, 0)


def test_re_priced_plan_at_the_same_tier_has_no_penalty_R_PRO_1() -> None:
    """R-PRO-1: the same tier at a new price is not a downgrade: R-PRO-4 credit, no penalty."""
    now = holding("USD", [("small", 9000)], MONTH, TM)
    repriced = Price("small", "plan", "Small", 99, 12000, 12000, "USD", MONTH)
    quote = quote_change(now, Target(2, MONTH, (repriced,)), D, 0)
    # 9000x10/31 = 2903.23 -> 2903; 12000x11/31 = 4258.06 -> 4258
    assert summary(quote) == [("credit", "small", -2903), ("charge", "small", 4258)]
    assert quote.direction == "none"


# ---------------------------------------------------------------------------------------
# Golden table: purchases and coupons (R-BUY-5, R-CPN-1)
# ---------------------------------------------------------------------------------------


def coupon(kind: str, value: int, duration: str = "once", terms: int | None = None,
           currency: str | None = None) -> CouponTerms:  # fmt: skip
    return CouponTerms(f"C{value}", kind, value, currency, duration, terms)  # type: ignore[arg-type]


PURCHASES = [
    # Monthly from Jan 31 2026: term Jan 31 - Feb 28.
    pytest.param("USD", ["small", "operation"], MONTH, 0, None,
                 # 10000 + 3000
                 [10000, 3000], None, 13000, 0, id="usd-no-coupon"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15),
                 # 13000 x 15/100 = 1950
                 [10000, 3000], -1950, 11050, 0, id="usd-percent"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("fixed", 2000, currency="USD"),
                 [10000, 3000], -2000, 11000, 0, id="usd-fixed"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("fixed", 20000, currency="USD"),
                 # a fixed coupon never takes more than the subtotal: min(20000, 13000)
                 [10000, 3000], -13000, 0, 0, id="usd-fixed-above-subtotal"),
    pytest.param("USD", ["small", "operation"], MONTH, 5000, None,
                 # balance first: 5000 used, card 8000
                 [10000, 3000], None, 8000, 0, id="usd-balance-smaller"),
    pytest.param("USD", ["small", "operation"], MONTH, 20000, coupon("percent", 15),
                 # 11050 all from the balance, 8950 left
                 [10000, 3000], -1950, 0, 8950, id="usd-percent-balance-larger"),
    pytest.param("JPY", ["small", "operation"], MONTH, 0, coupon("percent", 15),
                 # 1430 x 15/100 = 214.5 -> 215 (half up, once on the subtotal)
                 [1100, 330], -215, 1215, 0, id="jpy-percent-half-up"),
    pytest.param("JPY", ["small", "operation"], MONTH, 0, coupon("percent", 100),
                 [1100, 330], -1430, 0, 0, id="jpy-percent-100"),
    pytest.param("KRW", ["small", "marketing"], MONTH, 0, coupon("percent", 10),
                 # 13800 x 10/100 = 1380
                 [9900, 3900], -1380, 12420, 0, id="krw-percent"),
    pytest.param("KRW", ["small"], MONTH, 0, coupon("fixed", 5000, currency="KRW"),
                 [9900], -5000, 4900, 0, id="krw-fixed"),
    pytest.param("KWD", ["small"], YEAR, 0, coupon("percent", 25),
                 # Small/year 360000 list, 324000 paid; 324000 x 25/100 = 81000
                 [324000], -81000, 243000, 0, id="kwd-annual-percent"),
    pytest.param("KWD", ["small", "operation"], MONTH, 1000, coupon("percent", 33),
                 # 39000 x 33/100 = 12870; 26130 - 1000 balance = 25130
                 [30000, 9000], -12870, 25130, 0, id="kwd-percent-balance"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "codes", "interval", "balance", "offer", "charges", "discount", "card",
     "balance_after"),
    PURCHASES,
)  # fmt: skip
def test_purchase_golden_R_BUY_5_R_CPN_1(
    currency: str,
    codes: list[str],
    interval: Interval,
    balance: int,
    offer: CouponTerms | None,
    charges: list[int],
    discount: int | None,
    card: int,
    balance_after: int,
) -> None:
    """R-BUY-5 / R-CPN-1: full-term charges, one coupon line, balance first, card for the rest."""
    prices = [price(currency, code, interval) for code in codes]
    quote = quote_purchase(prices, date(2026, 1, 31), balance, offer)
    got = [line.amount for line in quote.lines if line.kind is LineKind.CHARGE]
    assert got == charges
    discounts = [line.amount for line in quote.lines if line.kind is LineKind.DISCOUNT]
    assert discounts == ([] if discount is None else [discount])
    assert (quote.card_amount, quote.balance_after) == (card, balance_after)
    end = date(2026, 2, 28) if interval is MONTH else date(2027, 1, 31)
    assert quote.new_term == Term(date(2026, 1, 31), end)
    assert (quote.kind, quote.direction) == ("purchase", None)
    assert_invariants(quote)


def test_purchase_annual_from_feb_29_R_TIME_2() -> None:
    """R-TIME-2: an annual purchase on Feb 29 2024 runs to Feb 28 2025, at the full price."""
    quote = quote_purchase([price("USD", "small", YEAR)], date(2024, 2, 29), 0)
    assert quote.new_term == Term(date(2024, 2, 29), date(2025, 2, 28))
    assert [line.amount for line in quote.lines] == [108000]
    assert quote.lines[0].days == quote.lines[0].term_days == 365


def test_fixed_coupon_in_another_currency_is_refused_R_CPN_2() -> None:
    """R-CPN-2: a fixed coupon in EUR cannot discount a USD order."""
    with pytest.raises(CouponNotApplicable):
        quote_purchase([price("USD", "small")], D, 0, coupon("fixed", 500, currency="EUR"))


def test_purchase_refuses_mixed_orders_R_MON_3() -> None:
    """R-MON-3: one currency and one interval per order, exactly one plan."""
    with pytest.raises(CurrencyMismatch):
        quote_purchase([price("USD", "small"), price("JPY", "operation")], D, 0)
    with pytest.raises(ValueError, match="interval"):
        quote_purchase([price("USD", "small"), price("USD", "operation", YEAR)], D, 0)
    with pytest.raises(ValueError, match="exactly one plan"):
        quote_purchase([price("USD", "operation")], D, 0)
    with pytest.raises(ValueError, match="twice"):
        quote_purchase([price("USD", "small"), price("USD", "small")], D, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "percent", "value": 0},
        {"kind": "percent", "value": 101},
        {"kind": "fixed", "value": 500},  # no currency
        {"kind": "fixed", "value": 0, "currency": "USD"},
        {"kind": "percent", "value": 10, "duration": "repeating"},  # no duration_terms
        {"kind": "percent", "value": 10, "duration": "repeating", "terms": 0},
        {"kind": "percent", "value": 10, "duration": "once", "terms": 3},
        {"kind": "percent", "value": 10, "duration": "weekly"},
        {"kind": "bogus", "value": 10},
    ],
)
def test_coupon_terms_are_validated_R_CPN_1(kwargs: dict[str, object]) -> None:
    """R-CPN-1: a coupon is a percent (1..100) or a fixed amount with a currency."""
    with pytest.raises(ValueError):
        coupon(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Golden table: renewals (R-REN-1, coupon durations R-CPN-1)
# ---------------------------------------------------------------------------------------

RENEWAL_TERM = Term(date(2026, 2, 28), date(2026, 3, 31))  # 2nd term of a Jan 31 anchor
RENEWALS = [
    pytest.param("USD", ["small", "operation"], MONTH, 0, None, 0,
                 # 10000 + 3000 at full price
                 None, 13000, 0, id="usd-no-coupon"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "once"), 1,
                 # "once" discounted the purchase only
                 None, 13000, 0, id="usd-once-never-renews"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "once"), 0,
                 # even if the count says 0: "once" is the purchase, never a renewal
                 None, 13000, 0, id="usd-once-never-renews-count-0"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "repeating", 3),
                 1,
                 # 2nd payment of 3: 13000 x 15% = 1950
                 -1950, 11050, 0, id="usd-repeating-3-second-payment"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "repeating", 3),
                 2, -1950, 11050, 0, id="usd-repeating-3-third-payment"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "repeating", 3),
                 3,
                 # the 4th payment is past the 3 terms
                 None, 13000, 0, id="usd-repeating-3-expired"),
    pytest.param("USD", ["small", "operation"], MONTH, 0, coupon("percent", 15, "forever"), 10,
                 -1950, 11050, 0, id="usd-forever"),
    pytest.param("USD", ["small", "operation"], MONTH, 0,
                 coupon("fixed", 2000, "forever", currency="USD"), 4,
                 -2000, 11000, 0, id="usd-fixed-forever"),
    pytest.param("USD", ["small", "operation"], MONTH, 20000, None, 0,
                 # balance larger than the price: 13000 used, 7000 left, card 0
                 None, 0, 7000, id="usd-balance-larger"),
    pytest.param("USD", ["small", "operation"], MONTH, 5000, None, 0,
                 # balance smaller: all 5000 used, card 8000
                 None, 8000, 0, id="usd-balance-smaller"),
    pytest.param("JPY", ["small", "operation"], MONTH, 2000,
                 coupon("percent", 15, "repeating", 2), 1,
                 # 1430 x 15% = 214.5 -> 215; 1215 from the balance, 785 left
                 -215, 0, 785, id="jpy-repeating-balance-larger"),
    pytest.param("KRW", ["small", "marketing"], MONTH, 1000, coupon("percent", 10, "forever"),
                 7,
                 # 13800 x 10% = 1380; 12420 - 1000 = 11420
                 -1380, 11420, 0, id="krw-forever-balance-smaller"),
    pytest.param("KWD", ["small"], YEAR, 300000, coupon("percent", 25, "forever"), 1,
                 # 324000 x 25% = 81000; 243000 from 300000, 57000 left
                 -81000, 0, 57000, id="kwd-annual-forever"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "codes", "interval", "balance", "offer", "used", "discount", "card",
     "balance_after"),
    RENEWALS,
)  # fmt: skip
def test_renewal_golden_R_REN_1_R_CPN_1(
    currency: str,
    codes: list[str],
    interval: Interval,
    balance: int,
    offer: CouponTerms | None,
    used: int,
    discount: int | None,
    card: int,
    balance_after: int,
) -> None:
    """R-REN-1 / R-CPN-1: full price for the new term, a coupon while its duration allows,
    the balance first and the card for the rest."""
    prices = [price(currency, code, interval) for code in codes]
    quote = quote_renewal(prices, RENEWAL_TERM, balance, offer, used)
    charges = [line for line in quote.lines if line.kind is LineKind.CHARGE]
    assert [line.amount for line in charges] == [p.amount for p in prices]
    assert all(
        line.start == RENEWAL_TERM.start and line.end == RENEWAL_TERM.end for line in charges
    )
    discounts = [line.amount for line in quote.lines if line.kind is LineKind.DISCOUNT]
    assert discounts == ([] if discount is None else [discount])
    assert (quote.card_amount, quote.balance_after) == (card, balance_after)
    assert (quote.kind, quote.new_term) == ("renewal", RENEWAL_TERM)
    assert_invariants(quote)


def test_renewal_refuses_negative_coupon_count_R_REN_1() -> None:
    """R-REN-1: the number of discounted payments cannot be negative."""
    with pytest.raises(ValueError, match="coupon_terms_used"):
        quote_renewal([price("USD", "small")], RENEWAL_TERM, 0, None, -1)


# ---------------------------------------------------------------------------------------
# Settlement (R-DUN-3) and withdrawal (R-BAL-2)
# ---------------------------------------------------------------------------------------

SETTLEMENTS = [
    pytest.param("USD", [(101, "Mar 17 - Apr 16", 13000), (102, "Apr 17 - May 16", 13000)],
                 # 26000 due, 5000 from the balance, 21000 by card
                 5000, 21000, 0, id="usd-two-invoices"),
    pytest.param("JPY", [(7, "March", 1430)], 2000, 0, 570, id="jpy-balance-covers"),
    pytest.param("KRW", [(1, "a", 13800), (2, "b", 13800), (3, "c", 13800)],
                 # 3 x 13800 = 41400
                 0, 41400, 0, id="krw-three-invoices"),
    pytest.param("KWD", [(9, "restricted period", 39000)], 39000, 0, 0, id="kwd-exact-balance"),
]  # fmt: skip


@pytest.mark.parametrize(("currency", "invoices", "balance", "card", "balance_after"), SETTLEMENTS)
def test_settlement_golden_R_DUN_3(
    currency: str,
    invoices: list[tuple[int, str, int]],
    balance: int,
    card: int,
    balance_after: int,
) -> None:
    """R-DUN-3: every unpaid invoice in one payment, balance first."""
    quote = quote_settlement(invoices, currency, balance)
    assert [(line.kind, line.invoice_id, line.amount) for line in quote.lines] == [
        (LineKind.INVOICE, invoice_id, amount) for invoice_id, _, amount in invoices
    ]
    assert [line.description for line in quote.lines] == [label for _, label, _ in invoices]
    assert (quote.card_amount, quote.balance_after) == (card, balance_after)
    assert (quote.kind, quote.new_term, quote.direction) == ("settlement", None, None)
    assert_invariants(quote)


def test_settlement_needs_something_unpaid_R_DUN_3() -> None:
    """R-DUN-3: nothing to settle is an error; so is a negative amount due (R-SEC-4)."""
    with pytest.raises(NothingToChange):
        quote_settlement([], "USD", 0)
    with pytest.raises(ValueError):
        quote_settlement([(1, "x", -5)], "USD", 0)


@pytest.mark.parametrize(
    ("balance", "fee_percent", "fee", "net"),
    [
        (10000, 10, 1000, 9000),
        (12345, 10, 1235, 11110),  # 1234.5 -> 1235, rounded once, half up
        (5, 10, 1, 4),  # 0.5 -> 1
        (4, 10, 0, 4),  # 0.4 -> 0
        (0, 10, 0, 0),
        (1000, Fraction(25, 2), 125, 875),  # a configurable 12.5% fee
        (999, 0, 0, 999),
        (999, 100, 999, 0),
    ],
)
def test_withdrawal_fee_R_BAL_2(
    balance: int, fee_percent: Fraction | int, fee: int, net: int
) -> None:
    """R-BAL-2: a withdrawal keeps a fee (10% by default); fee + net is the whole balance."""
    assert withdrawal(balance, fee_percent) == (fee, net)
    assert fee + net == balance


@pytest.mark.parametrize(
    ("balance", "fee_percent", "error"),
    [(100, 0.1, TypeError), (100, 101, ValueError), (100, -1, ValueError), (-1, 10, ValueError)],
)
def test_withdrawal_refuses_bad_input_R_BAL_2(
    balance: int, fee_percent: object, error: type[Exception]
) -> None:
    """R-BAL-2 / R-SEC-4: no float fee, no fee above 100%, no negative balance."""
    with pytest.raises(error):
        withdrawal(balance, fee_percent)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# The quote as a contract (R-PRO-7) and what it leaves behind
# ---------------------------------------------------------------------------------------


def test_quote_cannot_be_tampered_with_R_PRO_7() -> None:
    """R-PRO-7: the confirmed change is exactly the quote; inconsistent quotes cannot exist."""
    quote = quote_purchase([price("USD", "small")], D, 0)
    with pytest.raises(ValueError, match="totals"):
        dataclasses.replace(quote, card_amount=0)
    with pytest.raises(ValueError, match="fingerprint"):
        dataclasses.replace(quote, fingerprint="0" * 64)
    cheaper = dataclasses.replace(quote.lines[0], amount=1)
    with pytest.raises(ValueError):
        dataclasses.replace(quote, lines=(cheaper,))


def test_fingerprint_is_stable_and_sensitive_R_PRO_7() -> None:
    """R-PRO-7 / R-BUY-9: equal inputs give equal fingerprints; any change gives another."""
    now = holding("USD", ["xsmall"], MONTH, TM)
    first = quote_change(now, target("USD", ["small"], MONTH), D, 0)
    again = quote_change(now, target("USD", ["small"], MONTH), D, 0)
    assert first.fingerprint == again.fingerprint
    assert len(first.fingerprint) == 64
    int(first.fingerprint, 16)
    other_balance = quote_change(now, target("USD", ["small"], MONTH), D, 1)
    other_day = quote_change(now, target("USD", ["small"], MONTH), date(2026, 4, 7), 0)
    assert first.fingerprint not in {other_balance.fingerprint, other_day.fingerprint}


@pytest.mark.parametrize(
    ("kind", "amount"),
    [(LineKind.CHARGE, -1), (LineKind.PENALTY, -1), (LineKind.INVOICE, -1),
     (LineKind.CREDIT, 1), (LineKind.DISCOUNT, 1)],
)  # fmt: skip
def test_line_signs_are_from_the_customer_side_R_PRO_7(kind: LineKind, amount: int) -> None:
    """R-PRO-7: what the customer owes is positive, what they get back negative."""
    with pytest.raises(ValueError):
        QuoteLine(kind, "x", "X", amount)


def test_line_amounts_are_ints_R_MON_1() -> None:
    """R-MON-1: a quote line holds int minor units only."""
    with pytest.raises(TypeError):
        QuoteLine(LineKind.CHARGE, "x", "X", 1.5)  # type: ignore[arg-type]


def test_make_quote_settles_hand_built_lines_R_PRO_3() -> None:
    """R-PRO-3: services can settle their own lines with the same arithmetic."""
    lines = [QuoteLine(LineKind.CREDIT, "a", "A", -300), QuoteLine(LineKind.CHARGE, "b", "B", 1000)]
    quote = make_quote("change", "USD", lines, 200, None, "upgrade")
    assert (quote.credit_total, quote.charge_total, quote.balance_used) == (300, 1000, 500)
    assert (quote.card_amount, quote.balance_after) == (500, 0)
    with pytest.raises(ValueError, match="penalties exceed"):
        make_quote("change", "USD", [QuoteLine(LineKind.PENALTY, "a", "A", 5)], 0)


def test_price_list_amount_is_the_undiscounted_price_R_CAT_4() -> None:
    """R-CAT-4: an annual discount lowers ``amount`` below ``list_amount``, never above it."""
    annual = price("USD", "small", YEAR)
    assert (annual.amount, annual.list_amount) == (108000, 120000)
    with pytest.raises(ValueError, match="above its list price"):
        Price("small", "plan", "Small", 1, 12000, 10000, "USD", MONTH)


def test_holding_is_validated() -> None:
    """A holding has one plan, distinct items, one currency, periods inside its term."""
    small, op = price("USD", "small"), price("USD", "operation")
    with pytest.raises(ValueError, match="exactly one plan"):
        Holding(2, MONTH, TM, (held(op, TM),))
    with pytest.raises(ValueError, match="twice"):
        Holding(2, MONTH, TM, (held(small, TM), held(small, TM)))
    with pytest.raises(CurrencyMismatch):
        Holding(2, MONTH, TM, (held(small, TM), held(price("JPY", "operation"), TM)))
    with pytest.raises(ValueError, match="outside the term"):
        Holding(2, MONTH, TM, (held(small, TE1),))


def test_next_holding_spreads_a_coupon_over_items_R_CPN_3() -> None:
    """R-CPN-3: what each item really paid is recorded, so a later penalty is exact.

    15% off 13000 = 1950, spread 10000:3000 -> 1500 and 450: Small paid 8500, Operation 2550.
    """
    wanted = target("USD", ["small", "operation"], MONTH)
    quote = quote_purchase(wanted.prices, date(2026, 1, 31), 0, coupon("percent", 15))
    after = next_holding(quote, wanted)
    assert after is not None
    assert [(i.item_code, i.paid, i.list_amount) for i in after.items] == [
        ("small", 8500, 10000),
        ("operation", 2550, 3000),
    ]
    assert after.term == Term(date(2026, 1, 31), date(2026, 2, 28))
    assert sum(i.paid for i in after.items) == quote.charge_total


def test_next_holding_after_a_mid_term_add_on_R_PRO_4() -> None:
    """R-PRO-4: an add-on added mid-term is later credited over its own period.

    E1: Operation added Apr 20 for 1300 over Apr 20 - May 3 (13 days). Removed Apr 25:
    7 days remain after Apr 25 (Apr 26 - May 2): 1300 x 7/13 = 700.
    """
    now = holding("USD", ["small"], MONTH, TE1)
    wanted = target("USD", ["small", "operation"], MONTH)
    added = quote_change(now, wanted, date(2026, 4, 20), 0)
    after = next_holding(added, wanted, now)
    assert after is not None
    operation = after.items[1]
    assert (operation.paid, operation.list_amount) == (1300, 1300)
    assert operation.period == Term(date(2026, 4, 20), date(2026, 5, 3))
    assert after.items[0] == now.items[0]  # the unchanged plan is kept as it was
    removed = quote_change(after, target("USD", ["small"], MONTH), date(2026, 4, 25), 0)
    assert summary(removed) == [("credit", "operation", -700)]


def test_next_holding_after_switch_and_to_free_R_PRO_6() -> None:
    """R-PRO-6: after an interval switch the holding has the new term; Free holds nothing."""
    now = holding("USD", ["small"], MONTH, TM)
    wanted = target("USD", ["small"], YEAR)
    after = next_holding(quote_change(now, wanted, D, 0), wanted, now)
    assert after is not None
    assert (after.interval, after.term) == (YEAR, Term(D, date(2027, 4, 6)))
    assert (after.items[0].paid, after.items[0].list_amount) == (108000, 120000)
    free = target("USD", [], MONTH)
    assert next_holding(quote_change(now, free, D, 0), free, now) is None
