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
    """Raise ``CouponInvalid`` with a message that says exactly what is wrong."""
    if coupon is None or not coupon.active:
        raise CouponInvalid("That coupon code does not exist.")
    if coupon.valid_from is not None and today < coupon.valid_from:
        raise CouponInvalid(f"The coupon {coupon.code} is not valid yet.")
    if coupon.valid_until is not None and today > coupon.valid_until:
        raise CouponInvalid(f"The coupon {coupon.code} has expired.")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponInvalid(f"The coupon {coupon.code} has been used up.")
    if coupon.plan_codes and plan.code not in coupon.plan_codes:
        raise CouponInvalid(f"The coupon {coupon.code} does not apply to the {plan.name} plan.")
    if coupon.kind == "fixed" and coupon.currency != currency:
        raise CouponInvalid(f"The coupon {coupon.code} is for payments in {coupon.currency}.")
    if coupon.once_per_account and get_state().session.scalar(
        select(CouponRedemption.id).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.account_id == account_id
        )
    ):
        raise CouponInvalid(f"You have already used the coupon {coupon.code}.")
