"""The dunning job (R-DUN-1, R-DUN-2, R-DUN-4): retries, warnings, restriction, move to Free.

Only automatic renewals enter dunning (a manual change never does, R-PRO-8). The job runs
every ``SUBSCRIPTIONS_RETRY_AFTER_UPDATE_MINUTES`` in every worker; each subscription is
claimed with a lease, and a retry is a new payment attempt on the open invoice whose key
``renewal:<invoice>:<attempt>`` is unique, so several workers never retry an invoice twice
in a day, and never charge one attempt twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select

from ..core.dunning import Action, Facts, decide, support_needed
from ..models import Invoice, Payment, Subscription
from ..signals import moved_to_free, restriction_lifted, subscription_restricted
from ..state import get_state
from . import _tx
from ._tx import send_after_commit
from .claims import claim, release
from .entitlement_cache import touch_entitlements
from .invoices import void_and_return_balance
from .notices import mail_about
from .payment_methods import renewal_method
from .pipeline import Attempt, attempt_open, card_of, charge_and_record, open_attempts


@dataclass
class DunningReport:
    retried: int = 0
    recovered: int = 0
    warned: int = 0
    restricted: int = 0
    moved_to_free: int = 0

    def __str__(self) -> str:
        return (
            f"retried {self.retried} (recovered {self.recovered}), warned {self.warned}, "
            f"restricted {self.restricted}, moved to Free {self.moved_to_free}"
        )


def run_dunning(among: Collection[int] | None = None) -> DunningReport:
    """Take today's dunning actions for every subscription whose renewal is unpaid (or for
    those ``among`` them: one task's share when the job is fanned out to workers)."""
    token = uuid.uuid4().hex
    report = DunningReport()
    after = 0  # batch after batch, in id order: each subscription once a run
    while claimed := _claim_after(token, after, among):
        for subscription_id in claimed:
            try:
                _handle(subscription_id, token, report)
            except Exception:
                _tx.rollback()
                raise
            finally:
                release([subscription_id], token)
        after = claimed[-1]
    return report


def unpaid_ids() -> list[int]:
    """The subscriptions the dunning job looks at, in id order: a dispatcher splits them
    into one task per batch."""
    session = get_state().session
    ids = list(session.scalars(_unpaid().order_by(Subscription.id)))
    session.commit()
    return ids


def _unpaid() -> Select[int]:
    return select(Subscription.id).where(
        Subscription.state == "active", Subscription.payment_failed_on.is_not(None)
    )


def _claim_after(token: str, after: int, among: Collection[int] | None = None) -> list[int]:
    """The next batch of unpaid subscriptions (``DUNNING_BATCH_SIZE``): each one's gateway
    call happens while the batch's claims run, so a batch stays well within the lease."""
    claimed = claim(
        token,
        get_state().settings.dunning_batch_size,
        Subscription.state == "active",
        Subscription.payment_failed_on.is_not(None),
        Subscription.id > after,
        *([] if among is None else [Subscription.id.in_(list(among))]),
    )
    get_state().session.commit()
    return claimed


def _handle(subscription_id: int, token: str, report: DunningReport) -> None:
    state = get_state()
    session = state.session
    subscription = session.scalar(
        select(Subscription).where(
            Subscription.id == subscription_id, Subscription.claimed_by == token
        )
    )
    if subscription is None or subscription.payment_failed_on is None:
        return
    decision = decide(_facts(subscription))
    for action in decision.actions:
        if action is Action.RETRY:
            _retry(subscription_id, report)
        elif action is Action.WARN:
            subscription.grace_warned_on = state.today()
            mail_about(
                "grace_ending",
                subscription,
                None,
                None,
                dedupe_key=f"grace_ending:{subscription.id}:{subscription.payment_failed_on}",
            )
            report.warned += 1
        elif action is Action.RESTRICT:
            _restrict(subscription)
            report.restricted += 1
        elif action is Action.MOVE_TO_FREE:
            _move_to_free(subscription)
            report.moved_to_free += 1
        _tx.commit()
        subscription = session.get(Subscription, subscription_id)
        if subscription is None or subscription.payment_failed_on is None:
            return


def _facts(subscription: Subscription) -> Facts:
    state = get_state()
    last = state.session.scalar(
        select(func.max(Payment.created_at))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.subscription_id == subscription.id, Invoice.kind == "renewal")
    )
    zone = ZoneInfo(state.settings.timezone)
    return Facts(
        policy=state.settings.dunning_policy,  # type: ignore[arg-type]
        today=state.today(),
        now=state.now(),
        grace_ends_on=subscription.grace_ends_on or state.today(),
        restricted=subscription.restricted_on is not None,
        last_attempt_on=_local_date(last, zone) if last else None,
        last_attempt_at=last,
        method_updated_at=subscription.payment_method_updated_at,
        warning_days=state.settings.grace_warning_days,
        warned=subscription.grace_warned_on is not None,
    )


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.replace(tzinfo=UTC).astimezone(zone).date()


