"""Quotes: every line a purchase, change, renewal or settlement will charge or credit.

A quote is computed before anything happens, shown to the owner (R-PRO-7, R-BUY-5), and
executed exactly as shown: its ``fingerprint`` lets a service recompute it at confirmation
time and refuse to execute a quote that no longer matches (R-BUY-9). Credits go to the
balance and the balance is spent before any card (R-PRO-3), so every quote ends with the
same settlement arithmetic, in :func:`make_quote`.

Amounts on lines are signed from the customer's side: charges, penalties and settled
invoices are positive; credits and discounts are negative.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from .money import allocate, exponent, round_half_up
from .proration import (
    HeldItem,
    Holding,
    LineKind,
    Price,
    QuoteLine,
    Target,
    charge_line,
    check_amount,
    credit_lines,
    one_currency,
    prorate,
    validate_prices,
)
from .terms import Interval, Term, term_at

__all__ = [
    "CouponNotApplicable",
    "CouponTerms",
    "HeldItem",
    "Holding",
    "LineKind",
    "NothingToChange",
    "Price",
    "Quote",
    "QuoteLine",
    "Target",
    "fingerprint",
    "make_quote",
    "next_holding",
    "quote_change",
    "quote_purchase",
    "quote_renewal",
    "quote_settlement",
    "withdrawal",
]

QuoteKind = Literal["purchase", "change", "renewal", "settlement"]
_QUOTE_KINDS = ("purchase", "change", "renewal", "settlement")
Direction = Literal["upgrade", "downgrade", "none"]
_TO_CREDIT = frozenset({LineKind.CREDIT, LineKind.PENALTY})


class NothingToChange(ValueError):
    """The requested change is what the subscription already holds (or nothing is owed)."""


class CouponNotApplicable(ValueError):
    """The coupon cannot discount this order (R-CPN-2), e.g. a fixed amount in another currency."""


@dataclass(frozen=True)
class CouponTerms:
    """A coupon's discount and duration (R-CPN-1); eligibility is checked by the service."""

    code: str
    kind: Literal["percent", "fixed"]
    value: int
    currency: str | None
    duration: Literal["once", "repeating", "forever"]
    duration_terms: int | None = None

    def __post_init__(self) -> None:
        check_amount(self.value, "coupon value")
        if self.kind == "percent" and not 1 <= self.value <= 100:
            raise ValueError(f"a percent coupon takes 1..100, got {self.value}")
        if self.kind == "fixed" and (self.currency is None or self.value == 0):
            raise ValueError("a fixed coupon needs a currency and a value above 0")
        if self.kind not in ("percent", "fixed"):
            raise ValueError(f"coupon kind must be 'percent' or 'fixed', got {self.kind!r}")
        if self.duration not in ("once", "repeating", "forever"):
            raise ValueError(f"unknown coupon duration {self.duration!r}")
        if self.duration == "repeating":
            terms = self.duration_terms
            if isinstance(terms, bool) or not isinstance(terms, int) or terms < 1:
                raise ValueError(f"a repeating coupon needs duration_terms >= 1, got {terms!r}")
        elif self.duration_terms is not None:
            raise ValueError("duration_terms is only for repeating coupons")

    def applies_at_renewal(self, payments_discounted: int) -> bool:
        """Whether a renewal is discounted, after ``payments_discounted`` payments were.

        "once" is the first payment only, the purchase, so never a renewal; "repeating" is
        the first ``duration_terms`` payments, the purchase included; "forever" is all.
        """
        if self.duration == "repeating":
            return payments_discounted < (self.duration_terms or 0)
        return self.duration == "forever"


def fingerprint(
    kind: str,
    currency: str,
    lines: Sequence[QuoteLine],
    balance_before: int,
    new_term: Term | None,
) -> str:
    """A stable sha256 over what a quote says, to refuse one that changed (R-PRO-7, R-BUY-9)."""
    return _fingerprint(kind, currency, tuple(lines), balance_before, new_term)


