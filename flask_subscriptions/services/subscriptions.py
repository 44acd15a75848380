"""Starting a subscription from a paid purchase: the license, its items and its first term."""

from __future__ import annotations

from sqlalchemy import select

from ..core.proration import Holding
from ..models import AddOn, Coupon, Invoice, Order, Plan, Subscription, SubscriptionItem, Term
from ..state import get_state


def start_subscription(
    order: Order, plan: Plan, holding: Holding, coupon: Coupon | None, invoice: Invoice
) -> Subscription:
    """Add the license bought by ``order`` (flushed; the caller's transaction commits)."""
    state = get_state()
    session = state.session
    term = holding.term
    account_id = order.account_id or ""
    subscription = Subscription(
        account_id=account_id,
        live_account_id=account_id,
        plan_id=plan.id,
        interval=order.interval,
        currency=order.currency,
        state="active",
        auto_renew=True,
        anchor_date=term.start,
        current_term_start=term.start,
        current_term_end=term.end,
        coupon_id=coupon.id if coupon and coupon.duration != "once" else None,
        coupon_terms_used=1 if coupon else 0,
        payment_method_id=order.payment_method_id,
        created_at=state.now(),
    )
    session.add(subscription)
    session.flush()
    addon_ids = dict(
        session.execute(select(AddOn.code, AddOn.id).where(AddOn.code.in_(order.addon_codes))).all()
    )
    for item in holding.items:
        session.add(
            SubscriptionItem(
                subscription_id=subscription.id,
                kind=item.item_kind,
                plan_id=plan.id if item.item_kind == "plan" else None,
                addon_id=addon_ids.get(item.item_code) if item.item_kind == "addon" else None,
                price_id=item.price_id,
                paid_amount=item.paid,
                list_amount=item.list_amount,
                period_start=item.period.start,
                period_end=item.period.end,
            )
        )
    row = Term(
        subscription_id=subscription.id,
        start=term.start,
        end=term.end,
        plan_id=plan.id,
        interval=order.interval,
        created_at=state.now(),
    )
    session.add(row)
    session.flush()
    invoice.term_id = row.id
    return subscription
