"""Licenses as people see them (R-LIC-1, R-LIC-2): a subscription, its plan and its status."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..extension import get_state
from ..models import AddOn, Plan, Subscription, SubscriptionItem

ENABLED, DISABLED, PAYMENT_FAILED, RESTRICTED, EXPIRED = (
    "Enabled",
    "Disabled",
    "Payment failed",
    "Restricted",
    "Expired",
)


def status_of(subscription: Subscription) -> str:
    """One status per license, the most urgent first (R-LIC-2)."""
    if subscription.state == "ended":
        return EXPIRED
    if subscription.restricted_on is not None:
        return RESTRICTED
    if subscription.payment_failed_on is not None:
        return PAYMENT_FAILED
    return ENABLED if subscription.auto_renew else DISABLED


@dataclass(frozen=True)
class License:
    subscription: Subscription
    plan: Plan
    addons: tuple[AddOn, ...]
    renews_with: Plan | None

    @property
    def status(self) -> str:
        return status_of(self.subscription)

    @property
    def scheduled_change(self) -> bool:
        """R-LIC-6: the license will renew with another plan."""
        s = self.subscription
        return s.state == "active" and s.next_plan_id is not None and s.next_plan_id != s.plan_id


def list_licenses(account_id: str) -> list[License]:
    """Every license of the account, current first (three queries whatever the count)."""
    session = get_state().session
    subscriptions = session.scalars(
        select(Subscription)
        .where(Subscription.account_id == account_id)
        .order_by(Subscription.state, Subscription.id.desc())
    ).all()
    if not subscriptions:
        return []
    plan_ids = {s.plan_id for s in subscriptions} | {
        s.next_plan_id for s in subscriptions if s.next_plan_id
    }
    plans = {p.id: p for p in session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    rows = session.execute(
        select(SubscriptionItem.subscription_id, AddOn)
        .join(AddOn, AddOn.id == SubscriptionItem.addon_id)
        .where(
            SubscriptionItem.subscription_id.in_([s.id for s in subscriptions]),
            SubscriptionItem.removed_on.is_(None),
        )
        .order_by(SubscriptionItem.id)
    ).all()
    addons: dict[int, list[AddOn]] = {}
    for subscription_id, addon in rows:
        addons.setdefault(subscription_id, []).append(addon)
    return [
        License(
            subscription=s,
            plan=plans[s.plan_id],
            addons=tuple(addons.get(s.id, ())),
            renews_with=None
            if not s.auto_renew or s.state == "ended"
            else plans[s.next_plan_id or s.plan_id],
        )
        for s in subscriptions
    ]