@lru_cache(maxsize=1024)
def _fingerprint(
    kind: str,
    currency: str,
    lines: tuple[QuoteLine, ...],
    balance_before: int,
    new_term: Term | None,
) -> str:
    """Remembered: every quote is checked against it when built, and a renewal batch quotes
    the same lines for many subscriptions."""
    term = [new_term.start.isoformat(), new_term.end.isoformat()] if new_term else None
    document = {
        "kind": kind,
        "currency": currency,
        "lines": [line.canonical() for line in lines],
        "balance_before": balance_before,
        "new_term": term,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _settle(lines: Sequence[QuoteLine], balance_before: int) -> tuple[int, int, int, int, int]:
    credit_total = -sum(line.amount for line in lines if line.kind in _TO_CREDIT)
    charge_total = sum(line.amount for line in lines if line.kind not in _TO_CREDIT)
    if credit_total < 0 or charge_total < 0:
        raise ValueError("penalties exceed credits or discounts exceed charges")
    balance_used = min(balance_before + credit_total, charge_total)
    card_amount = charge_total - balance_used
    balance_after = balance_before + credit_total - balance_used
    return credit_total, charge_total, balance_used, card_amount, balance_after


@dataclass(frozen=True)
class Quote:
    """A priced action: its lines and how they are paid (R-PRO-3, R-PRO-7).

    Build it with :func:`make_quote`; the constructor re-checks every total and the
    fingerprint so a hand-built or tampered quote cannot be inconsistent.
    """

    kind: QuoteKind
    currency: str
    lines: tuple[QuoteLine, ...]
    balance_before: int
    credit_total: int
    charge_total: int
    balance_used: int
    card_amount: int
    balance_after: int
    new_term: Term | None
    direction: Direction | None
    fingerprint: str

    def __post_init__(self) -> None:
        if self.kind not in _QUOTE_KINDS:
            raise ValueError(f"unknown quote kind {self.kind!r}")
        check_amount(self.balance_before, "balance")
        totals = (
            self.credit_total,
            self.charge_total,
            self.balance_used,
            self.card_amount,
            self.balance_after,
        )
        if totals != _settle(self.lines, self.balance_before):
            raise ValueError("quote totals do not follow from its lines and balance")
        expected = fingerprint(
            self.kind, self.currency, self.lines, self.balance_before, self.new_term
        )
        if self.fingerprint != expected:
            raise ValueError("quote fingerprint does not match its content")

    @property
    def total(self) -> int:
        """Net amount of the lines: charges less credits (negative when credits win)."""
        return self.charge_total - self.credit_total


def make_quote(
    kind: QuoteKind,
    currency: str,
    lines: Sequence[QuoteLine],
    balance_before: int,
    new_term: Term | None = None,
    direction: Direction | None = None,
) -> Quote:
    """Settle ``lines`` against the balance: credits in, balance first, card for the rest."""
    exponent(currency)
    check_amount(balance_before, "balance")
    lines = tuple(lines)
    credit, charge, used, card, after = _settle(lines, balance_before)
    digest = fingerprint(kind, currency, lines, balance_before, new_term)
    return Quote(
        kind,
        currency,
        lines,
        balance_before,
        credit,
        charge,
        used,
        card,
        after,
        new_term,
        direction,
        digest,
    )


def _discount_lines(
    coupon: CouponTerms | None, currency: str, charges: Sequence[QuoteLine]
) -> list[QuoteLine]:
    if coupon is None:
        return []
    subtotal = sum(line.amount for line in charges)
    if coupon.kind == "percent":
        off = round_half_up(Fraction(subtotal * coupon.value, 100))
    elif coupon.currency != currency:
        raise CouponNotApplicable(f"coupon {coupon.code} is in {coupon.currency}, not {currency}")
    else:
        off = min(coupon.value, subtotal)
    return [QuoteLine(LineKind.DISCOUNT, None, f"Coupon {coupon.code}", -off, basis=subtotal)]


def quote_purchase(
    prices: Sequence[Price], start: date, balance: int, coupon: CouponTerms | None = None
) -> Quote:
    """The first term of a new subscription, starting on ``start`` (R-BUY-5)."""
    currency, interval = validate_prices(prices)
    term = term_at(start, interval, 0)
    charges = [charge_line(price, term) for price in prices]
    lines = charges + _discount_lines(coupon, currency, charges)
    return make_quote("purchase", currency, lines, balance, term)


def quote_renewal(
    prices: Sequence[Price],
    term: Term,
    balance: int,
    coupon: CouponTerms | None = None,
    coupon_terms_used: int = 0,
) -> Quote:
    """The next term at full price, less a coupon still in its duration (R-REN-1, R-CPN-1).

    ``coupon_terms_used`` counts the payments the coupon already discounted, the purchase
    included: a "once" coupon never reaches a renewal, a "repeating" one discounts the
    first ``duration_terms`` payments, a "forever" one every payment.
    """
    currency, _ = validate_prices(prices)
    if isinstance(coupon_terms_used, bool) or coupon_terms_used < 0:
        raise ValueError(f"coupon_terms_used must be an int >= 0, got {coupon_terms_used!r}")
    charges = [charge_line(price, term) for price in prices]
    if coupon is not None and not coupon.applies_at_renewal(coupon_terms_used):
        coupon = None
    lines = charges + _discount_lines(coupon, currency, charges)
    return make_quote("renewal", currency, lines, balance, term)


def _is_downgrade(item: HeldItem, price: Price | None, holding: Holding, target: Target) -> bool:
    # R-PRO-1: a lower tier or a removed add-on is a downgrade. The same tier at another
    # price, or a re-priced add-on, is credited like an upgrade: nothing is left early.
    if item.item_kind == "plan":
        return target.plan_rank < holding.plan_rank
    return price is None


def _direction(holding: Holding, target: Target) -> Direction:
    if target.plan_rank != holding.plan_rank:
        return "upgrade" if target.plan_rank > holding.plan_rank else "downgrade"
    held = {item.item_code for item in holding.items}
    wanted = {price.item_code for price in target.prices}
    added, removed = wanted - held, held - wanted
    if added and not removed:
        return "upgrade"
    return "downgrade" if removed and not added else "none"


def _same_term_lines(holding: Holding, target: Target, day: date) -> list[QuoteLine]:
    """R-PRO-2/4/5/6: credit what is given up, charge what is added, keep the term end."""
    wanted = {price.item_code: price for price in target.prices}
    kept = {item.item_code: item.price_id for item in holding.items}
    credits: list[QuoteLine] = []
    for item in holding.items:
        price = wanted.get(item.item_code)
        if price is None or price.price_id != item.price_id:
            credits += credit_lines(item, day, _is_downgrade(item, price, holding, target))
    charges = [
        charge_line(price, holding.term, day)
        for price in target.prices
        if kept.get(price.item_code) != price.price_id
    ]
    return credits + charges


def quote_change(holding: Holding, target: Target, day: date, balance: int) -> Quote:
    """An immediate change on ``day`` (R-PRO-1..7); ``day`` is used under the old terms.

    An interval switch credits every item (month -> year as an upgrade, year -> month as a
    downgrade) and starts a new term on ``day`` with every target item at full price
    (R-PRO-6). Otherwise only what changes gets lines and the term end stays. An empty
    target is the Free plan: downgrade credits for everything and no new term.
    """
    if not holding.term.contains(day):
        raise ValueError(f"{day} is not within the current term {holding.term}")
    currency = one_currency([holding.currency] + [p.currency for p in target.prices])
    switch = bool(target.prices) and target.interval is not holding.interval
    same = {(i.item_code, i.price_id) for i in holding.items} == {
        (p.item_code, p.price_id) for p in target.prices
    }
    if same and not switch:
        raise NothingToChange("the subscription already holds this plan and these add-ons")
    if not target.prices:
        lines = [line for item in holding.items for line in credit_lines(item, day, True)]
        return make_quote("change", currency, lines, balance, None, "downgrade")
    if switch:
        upgrade = target.interval is Interval.YEAR
        term = term_at(day, target.interval, 0)
        lines = [line for item in holding.items for line in credit_lines(item, day, not upgrade)]
        lines += [charge_line(price, term) for price in target.prices]
        return make_quote(
            "change", currency, lines, balance, term, "upgrade" if upgrade else "downgrade"
        )
    lines = _same_term_lines(holding, target, day)
    return make_quote("change", currency, lines, balance, None, _direction(holding, target))


def quote_settlement(
    open_invoices: Sequence[tuple[int, str, int]], currency: str, balance: int
) -> Quote:
    """Everything unpaid in one payment, balance first (R-DUN-3)."""
    if not open_invoices:
        raise NothingToChange("there is no unpaid invoice to settle")
    lines = []
    for invoice_id, label, amount_due in open_invoices:
        check_amount(amount_due, "amount due")
        lines.append(
            QuoteLine(
                LineKind.INVOICE, None, label, amount_due, basis=amount_due, invoice_id=invoice_id
            )
        )
    return make_quote("settlement", currency, lines, balance)


def withdrawal(balance: int, fee_percent: Fraction | int) -> tuple[int, int]:
    """(fee, net) for cashing out ``balance``; the fee is rounded once, half up (R-BAL-2)."""
    check_amount(balance, "balance")
    if isinstance(fee_percent, bool | float) or not isinstance(fee_percent, Fraction | int):
        raise TypeError(f"fee_percent must be an int or Fraction, not {fee_percent!r}")
    if not 0 <= fee_percent <= 100:
        raise ValueError(f"fee_percent must be within 0..100, got {fee_percent}")
    fee = round_half_up(Fraction(balance) * fee_percent / 100)
    return fee, balance - fee


def _paid_by_item(quote: Quote) -> dict[str, tuple[QuoteLine, int]]:
    """Each charged item with what was actually paid for it, the discount spread by amount."""
    charges = [line for line in quote.lines if line.kind is LineKind.CHARGE]
    discount = -sum(line.amount for line in quote.lines if line.kind is LineKind.DISCOUNT)
    if not charges:
        return {}
    shares = allocate(discount, [line.amount for line in charges])
    return {
        str(line.item_code): (line, line.amount - share)
        for line, share in zip(charges, shares, strict=True)
    }


def next_holding(quote: Quote, target: Target, previous: Holding | None = None) -> Holding | None:
    """What the subscription holds once ``quote`` (for ``target``) is paid; None for Free.

    Services store these items: ``paid`` is what the owner actually paid for each item
    (after coupons, spread in proportion with :func:`allocate`), and ``list_amount`` the
    list price for the same days, the basis of a later penalty (R-CPN-3, R-PRO-5).
    """
    if quote.kind == "settlement":
        raise ValueError("a settlement does not change what the subscription holds")
    if not target.prices:
        return None
    term = quote.new_term or (previous.term if previous else None)
    if term is None:
        raise ValueError("a change within a term needs the previous holding")
    paid = _paid_by_item(quote)
    before = {item.item_code: item for item in previous.items} if previous else {}
    items = []
    for price in target.prices:
        if price.item_code in paid:
            line, amount = paid[price.item_code]
            assert line.start and line.end and line.days is not None and line.term_days
            items.append(
                HeldItem(
                    price.item_code,
                    price.item_kind,
                    price.name,
                    price.price_id,
                    amount,
                    prorate(price.list_amount, line.days, line.term_days),
                    price.currency,
                    Term(line.start, line.end),
                )
            )
        elif price.item_code in before and before[price.item_code].price_id == price.price_id:
            items.append(before[price.item_code])
        else:
            raise ValueError(f"{price.item_code} is neither charged by the quote nor held")
    return Holding(target.plan_rank, target.interval, term, tuple(items))


@lru_cache(maxsize=1024)
def renewal_and_holding(
    prices: tuple[Price, ...],
    term: Term,
    balance: int,
    coupon: CouponTerms | None,
    used: int,
    rank: int,
    interval: Interval,
) -> tuple[Quote, Holding]:
    """The next term's quote (R-REN-1), and what the license holds once it is paid.

    Remembered: a batch asks the same question for every license renewing on the same day
    at the same price, balance and coupon; every argument and answer is a frozen value.
    """
    quote = quote_renewal(prices, term, balance, coupon, used)
    holding = next_holding(quote, Target(rank, interval, prices))
    assert holding is not None  # a renewal that charges has prices
    return quote, holding
