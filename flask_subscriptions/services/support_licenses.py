"""Support's actions on a license's terms and dunning (R-OPS-1): retry an unpaid renewal
now, give a restricted license more days, extend a term, end a license.

Like ``support``'s, each runs once inside :func:`.audit.audited` and through the owner's
own services where there is one: a retry is the dunning job's own attempt, ending with a
credit is the owner's change to Free; ending without one voids what dunning's move to Free
voids.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..core.terms import Interval, add_interval
from ..errors import NotFound, SupportActionRefused
from ..models import Invoice, Payment, Plan, PlanChange, Subscription, SubscriptionItem, Term
from ..state import get_state
from . import _tx
from .audit import Actor, audited
from .changes import ChangeRequest, apply_change
from .dunning import open_renewal_invoices, retry_now
from .entitlement_cache import touch_entitlements
from .invoices import void_and_return_balance
from .payment_methods import renewal_method
from .support import support_account

#: No term extended or grace given by more than this many days at once (R-SEC-4).
MAX_DAYS = 366


# --- dunning --------------------------------------------------------------------------------


def retry_invoice(actor: Actor, key: str, account_id: str, invoice_id: int, reason: str) -> None:
    """Retry an unpaid renewal now, with the dunning job's own attempt (same keys)."""
    support_account(account_id)
    session = get_state().session
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.account_id != account_id or invoice.subscription_id is None:
        raise SupportActionRefused(code="invoice_not_unpaid")
    subscription_id = invoice.subscription_id

    def run() -> None:
        if invoice_id not in {i.id for i in open_renewal_invoices(subscription_id)}:
            raise SupportActionRefused(code="invoice_not_unpaid")
        if renewal_method(session.get_one(Subscription, subscription_id)) is None:
            raise SupportActionRefused(code="no_card_for_retry")
        retry_now(subscription_id)
        session.expire_all()
        if session.get_one(Invoice, invoice_id).status != "paid":
            last = session.scalar(
                select(Payment.message)
                .where(Payment.invoice_id == invoice_id)
                .order_by(Payment.id.desc())
                .limit(1)
            )
            raise SupportActionRefused(code="retry_declined", reason=last or "")

    audited(actor, key, account_id, "retry", reason, {"invoice": invoice_id}, run)


def give_days(
    actor: Actor, key: str, account_id: str, subscription_id: int, days: int, reason: str
) -> None:
    """A restricted license works again for ``days`` more days: a new grace that the
    dunning job ends as it ends any grace (retries go on meanwhile)."""
    support_account(account_id)
    _check_days(days)

    def run() -> None:
        subscription = _live(account_id, subscription_id)
        if subscription.restricted_on is None:
            raise SupportActionRefused(code="not_restricted")
        subscription.restricted_on = None
        subscription.grace_warned_on = None
        subscription.grace_ends_on = get_state().today() + timedelta(days=days)
        subscription.version += 1
        touch_entitlements(account_id)
        _tx.commit()

    details = {"license": subscription_id, "days": days}
    audited(actor, key, account_id, "give_days", reason, details, run)


# --- terms ----------------------------------------------------------------------------------


def extend_term(
    actor: Actor, key: str, account_id: str, subscription_id: int, days: int, reason: str
) -> None:
    """The term ends ``days`` later at no charge; renewal then runs from the new end date,
    which becomes the license's billing date (as an interval switch moves it, R-PRO-6)."""
    support_account(account_id)
    _check_days(days)

    def run() -> None:
        subscription = _live(account_id, subscription_id)
        _extend(subscription, days)
        _tx.commit()

    details = {"license": subscription_id, "days": days}
    audited(actor, key, account_id, "extend", reason, details, run)


def _extend(subscription: Subscription, days: int) -> None:
    session = get_state().session
    old_end = subscription.current_term_end
    new_end = old_end + timedelta(days=days)
    term = session.scalar(
        select(Term).where(
            Term.subscription_id == subscription.id,
            Term.start == subscription.current_term_start,
        )
    )
    if term is not None:
        term.end = new_end
    for item in session.scalars(
        select(SubscriptionItem).where(
            SubscriptionItem.subscription_id == subscription.id,
            SubscriptionItem.removed_on.is_(None),
            SubscriptionItem.period_end == old_end,
        )
    ):
        item.period_end = new_end
    # Renewal computes the next term from the anchor (R-TIME-2): the new end is the end
    # of a term anchored one interval before it, so the next term starts on the new end.
    anchor = add_interval(new_end, Interval(subscription.interval), -1)
    subscription.anchor_date = anchor
    subscription.current_term_start = min(anchor, new_end)
    subscription.current_term_end = new_end
    subscription.version += 1


def end_license(actor: Actor, key: str, account_id: str, subscription_id: int, reason: str) -> None:
    """End the license today with no credit; its unpaid renewals are voided and the
    balance they used comes back, as when dunning moves a license to Free."""
    support_account(account_id)

    def run() -> None:
        state = get_state()
        subscription = _live(account_id, subscription_id)
        for invoice in open_renewal_invoices(subscription.id):
            void_and_return_balance(invoice, f"Returned from voided invoice {invoice.number}")
        subscription.state, subscription.live_account_id = "ended", None
        subscription.claimed_by = subscription.claim_expires_at = None
        subscription.ended_on, subscription.end_reason = state.today(), "ended_by_support"
        subscription.version += 1
        touch_entitlements(account_id)
        _tx.commit()

    details = {"license": subscription_id, "credit": False}
    audited(actor, key, account_id, "end", reason, details, run)


def free_plan_code() -> str:
    """Ending with a prorated credit is a change to the Free plan (R-PRO-5's credit)."""
    code = get_state().session.scalar(
        select(Plan.code).where(Plan.is_free, Plan.active).order_by(Plan.position).limit(1)
    )
    if code is None:
        raise SupportActionRefused(code="no_free_plan")
    return code


def end_with_credit(
    actor: Actor,
    key: str,
    account_id: str,
    subscription_id: int,
    fingerprint: str,
    reason: str,
) -> PlanChange:
    """End today with the prorated credit the quote showed: the owner's change to Free."""
    account = support_account(account_id)
    request = ChangeRequest(free_plan_code(), "month", ())
    details = {"license": subscription_id, "credit": True}
    return audited(
        actor,
        key,
        account_id,
        "end",
        reason,
        details,
        lambda: apply_change(account, subscription_id, request, fingerprint, any_plan=True),
    )


def _live(account_id: str, subscription_id: int) -> Subscription:
    subscription = get_state().session.get(Subscription, subscription_id)
    if subscription is None or subscription.account_id != account_id:
        raise NotFound()
    if subscription.state != "active":
        raise SupportActionRefused(code="license_not_active")
    return subscription


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise SupportActionRefused(code="days_invalid", limit=MAX_DAYS)
