"""Automatic renewal (R-REN-1..3): every term invoiced and charged exactly once, never skipped.

Whatever runs it (the scheduler in every worker, the CLI, a re-run after a crash), a run
renews batch after batch (``renewal_batch.py``):

1. One transaction *claims* a batch of due subscriptions with a conditional UPDATE and a
   lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never renew the same
   one, and writes each next term (unique on subscription and start), its invoice, the
   balance it uses and a *pending* payment keyed by the invoice. A license whose new term
   is not due yet gets its claim back in that transaction.
2. The gateway is called outside any transaction, many calls at once (or one call for the
   batch, to a gateway that takes batches).
3. One transaction records the outcomes; the claims still held (licenses with more missed
   terms, expired ones) are released.

It fills in what is missing: a subscription whose scheduler was down for three months is
claimed again by the next batch until each missed term is renewed, in order, each with its
own invoice. A crash between the steps is healed later: the claim's lease runs out, and a
payment left pending or unknown is settled by the reconciliation job from its key.

This module keeps the run and what a renewal's outcomes mean for payments settled one at a
time (a dunning retry, a reconciled payment, a webhook).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..models import Invoice, Payment, PaymentMethod, Plan, Subscription
from ..state import get_state
from . import _tx
from .authentication import renewal_action_required
from .invoices import invoice_lines, mark_paid
from .payment_methods import default_method_id, is_expired
from .payments import OutcomeHandlers, register_outcome_handlers
from .reconciliation import reconcile_unknown_payments
from .renewal_batch import charge_batch, open_batch, record_batch
from .renewal_terms import Batch

#: Claimed batches whose transaction lost a race (a balance spent meanwhile) are retried.
_RETRIES = 3


@dataclass
class RenewalReport:
    """What a run did, for the CLI's summary and the test clock."""

    renewed: int = 0
    failed: int = 0
    pending: int = 0
    expired: int = 0
    charged: Counter[str] = field(default_factory=Counter)  # currency → minor units

    def add(self, other: RenewalReport) -> None:
        self.renewed += other.renewed
        self.failed += other.failed
        self.pending += other.pending
        self.expired += other.expired
        self.charged.update(other.charged)

    def __str__(self) -> str:
        return (
            f"renewed {self.renewed}, failed {self.failed}, pending {self.pending}, "
            f"expired {self.expired}"
        )


# --- the run -----------------------------------------------------------------------------


def count_due() -> int:
    state = get_state()
    return (
        state.session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.state == "active", Subscription.current_term_end <= state.today())
        )
        or 0
    )


def renew_due(
    *, concurrency: int | None = None, progress: Callable[[int], None] | None = None
) -> RenewalReport:
    """Renew every subscription due today, batch by batch, ``concurrency`` charges at a time."""
    state = get_state()
    workers = concurrency or state.settings.renewal_concurrency
    token = uuid.uuid4().hex
    report = RenewalReport()
    reconcile_unknown_payments()  # heal what a crashed run left: never charged twice
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while batch := _open(token, state.settings.renewal_batch_size):
            results = charge_batch(batch.charges, pool if workers > 1 else None)
            outcomes = record_batch(batch, results)
            report.renewed += batch.renewed + len(outcomes.succeeded)
            report.failed += batch.failed + outcomes.declined
            report.pending += outcomes.pending
            report.expired += batch.expired
            for charge in outcomes.succeeded:
                report.charged[charge.request.currency] += charge.request.amount
            if progress:
                progress(len(batch.subscription_ids))
    return report


def _open(token: str, size: int) -> Batch | None:
    for attempt in range(_RETRIES):
        try:
            return open_batch(token, size)
        except IntegrityError:
            _tx.rollback()  # another writer took a balance seq or a term first: read again
            if attempt == _RETRIES - 1:
                raise
    return None


def renewal_method(subscription: Subscription) -> PaymentMethod | None:
    """The account's default card pays renewals (R-BUY-10)."""
    session = get_state().session
    method_id = default_method_id(subscription.account_id) or subscription.payment_method_id
    method = session.get(PaymentMethod, method_id) if method_id else None
    if method is None or method.removed_at is not None or is_expired(method, get_state().today()):
        return None
    return method


def expire(subscription: Subscription) -> None:
    """A Disabled license ends at its term end; the account is back on Free (R-LIC-3).

    Its claim ends with it, in the same transaction: no job claims an ended license again,
    so a claim left for the batch to release would outlive a worker killed before that.
    """
    subscription.state = "ended"
    subscription.claimed_by = subscription.claim_expires_at = None
    subscription.live_account_id = None
    subscription.ended_on = subscription.current_term_end
    subscription.end_reason = "disabled" if not subscription.auto_renew else "renewed_as_free"
    subscription.next_plan_id = None
    mail_about(
        "license_expired", subscription, None, None, dedupe_key=f"license_expired:{subscription.id}"
    )


# --- outcomes ----------------------------------------------------------------------------


def _paid(invoice: Invoice, payment: Payment) -> None:
    from .dunning import clear_dunning

    mark_paid(invoice)
    _receipt(invoice, payment)
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    if subscription is not None and subscription.payment_failed_on is not None:
        clear_dunning(subscription)  # a retry paid the last open renewal (R-DUN-1)


def _failed(invoice: Invoice, payment: Payment) -> None:
    """The renewal could not be charged: recorded, e-mailed, and handed to dunning (R-DUN)."""
    hand_to_dunning(
        "payment_failed", invoice, payment, dedupe_key=f"payment_failed:{payment.idempotency_key}"
    )


def failed_without_charge(invoice: Invoice, reason: str) -> None:
    hand_to_dunning(
        "payment_failed",
        invoice,
        None,
        reason=reason,
        dedupe_key=f"payment_failed:{invoice.id}:no-card",
    )


def hand_to_dunning(
    kind: str, invoice: Invoice, payment: Payment | None, *, dedupe_key: str, **extra: object
) -> None:
    """The renewal is unpaid: dunning starts (once) and the owners get the ``kind`` e-mail."""
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    assert subscription is not None
    enter_dunning(subscription)
    mail_about(kind, subscription, invoice, payment, dedupe_key=dedupe_key, **extra)


def enter_dunning(subscription: Subscription) -> None:
    state = get_state()
    if subscription.payment_failed_on is None:
        today = state.today()
        subscription.payment_failed_on = today
        subscription.grace_ends_on = today + timedelta(days=state.settings.grace_days)


def _receipt(invoice: Invoice, payment: Payment | None) -> None:
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    assert subscription is not None
    mail_about(
        "renewal_receipt",
        subscription,
        invoice,
        payment,
        dedupe_key=f"renewal_receipt:{invoice.id}",
    )


def mail_about(
    kind: str,
    subscription: Subscription,
    invoice: Invoice | None,
    payment: Payment | None,
    *,
    dedupe_key: str,
    **extra: object,
) -> None:
    from ..notifications import enqueue

    state = get_state()
    account = state.load_account(subscription.account_id)
    if account is None:
        return
    session = state.session
    method = session.get(PaymentMethod, payment.payment_method_id) if payment else None
    enqueue(
        kind,
        account,
        {
            "subscription": subscription,
            "plan": session.get(Plan, subscription.plan_id),
            "invoice": invoice,
            "lines": invoice_lines(invoice) if invoice else [],
            "payment": payment,
            "payment_method": method,
            "today": state.today(),
            **extra,
        },
        dedupe_key=dedupe_key,
    )


register_outcome_handlers(
    "renewal",
    OutcomeHandlers(
        paid=_paid,
        failed=_failed,
        action_required=renewal_action_required,
        charge_when_never_sent=True,
    ),
)
