"""Licenses (R-LIC): how one starts from a paid purchase, and how people see and manage it —
a subscription, its plan and its status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import aliased

from ..accounts import BillingAccount
from ..core.proration import Holding
from ..errors import ChangeNotPossible, NotFound, PlanNotAnOption
from ..models import (
    AddOn,
    Coupon,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Plan,
    Subscription,
    SubscriptionItem,
    Term,
)
from ..notifications import enqueue
from ..signals import plan_change_scheduled
from ..state import get_state
from . import _tx
from ._tx import send_after_commit
from .dunning import needs_support
from .entitlement_cache import touch_entitlements
from .payment_methods import renewal_card_id
from .plans import VERSION, catalog_at, change_options

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

    @cached_property
    def renewal_options(self) -> list[Plan]:
        """The plans it may renew with: the current plan and its change options (R-CAT-2).
        Read once: the change page both offers them and checks a choice against them."""
        return [self.plan, *change_options(self.plan.id)]

    @property
    def scheduled_change(self) -> bool:
        """R-LIC-6: the license will renew with another plan."""
        s = self.subscription
        return s.state == "active" and s.next_plan_id is not None and s.next_plan_id != s.plan_id


#: The pages' statements, built once: building one costs about as much as running it.
_RENEWS_WITH = aliased(Plan)
#: Every license of an account with its plan, the plan it renews with and its add-ons, in
#: one statement (a round trip to the database costs more than the rows): one row per
#: add-on, one for a license without any.
_LICENSES = (
    select(Subscription, Plan, _RENEWS_WITH, AddOn)
    .join(Plan, Plan.id == Subscription.plan_id)
    .outerjoin(_RENEWS_WITH, _RENEWS_WITH.id == Subscription.next_plan_id)
    .outerjoin(
        SubscriptionItem,
        and_(
            SubscriptionItem.subscription_id == Subscription.id,
            SubscriptionItem.addon_id.is_not(None),
            SubscriptionItem.removed_on.is_(None),
        ),
    )
    .outerjoin(AddOn, AddOn.id == SubscriptionItem.addon_id)
    .where(Subscription.account_id == bindparam("account_id"))
    .order_by(Subscription.state, Subscription.id.desc(), SubscriptionItem.id)
)


def list_licenses(account_id: str) -> list[License]:
    """Every license of the account, current first (one query whatever the count)."""
    return _licenses(get_state().session.execute(_LICENSES, {"account_id": account_id}))


def _licenses(rows: Iterable[Sequence[Any]]) -> list[License]:
    """Licenses from rows of :data:`_LICENSES` (one per add-on), in the rows' order."""
    found: dict[int, tuple[Subscription, Plan, Plan | None, list[AddOn]]] = {}
    for subscription, plan, next_plan, addon, *_ in rows:
        entry = found.setdefault(subscription.id, (subscription, plan, next_plan, []))
        if addon is not None:
            entry[3].append(addon)
    return [
        License(
            subscription=s,
            plan=plan,
            addons=tuple(addons),
            renews_with=None if not s.auto_renew or s.state == "ended" else next_plan or plan,
        )
        for s, plan, next_plan, addons in found.values()
    ]


@dataclass(frozen=True)
class LicensePage:
    license: License
    #: The plans it may renew with (R-LIC-3, R-CAT-2): its own first.
    options: list[Plan]
    #: The card that would pay its renewal (R-DUN-5), whether or not it can.
    renewal_card: PaymentMethod | None


#: One license of the account (none: another account's, R-SEC-2).
_ONE_LICENSE = _LICENSES.where(Subscription.id == bindparam("subscription_id"))
_RENEWAL_CARD = aliased(PaymentMethod)
#: One license, with the catalog's version (its renewal options come from the copy) and the
#: card that would pay its renewal.
_LICENSE = _ONE_LICENSE.add_columns(VERSION, _RENEWAL_CARD).outerjoin(
    _RENEWAL_CARD,
    _RENEWAL_CARD.id == renewal_card_id(Subscription.account_id, Subscription.payment_method_id),
)


def license_page(account_id: str, subscription_id: int) -> LicensePage:
    """The account's license as its page shows it, in one statement: the options from this
    process's copy of the catalog. Another account's license is NotFound (R-SEC-2)."""
    params = {"account_id": account_id, "subscription_id": subscription_id}
    rows = get_state().session.execute(_LICENSE, params).all()
    if not rows:
        raise NotFound()
    (license_,) = _licenses(rows)
    version, card = rows[0][-2:]
    options = change_options(license_.plan.id, catalog_at(version))
    return LicensePage(license_, [license_.plan, *options], card)


