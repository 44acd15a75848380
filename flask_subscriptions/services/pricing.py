"""The bridge from rows to the pure core: catalog prices, coupons and holdings as core values.

Every amount a person sees or pays is computed by the core from these, on the server, at
every step (R-BUY-9); nothing here does arithmetic of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..core.proration import Price
from ..core.quotes import CouponTerms
from ..core.terms import Interval
from ..errors import PriceUnavailable
from ..models import AddOn, Coupon, Plan, SubscriptionItem
from ..models import Price as PriceRow
from ..state import get_state


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


def current_items(subscription_id: int) -> list[tuple[SubscriptionItem, PriceRow, str, str]]:
    """What a license holds now: each item with its price and its item's code and name, in
    one query (renewals and immediate changes both start from it)."""
    rows = (
        get_state()
        .session.execute(
            select(SubscriptionItem, PriceRow, Plan.code, Plan.name, AddOn.code, AddOn.name)
            .join(PriceRow, PriceRow.id == SubscriptionItem.price_id)
            .outerjoin(Plan, Plan.id == SubscriptionItem.plan_id)
            .outerjoin(AddOn, AddOn.id == SubscriptionItem.addon_id)
            .where(
                SubscriptionItem.subscription_id == subscription_id,
                SubscriptionItem.removed_on.is_(None),
            )
            .order_by(SubscriptionItem.id)
        )
        .all()
    )
    return [
        (item, price, plan_code or addon_code, plan_name or addon_name)
        for item, price, plan_code, plan_name, addon_code, addon_name in rows
    ]
