"""Whether a coupon may be used, with the reason when not (R-CPN-1, R-CPN-2)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from ..errors import CouponInvalid
from ..models import Coupon, CouponRedemption, Plan
from ..state import get_state


def check_coupon(
    coupon: Coupon | None, plan: Plan, currency: str, account_id: str, today: date
) -> None:
    """Raise ``CouponInvalid`` with a code that says exactly what is wrong (R-CPN-2)."""
    if coupon is None or not coupon.active:
        raise CouponInvalid(code="coupon_unknown")
    if coupon.valid_from is not None and today < coupon.valid_from:
        raise CouponInvalid(code="coupon_not_yet_valid", coupon=coupon.code)
    if coupon.valid_until is not None and today > coupon.valid_until:
        raise CouponInvalid(code="coupon_expired", coupon=coupon.code)
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponInvalid(code="coupon_used_up", coupon=coupon.code)
    if coupon.plan_codes and plan.code not in coupon.plan_codes:
        raise CouponInvalid(code="coupon_not_for_plan", coupon=coupon.code, plan=plan.name)
    if coupon.kind == "fixed" and coupon.currency != currency:
        raise CouponInvalid(
            code="coupon_wrong_currency", coupon=coupon.code, currency=coupon.currency
        )
    if coupon.once_per_account and get_state().session.scalar(
        select(CouponRedemption.id).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.account_id == account_id
        )
    ):
        raise CouponInvalid(code="coupon_already_used", coupon=coupon.code)
