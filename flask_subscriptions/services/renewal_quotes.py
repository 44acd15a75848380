"""The core's answers for a renewal batch, remembered.

They are pure, and a batch asks the same questions many times: subscriptions renewing on the
same day, anchored alike, at the same price, balance and coupon get the same term, quote and
holding. Remembered, the core's work and checks run once for all of them. Every argument
and answer is a frozen value, so sharing them is safe.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from ..core.proration import Holding, Price, Target
from ..core.quotes import CouponTerms, Quote, next_holding, quote_renewal
from ..core.terms import Interval, Term, add_interval, term_containing


def following_term(sub: Any) -> Term:
    """The term after the current one, computed from the anchor (R-TIME-2), never chained."""
    return _term_after(
        sub.anchor_date, Interval(sub.interval), sub.current_term_start, sub.current_term_end
    )


@lru_cache(maxsize=1024)
def _term_after(anchor: date, interval: Interval, start: date, end: date) -> Term:
    index, _ = term_containing(anchor, interval, start)
    return Term(end, add_interval(anchor, interval, index + 2))


@lru_cache(maxsize=1024)
def next_term(
    prices: tuple[Price, ...],
    term: Term,
    balance: int,
    coupon: CouponTerms | None,
    used: int,
    rank: int,
    interval: Interval,
) -> tuple[Quote, Holding]:
    """The next term's quote (R-REN-1), and what the license holds once it is paid."""
    quote = quote_renewal(prices, term, balance, coupon, used)
    holding = next_holding(quote, Target(rank, interval, prices))
    assert holding is not None  # a renewal that charges has prices
    return quote, holding
