"""The bridge from rows to the pure core: catalog prices, coupons and holdings as core values.

Every amount a person sees or pays is computed by the core from these, on the server, at
every step (R-BUY-9); nothing here does arithmetic of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..core.proration import HeldItem, Holding, Price
from ..core.quotes import CouponTerms
from ..core.terms import Interval, Term
from ..errors import BillingError
from ..extension import get_state
from ..models import AddOn, Coupon, Plan, SubscriptionItem
from ..models import Price as PriceRow


class PriceUnavailable(BillingError):
    """That plan is not sold for that interval and currency."""


def core_price(row: PriceRow, code: str, kind: str, name: str) -> Price:
    return Price(
        item_code=code,
        item_kind=kind,  # type: ignore[arg-type]
        name=name,
        price_id=row.id,
        amount=row.amount,
        list_amount=row.list_amount,
        currency=row.currency,
        interval=Interval(row.interval),
    )


def current_prices(
    plan: Plan, addons: Sequence[AddOn], interval: str, currency: str
) -> list[Price]:
    """The active catalog prices for a plan and add-ons (one query)."""
    session = get_state().session
    rows = session.scalars(
        select(PriceRow).where(
            PriceRow.active,
            PriceRow.interval == interval,
            PriceRow.currency == currency,
            (PriceRow.plan_id == plan.id) | PriceRow.addon_id.in_([a.id for a in addons]),
        )
    ).all()
    by_plan = {r.plan_id: r for r in rows if r.plan_id is not None}
    by_addon = {r.addon_id: r for r in rows if r.addon_id is not None}
    if plan.id not in by_plan or any(a.id not in by_addon for a in addons):
        raise PriceUnavailable()
    prices = [core_price(by_plan[plan.id], plan.code, "plan", plan.name)]
    prices += [core_price(by_addon[a.id], a.code, "addon", a.name) for a in addons]
    return prices


def coupon_terms(coupon: Coupon | None) -> CouponTerms | None:
    if coupon is None:
        return None
    return CouponTerms(
        code=coupon.code,
        kind=coupon.kind,  # type: ignore[arg-type]
        value=coupon.value,
        currency=coupon.currency,
        duration=coupon.duration,  # type: ignore[arg-type]
        duration_terms=coupon.duration_terms,
    )


def holding_of(
    plan: Plan,
    interval: str,
    term: Term,
    items: Sequence[SubscriptionItem],
    names: dict[tuple[str, int], tuple[str, str]],
) -> Holding:
    """A subscription's current items as the core's ``Holding``.

    ``names`` maps (kind, id) to (code, name) for the plan and add-ons the items refer to.
    """
    held = []
    for item in items:
        key = ("plan", item.plan_id) if item.kind == "plan" else ("addon", item.addon_id)
        code, name = names[key]  # type: ignore[index]
        held.append(
            HeldItem(
                item_code=code,
                item_kind=item.kind,  # type: ignore[arg-type]
                name=name,
                price_id=item.price_id,
                paid=item.paid_amount,
                list_amount=item.list_amount,
                currency=item.price.currency,
                period=Term(item.period_start, item.period_end),
            )
        )
    return Holding(plan_rank=plan.rank, interval=Interval(interval), term=term, items=tuple(held))
