"""The proration formulas of R-PRO and the quote lines they produce for one item.

Each formula takes whole amounts and whole days, forms one exact ``Fraction`` and rounds
it once, half up (R-MON-2). The counter-example we avoid is rounding a daily rate first
and then multiplying it: 100.00 / 31 days = 3.23 a day, times 11 days = 35.53, where the
exact answer is 35.48 (SPEC E3).

This module prices single items (a price to charge, a held item to credit);
:mod:`flask_subscriptions.core.quotes` decides which items a purchase, change or renewal
touches and settles the lines against the balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from .money import CurrencyMismatch, exponent, round_half_up
from .terms import Interval, Term, days_from, remaining_days_after, used_days

__all__ = [
    "DowngradeCredit",
    "HeldItem",
    "Holding",
    "LineKind",
    "Price",
    "QuoteLine",
    "Target",
    "charge_from",
    "charge_line",
    "credit_lines",
    "downgrade_credit",
    "prorate",
    "upgrade_credit",
]

ItemKind = Literal["plan", "addon"]
_ONE_DAY = timedelta(days=1)


def check_amount(value: object, what: str) -> None:
    """Refuse anything but a non-negative ``int`` where minor units are expected (R-MON-1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int minor units, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")


def prorate(amount: int, days: int, term_days: int) -> int:
    """``amount`` x ``days`` / ``term_days``, exact, rounded once half up (R-MON-2)."""
    check_amount(amount, "amount")
    if not 0 <= days <= term_days or term_days <= 0:
        raise ValueError(f"cannot prorate {days} days of a {term_days}-day term")
    return round_half_up(Fraction(amount * days, term_days))


def upgrade_credit(paid: int, period: Term, day: date) -> int:
    """R-PRO-4: paid x remaining days / period days; ``day`` itself counts as used (R-PRO-2).

    The remaining days run from the day after ``day`` to the period's end.
    """
    return prorate(paid, remaining_days_after(period, day), period.days)


@dataclass(frozen=True)
class DowngradeCredit:
    """The two figures of a downgrade: what R-PRO-4 would give and the penalty off it.

    ``credit - penalty`` is the R-PRO-5 credit. Keeping both lets a quote show the owner the
    penalty as its own line before they confirm (R-PRO-5, R-CPN-3).
    """

    credit: int
    penalty: int

    @property
    def net(self) -> int:
        """What the owner actually gets back."""
        return self.credit - self.penalty


def downgrade_credit(paid: int, list_amount: int, period: Term, day: date) -> DowngradeCredit:
    """R-PRO-5: max(0, paid - list price x used days / period days), with its penalty.

    Used days run from the period's start through ``day``. A discount (annual discount,
    coupon) is a discount for staying the whole period, so leaving early is charged at the
    list price (R-CPN-3). Each credit is rounded once and the penalty is the difference of
    the rounded credits, so the two lines of a quote net to the rounded R-PRO-5 credit.
    When the R-PRO-5 figure would exceed the R-PRO-4 one (only if more than the list price
    was paid) the owner gets the R-PRO-4 credit: a downgrade never refunds more than the
    unused share of what was paid.
    """
    check_amount(list_amount, "list amount")
    full = upgrade_credit(paid, period, day)
    used = Fraction(list_amount * used_days(period, day), period.days)
    by_list = round_half_up(max(Fraction(0), paid - used))
    return DowngradeCredit(credit=full, penalty=full - min(full, by_list))


def charge_from(amount: int, term: Term, day: date) -> int:
    """R-PRO-2: a term's price for the days from ``day`` itself to the term's end."""
    return prorate(amount, days_from(term, day), term.days)


@dataclass(frozen=True)
class Price:
    """What one term of a plan or add-on costs; ``list_amount`` is before the annual discount.

    ``amount`` is what is charged (R-CAT-4: e.g. 90% of 12 months); ``list_amount`` is kept
    because it, not the discounted amount, is the basis of a downgrade penalty (R-PRO-5).
    """

    item_code: str
    item_kind: ItemKind
    name: str
    price_id: int
    amount: int
    list_amount: int
    currency: str
    interval: Interval

    def __post_init__(self) -> None:
        check_amount(self.amount, "price amount")
        check_amount(self.list_amount, "list amount")
        if self.amount > self.list_amount:
            raise ValueError(f"{self.item_code}: price {self.amount} is above its list price")
        if self.item_kind not in ("plan", "addon"):
            raise ValueError(f"item kind must be 'plan' or 'addon', got {self.item_kind!r}")
        exponent(self.currency)
        object.__setattr__(self, "interval", Interval(self.interval))


@dataclass(frozen=True)
class HeldItem:
    """An item of the current term: ``paid`` for ``period``, and its list price for it.

    ``paid`` is what was really paid (after coupons and proration): credits never return
    more than that. ``list_amount`` is the list price for the same ``period``.
    """

    item_code: str
    item_kind: ItemKind
    name: str
    price_id: int
    paid: int
    list_amount: int
    currency: str
    period: Term

    def __post_init__(self) -> None:
        check_amount(self.paid, "paid amount")
        check_amount(self.list_amount, "list amount")
        exponent(self.currency)


class LineKind(StrEnum):
    """What a quote line is; the values are what invoices store."""

    CHARGE = "charge"
    CREDIT = "credit"
    PENALTY = "penalty"
    DISCOUNT = "discount"
    INVOICE = "invoice"


#: Line kinds whose amount the customer owes (> 0); credits and discounts are <= 0.
PAID_BY_CUSTOMER = frozenset({LineKind.CHARGE, LineKind.PENALTY, LineKind.INVOICE})


@lru_cache(maxsize=1024)
def _span(start: date, end: date) -> str:
    """``Mar 17, 2026 to Apr 16, 2026``; remembered, as many lines share a term."""
    last = end - _ONE_DAY
    return f"{start:%b} {start.day}, {start.year} to {last:%b} {last.day}, {last.year}"


@dataclass(frozen=True)
class QuoteLine:
    """One line of a quote; ``[start, end)`` covers ``days`` of ``term_days`` of ``basis``.

    ``amount`` is signed from the customer's side: what they owe is positive, what they
    get back is negative, so a quote's lines simply add up to its total.
    """

    kind: LineKind
    item_code: str | None
    name: str
    amount: int
    start: date | None = None
    end: date | None = None
    days: int | None = None
    term_days: int | None = None
    basis: int | None = None
    price_id: int | None = None
    invoice_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LineKind(self.kind))
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"line amounts are int minor units, not {self.amount!r}")
        if (self.amount < 0) if self.kind in PAID_BY_CUSTOMER else (self.amount > 0):
            raise ValueError(f"a {self.kind.value} line cannot have the amount {self.amount}")

    @property
    def description(self) -> str:
        """A sentence for invoices and e-mails, without the amount (formatted elsewhere)."""
        span = _span(self.start, self.end) if self.start and self.end else ""
        share = ""
        if self.days is not None and self.days != self.term_days:
            share = f" ({self.days} of {self.term_days} days)"
        if self.kind is LineKind.CREDIT:
            return f"Credit for {self.name}, unused {span}{share}"
        if self.kind is LineKind.PENALTY:
            return f"Penalty on {self.name}: list price for the days used, {span}{share}"
        return f"{self.name}, {span}{share}" if span else self.name

    def canonical(self) -> dict[str, object]:
        """The line as plain JSON values, for a quote's fingerprint."""
        plain: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            plain[field.name] = value.isoformat() if isinstance(value, date) else value
        plain["kind"] = self.kind.value
        return plain