def find_license(account_id: str, subscription_id: int) -> License:
    """The account's license, or NotFound: another account's id shows nothing (R-SEC-2).
    One statement, which reads that license alone (not every license of the account)."""
    params = {"account_id": account_id, "subscription_id": subscription_id}
    licenses = _licenses(get_state().session.execute(_ONE_LICENSE, params))
    if not licenses:
        raise NotFound()
    return licenses[0]


def update_license(
    account: BillingAccount,
    subscription_id: int,
    *,
    auto_renew: bool,
    renew_with: str | None,
    any_plan: bool = False,
) -> License:
    """Save the license page (R-LIC-3..5): the switch and the plan to renew with.

    Saving with Disabled deselects any scheduled plan; a plan is chosen only while Enabled,
    and only among the options; the current plan and its features stay until the term ends.
    ``any_plan``: support may schedule any active plan (R-LIC-7).
    """
    license_ = find_license(account.billing_id, subscription_id)
    subscription = license_.subscription
    ended = not subscription.auto_renew and subscription.current_term_end <= get_state().today()
    if subscription.state != "active" or ended:  # R-LIC-4: only until its term ends
        raise ChangeNotPossible(code="license_expired")
    was_enabled, was_next = subscription.auto_renew, subscription.next_plan_id
    if auto_renew:
        options = {plan.code: plan for plan in license_.renewal_options}
        if any_plan:
            options.update(_active_plans())
        chosen = options.get(renew_with or license_.plan.code)
        if chosen is None:
            raise PlanNotAnOption()
        subscription.next_plan_id = None if chosen.id == subscription.plan_id else chosen.id
    else:
        subscription.next_plan_id = None
    subscription.auto_renew = auto_renew
    subscription.version += 1
    _notify(account, license_, was_enabled, was_next)
    if subscription.next_plan_id != was_next:
        scheduled = get_state().session.get(Plan, subscription.next_plan_id or 0)
        send_after_commit(
            plan_change_scheduled,
            account_id=subscription.account_id,
            subscription_id=subscription.id,
            plan=scheduled.code if scheduled else None,
        )
    _tx.commit()
    return find_license(account.billing_id, subscription_id)


def _active_plans() -> dict[str, Plan]:
    session = get_state().session
    return {plan.code: plan for plan in session.scalars(select(Plan).where(Plan.active))}


def _notify(
    account: BillingAccount, license_: License, was_enabled: bool, was_next: int | None
) -> None:
    """Each save that changes something sends its e-mail (R-NOTE-1)."""

    subscription = license_.subscription
    session = get_state().session
    renews_with = session.get(Plan, subscription.next_plan_id or subscription.plan_id)
    context = {"subscription": subscription, "plan": license_.plan, "renews_with": renews_with}
    if was_enabled and not subscription.auto_renew:
        enqueue("auto_renewal_disabled", account, context)
    elif not was_enabled and subscription.auto_renew:
        enqueue("auto_renewal_enabled", account, context)
    if subscription.auto_renew and subscription.next_plan_id not in (None, was_next):
        enqueue("plan_change_scheduled", account, context)


@dataclass(frozen=True)
class DunningNotice:
    """What the license page tells an owner whose renewal is unpaid (R-DUN-1, R-DUN-2)."""

    subscription: Subscription
    policy: str
    decline_kind: str | None
    message: str | None
    contact_support: bool
    #: The attempt waiting for the card holder's confirmation (3-D Secure), if any.
    waiting_payment_id: int | None = None


def dunning_notice(subscription: Subscription) -> DunningNotice | None:

    if subscription.state != "active" or subscription.payment_failed_on is None:
        return None
    state = get_state()
    last = state.session.scalar(
        select(Payment)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.subscription_id == subscription.id, Invoice.kind == "renewal")
        .order_by(Payment.id.desc())
        .limit(1)
    )
    return DunningNotice(
        subscription=subscription,
        policy=state.settings.dunning_policy,
        decline_kind=last.decline_kind if last else None,
        message=last.message if last else None,
        contact_support=needs_support(subscription),
        waiting_payment_id=last.id if last and last.status == "requires_action" else None,
    )


# --- a license starts -------------------------------------------------------------------


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
    touch_entitlements(account_id)
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
