"""Metrics for maintainers (R-OPS-2): MRR and ARR per currency, licenses per plan, the
period's movements, dunning, restriction and balances, and an MRR history.

Every figure is one aggregate statement (GROUP BY currency, plan, interval, coupon), so the
page costs the same number of statements for ten accounts or a million; the rows that come
back are bounded by the catalog, never by the accounts. Money stays in integers: monthly
equivalents are summed as exact fractions and rounded once per currency (R-MON-2).

MRR counts what every active license holds now, at the price it holds (annual prices as a
twelfth, after their annual discount), less the coupon that still applies to its renewals
(a percent coupon, or a fixed one per license and term). The history counts, on the last
day of each past month, the invoice that opened each term running that day (its total,
discount included), as the licenses held then are not kept line by line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fractions import Fraction

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from ..core.money import round_half_up
from ..core.terms import Interval, add_interval
from ..models import (
    BalanceEntry,
    Coupon,
    Invoice,
    Payment,
    Plan,
    Price,
    Subscription,
    SubscriptionItem,
    Term,
)
from ..state import get_state

#: Monthly equivalents of one interval's price.
PER_MONTH = {"month": Fraction(1), "year": Fraction(1, 12)}
FAILED = ("declined", "failed")


@dataclass(frozen=True)
class Recurring:
    currency: str
    mrr: int
    arr: int
    licenses: int


@dataclass(frozen=True)
class PlanCount:
    plan: str
    interval: str
    licenses: int


@dataclass(frozen=True)
class Movements:
    new: int
    ended: int
    reactivated: int


@dataclass(frozen=True)
class MoneyCount:
    currency: str
    count: int
    amount: int


@dataclass(frozen=True)
class MrrPoint:
    day: date
    mrr: dict[str, int]


@dataclass(frozen=True)
class Metrics:
    start: date
    end: date
    recurring: list[Recurring]
    plans: list[PlanCount]
    movements: Movements
    in_dunning: list[MoneyCount]
    recovered: list[MoneyCount]
    restricted_accounts: int
    balances: list[MoneyCount]
    history: list[MrrPoint]


def metrics(start: date, end: date) -> Metrics:
    """Every figure, for movements in ``[start, end)``."""
    return Metrics(
        start=start,
        end=end,
        recurring=recurring(),
        plans=licenses_per_plan(),
        movements=movements(start, end),
        in_dunning=in_dunning(),
        recovered=recovered(start, end),
        restricted_accounts=restricted_accounts(),
        balances=outstanding_balances(),
        history=mrr_history(get_state().today()),
    )


def recurring() -> list[Recurring]:
    """MRR and ARR per currency (one statement)."""
    applies = or_(
        Coupon.duration == "forever",
        and_(
            Coupon.duration == "repeating", Subscription.coupon_terms_used < Coupon.duration_terms
        ),
    )
    coupon_id = case((applies, Coupon.id), else_=None).label("coupon_id")
    rows = (
        get_state()
        .session.execute(
            select(
                Subscription.currency,
                Subscription.interval,
                coupon_id,
                Coupon.kind,
                Coupon.value,
                func.sum(Price.amount),
                func.count(func.distinct(Subscription.id)),
            )
            .join(SubscriptionItem, SubscriptionItem.subscription_id == Subscription.id)
            .join(Price, Price.id == SubscriptionItem.price_id)
            .outerjoin(Coupon, Coupon.id == Subscription.coupon_id)
            .where(Subscription.state == "active", SubscriptionItem.removed_on.is_(None))
            .group_by(
                Subscription.currency, Subscription.interval, coupon_id, Coupon.kind, Coupon.value
            )
        )
        .all()
    )
    monthly: dict[str, Fraction] = {}
    counts: dict[str, int] = {}
    for currency, interval, applied, kind, value, amount, licenses in rows:
        term_amount = Fraction(int(amount or 0))
        if applied is not None and kind == "percent":
            term_amount -= term_amount * value / 100
        elif applied is not None and kind == "fixed":
            term_amount = max(Fraction(0), term_amount - value * licenses)
        monthly[currency] = monthly.get(currency, Fraction(0)) + term_amount * PER_MONTH[interval]
        counts[currency] = counts.get(currency, 0) + int(licenses)
    return [
        Recurring(c, round_half_up(m), round_half_up(m * 12), counts[c])
        for c, m in sorted(monthly.items())
    ]


def licenses_per_plan() -> list[PlanCount]:
    rows = (
        get_state()
        .session.execute(
            select(Plan.name, Subscription.interval, func.count(Subscription.id))
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(Subscription.state == "active")
            .group_by(Plan.name, Plan.position, Subscription.interval)
            .order_by(Plan.position, Subscription.interval)
        )
        .all()
    )
    return [PlanCount(name, interval, int(n)) for name, interval, n in rows]


def movements(start: date, end: date) -> Movements:
    """New licenses (the account's first), reactivated ones (an account that had one
    before), and ended ones, in ``[start, end)``; one statement."""
    earlier = aliased(Subscription)
    had_one = exists().where(
        earlier.account_id == Subscription.account_id, earlier.id < Subscription.id
    )
    created = and_(
        Subscription.created_at >= _midnight(start), Subscription.created_at < _midnight(end)
    )
    ended = and_(Subscription.ended_on >= start, Subscription.ended_on < end)
    row = (
        get_state()
        .session.execute(
            select(
                func.coalesce(func.sum(case((and_(created, ~had_one), 1), else_=0)), 0),
                func.coalesce(func.sum(case((ended, 1), else_=0)), 0),
                func.coalesce(func.sum(case((and_(created, had_one), 1), else_=0)), 0),
            )
        )
        .one()
    )
    return Movements(new=int(row[0]), ended=int(row[1]), reactivated=int(row[2]))


def in_dunning() -> list[MoneyCount]:
    """Unpaid renewals of licenses in dunning now: how many and how much, per currency."""
    rows = (
        get_state()
        .session.execute(
            select(Invoice.currency, func.count(Invoice.id), func.sum(Invoice.amount_due))
            .join(Subscription, Subscription.id == Invoice.subscription_id)
            .where(
                Subscription.state == "active",
                Subscription.payment_failed_on.is_not(None),
                Invoice.kind == "renewal",
                Invoice.status == "open",
                Invoice.paid_by_invoice_id.is_(None),
            )
            .group_by(Invoice.currency)
            .order_by(Invoice.currency)
        )
        .all()
    )
    return [MoneyCount(c, int(n), int(a or 0)) for c, n, a in rows]


def recovered(start: date, end: date) -> list[MoneyCount]:
    """Renewals paid in the period after at least one failed attempt (a retry, the
    owner's settlement or support's retry recovered them)."""
    failed_once = exists().where(Payment.invoice_id == Invoice.id, Payment.status.in_(FAILED))
    rows = (
        get_state()
        .session.execute(
            select(Invoice.currency, func.count(Invoice.id), func.sum(Invoice.amount_due))
            .where(
                Invoice.kind == "renewal",
                Invoice.status == "paid",
                Invoice.paid_at >= _midnight(start),
                Invoice.paid_at < _midnight(end),
                failed_once,
            )
            .group_by(Invoice.currency)
            .order_by(Invoice.currency)
        )
        .all()
    )
    return [MoneyCount(c, int(n), int(a or 0)) for c, n, a in rows]


def restricted_accounts() -> int:
    session = get_state().session
    return int(
        session.scalar(
            select(func.count(func.distinct(Subscription.account_id))).where(
                Subscription.state == "active", Subscription.restricted_on.is_not(None)
            )
        )
        or 0
    )


def outstanding_balances() -> list[MoneyCount]:
    """Credit the accounts hold (what the business owes in service), per currency."""
    last = (
        select(BalanceEntry.account_id, func.max(BalanceEntry.seq).label("seq"))
        .group_by(BalanceEntry.account_id)
        .subquery()
    )
    rows = (
        get_state()
        .session.execute(
            select(BalanceEntry.currency, func.count(), func.sum(BalanceEntry.balance_after))
            .join(
                last,
                and_(BalanceEntry.account_id == last.c.account_id, BalanceEntry.seq == last.c.seq),
            )
            .where(BalanceEntry.balance_after > 0)
            .group_by(BalanceEntry.currency)
            .order_by(BalanceEntry.currency)
        )
        .all()
    )
    return [MoneyCount(c, int(n), int(a or 0)) for c, n, a in rows]


def mrr_history(today: date, months: int = 12) -> list[MrrPoint]:
    """MRR on the last day of each of the ``months - 1`` months before this one (from the
    invoices that opened the terms running then), and today's from :func:`recurring`."""
    first_of_month = today.replace(day=1)
    points = []
    for back in range(months - 1, 0, -1):
        day = add_interval(first_of_month, Interval.MONTH, -back + 1) - timedelta(days=1)
        points.append(MrrPoint(day, _mrr_on(day)))
    points.append(MrrPoint(today, {r.currency: r.mrr for r in recurring()}))
    return points


def _mrr_on(day: date) -> dict[str, int]:
    rows = (
        get_state()
        .session.execute(
            select(Invoice.currency, Term.interval, func.sum(Invoice.total))
            .join(Term, Term.id == Invoice.term_id)
            .join(Subscription, Subscription.id == Term.subscription_id)
            .where(
                Term.start <= day,
                Term.end > day,
                Invoice.status != "void",
                or_(Subscription.ended_on.is_(None), Subscription.ended_on > day),
            )
            .group_by(Invoice.currency, Term.interval)
        )
        .all()
    )
    monthly: dict[str, Fraction] = {}
    for currency, interval, total in rows:
        monthly[currency] = (
            monthly.get(currency, Fraction(0)) + int(total or 0) * PER_MONTH[interval]
        )
    return {c: round_half_up(m) for c, m in sorted(monthly.items())}


def _midnight(day: date) -> datetime:
    """The first moment of a billing date, as the tables store times (naive UTC).

    Dates here are calendar dates in the configured zone; for UTC (the default) this is
    exact, elsewhere a period's edges move by the zone's offset."""
    return datetime.combine(day, time())