def charge_line(price: Price, term: Term, day: date | None = None) -> QuoteLine:
    """Charge ``price`` for the whole ``term``, or from ``day`` to its end (R-PRO-2, R-PRO-6)."""
    start = term.start if day is None else day
    amount = price.amount if day is None else charge_from(price.amount, term, day)
    days = (term.end - start).days
    return QuoteLine(
        LineKind.CHARGE,
        price.item_code,
        price.name,
        amount,
        start=start,
        end=term.end,
        days=days,
        term_days=term.days,
        basis=price.amount,
        price_id=price.price_id,
    )


def credit_lines(item: HeldItem, day: date, downgrade: bool) -> list[QuoteLine]:
    """The R-PRO-4 credit for an item given up on ``day``, plus a downgrade's penalty.

    The credit covers the day after ``day`` to the period's end; the penalty covers the
    used days at the list price (R-PRO-5). Zero lines are left out: a change on the last
    day of a term has nothing to credit.
    """
    period = item.period
    if downgrade:
        split = downgrade_credit(item.paid, item.list_amount, period, day)
    else:
        split = DowngradeCredit(upgrade_credit(item.paid, period, day), 0)
    after = day + _ONE_DAY
    lines = []
    if split.credit:
        left = remaining_days_after(period, day)
        lines.append(_item_line(LineKind.CREDIT, item, -split.credit, after, period.end, left))
    if split.penalty:
        used = used_days(period, day)
        lines.append(_item_line(LineKind.PENALTY, item, split.penalty, period.start, after, used))
    return lines