def _retry(subscription_id: int, report: DunningReport) -> None:
    """A new attempt on each open renewal invoice, oldest first, with the renewal card.

    Terms are paid in their order: from the first invoice whose last attempt is still open
    (waiting for 3-D Secure, or its outcome unknown) on, nothing is retried. That attempt
    can still take the money, so a second one could take it twice, and a later term must
    not be paid before it. The card holder's confirmation, or reconciliation, settles it.
    """
    state = get_state()
    session = state.session
    subscription = session.get_one(Subscription, subscription_id)
    method = renewal_method(subscription)
    if method is None:
        return
    card = card_of(method)
    attempts = []
    for invoice, waiting in session.execute(
        _open_renewal(subscription.id).add_columns(attempt_open().label("waiting"))
    ):
        if waiting:
            break
        attempts.append(
            Attempt(
                invoice.id,
                invoice.number or "",
                "renewal",
                invoice.account_id,
                invoice.amount_due,
                invoice.currency,
                card,
                _attempts_made(invoice.id) + 1,
                "Renewal {number} (retry)",
            )
        )
    reserved = open_attempts(attempts)
    _tx.commit()
    report.retried += len(reserved)
    report.recovered += len(charge_and_record(reserved).succeeded)


def retry_now(subscription_id: int) -> DunningReport:
    """The daily retry, now: support's "retry an unpaid invoice" (R-OPS-1) takes the same
    attempt the job would, with the same keys, so it never charges an attempt twice."""
    report = DunningReport()
    _retry(subscription_id, report)
    return report


def _attempts_made(invoice_id: int) -> int:
    return (
        get_state().session.scalar(
            select(func.max(Payment.attempt)).where(Payment.invoice_id == invoice_id)
        )
        or 0
    )


def failed_without_charge(invoice_id: int, reason: str) -> None:
    """A renewal that no card can pay: dunning starts, and the owners are told why
    (``reason`` is a code; the e-mail template says it in words)."""
    hand_to_dunning(
        "payment_failed",
        get_state().session.get_one(Invoice, invoice_id),
        None,
        reason=reason,
        dedupe_key=payment_failed_key(invoice_id),
    )


def payment_failed_key(invoice_id: int) -> str:
    """One "payment failed" e-mail per unpaid renewal, whichever attempt failed first and
    however many failed after it (R-DUN-4)."""
    return f"payment_failed:{invoice_id}"


def hand_to_dunning(
    kind: str, invoice: Invoice, payment: Payment | None, *, dedupe_key: str, **extra: object
) -> None:
    """The renewal is unpaid: dunning starts (once) and the owners get the ``kind`` e-mail."""
    subscription = get_state().session.get_one(Subscription, invoice.subscription_id)
    enter_dunning(subscription)
    mail_about(kind, subscription, invoice, payment, dedupe_key=dedupe_key, **extra)


def enter_dunning(subscription: Subscription) -> None:
    state = get_state()
    if subscription.payment_failed_on is None:
        today = state.today()
        subscription.payment_failed_on = today
        subscription.grace_ends_on = today + timedelta(days=state.settings.grace_days)
        touch_entitlements(subscription.account_id)  # the grace notice (R-DUN-1)


def open_renewal_invoices(subscription_id: int) -> list[Invoice]:
    return list(get_state().session.scalars(_open_renewal(subscription_id)))


def _open_renewal(subscription_id: int) -> Select[Invoice]:
    return (
        select(Invoice)
        .where(
            Invoice.subscription_id == subscription_id,
            Invoice.kind == "renewal",
            Invoice.status == "open",
            Invoice.paid_by_invoice_id.is_(None),
        )
        .order_by(Invoice.period_start)
    )


def _restrict(subscription: Subscription) -> None:
    """R-DUN-1: the grace ended unpaid: paid features stop, billing goes on."""
    subscription.restricted_on = get_state().today()
    touch_entitlements(subscription.account_id)
    send_after_commit(
        subscription_restricted,
        account_id=subscription.account_id,
        subscription_id=subscription.id,
        since=subscription.restricted_on,
    )
    mail_about(
        "restricted",
        subscription,
        None,
        None,
        dedupe_key=f"restricted:{subscription.id}:{subscription.payment_failed_on}",
    )


def _move_to_free(subscription: Subscription) -> None:
    """R-DUN-2: the grace ended unpaid: the license ends and the unpaid invoice is voided.

    Its claim ends with it (as in ``renewals.expire``): no job claims an ended license
    again, so a worker killed before its release would leave the claim there for good.
    """
    state = get_state()
    for invoice in open_renewal_invoices(subscription.id):
        void_and_return_balance(invoice, f"Returned from voided invoice {invoice.number}")
    subscription.state = "ended"
    subscription.claimed_by = subscription.claim_expires_at = None
    subscription.live_account_id = None
    subscription.ended_on = state.today()
    subscription.end_reason = "unpaid"
    touch_entitlements(subscription.account_id)
    mail_about(
        "moved_to_free", subscription, None, None, dedupe_key=f"moved_to_free:{subscription.id}"
    )
    send_after_commit(
        moved_to_free, account_id=subscription.account_id, subscription_id=subscription.id
    )


def clear_dunning(subscription: Subscription) -> bool:
    """Everything is paid: the license is Enabled again at once (R-DUN-3)."""
    if open_renewal_invoices(subscription.id):
        return False
    was_restricted = subscription.restricted_on is not None
    if subscription.payment_failed_on is not None or was_restricted:
        touch_entitlements(subscription.account_id)
    subscription.payment_failed_on = subscription.grace_ends_on = None
    subscription.restricted_on = subscription.grace_warned_on = None
    subscription.payment_method_updated_at = None
    if was_restricted:
        send_after_commit(
            restriction_lifted,
            account_id=subscription.account_id,
            subscription_id=subscription.id,
        )
    return was_restricted


def needs_support(subscription: Subscription) -> bool:
    """The license page asks the owner to contact support (R-DUN-2)."""
    state = get_state()
    return support_needed(
        subscription.payment_method_updated_at,
        subscription.payment_failed_on is not None,
        state.now(),
        timedelta(hours=state.settings.contact_support_after_hours),
    )