def _item_line(
    kind: LineKind, item: HeldItem, amount: int, start: date, end: date, days: int
) -> QuoteLine:
    basis = item.paid if kind is LineKind.CREDIT else item.list_amount
    return QuoteLine(
        kind,
        item.item_code,
        item.name,
        amount,
        start=start,
        end=end,
        days=days,
        term_days=item.period.days,
        basis=basis,
        price_id=item.price_id,
    )


def one_currency(currencies: Sequence[str]) -> str:
    """The single currency of an order or holding; several raise (R-MON-3)."""
    found = set(currencies)
    if len(found) != 1:
        raise CurrencyMismatch(f"one currency per order (R-MON-3), got {sorted(found)}")
    return currencies[0]


def _check_items(codes: Sequence[str], kinds: Sequence[str], what: str) -> None:
    if len(set(codes)) != len(codes):
        raise ValueError(f"{what} lists an item twice: {list(codes)}")
    if kinds.count("plan") != 1:
        raise ValueError(f"{what} must hold exactly one plan, got {kinds.count('plan')}")


@dataclass(frozen=True)
class Holding:
    """The subscription as it stands: one plan, its add-ons, the current term."""

    plan_rank: int
    interval: Interval
    term: Term
    items: tuple[HeldItem, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "interval", Interval(self.interval))
        _check_items(
            [i.item_code for i in self.items], [i.item_kind for i in self.items], "a holding"
        )
        one_currency([i.currency for i in self.items])
        for item in self.items:
            if not self.term.start <= item.period.start < item.period.end <= self.term.end:
                raise ValueError(f"{item.item_code}: its period is outside the term")

    @property
    def currency(self) -> str:
        """The account's currency (R-MON-3)."""
        return self.items[0].currency


@dataclass(frozen=True)
class Target:
    """What the owner wants to hold; no prices means the Free plan (rank 0)."""

    plan_rank: int
    interval: Interval
    prices: tuple[Price, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", tuple(self.prices))
        object.__setattr__(self, "interval", Interval(self.interval))
        if self.prices:
            validate_prices(self.prices)
            if self.prices[0].interval is not self.interval:
                raise ValueError("every target price must be for the target's interval")


def validate_prices(prices: Sequence[Price]) -> tuple[str, Interval]:
    """Check an order (one plan, distinct items, one interval); its currency and interval."""
    if not prices:
        raise ValueError("an order needs at least one price")
    _check_items([p.item_code for p in prices], [p.item_kind for p in prices], "an order")
    if len({p.interval for p in prices}) != 1:
        raise ValueError("every price of an order must be for the same interval")
    return one_currency([p.currency for p in prices]), prices[0].interval
