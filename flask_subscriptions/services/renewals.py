"""Automatic renewal (R-REN-1..3): every term invoiced and charged exactly once, never skipped.

Whatever runs it (the scheduler in every worker, the CLI, a re-run after a crash), a run
renews batch after batch, each through the billing pipeline (``pipeline.py``):

1. ``renewal_batch.open_batch`` claims a batch of due subscriptions with a conditional
   UPDATE and a lease, so two workers never renew the same one, and writes each next term
   (unique on subscription and start) with its invoice, balance entries and *pending*
   payment, keyed by the invoice. A license whose new term is not due yet gets its claim
   back in that transaction.
2. The gateway is called outside any transaction, many calls at once (or one call for the
   batch, to a gateway that takes batches).
3. One transaction records the outcomes; the claims still held (licenses with more missed
   terms, expired ones) are released with it.

It fills in what is missing: a subscription whose scheduler was down for three months is
claimed again by the next batch until each missed term is renewed, in order, each with its
own invoice. A crash between the steps is healed later: the claim's lease runs out, and a
payment left pending or unknown is settled by the reconciliation job from its key.

This module keeps the run, and what a renewal's outcome means (:data:`OUTCOMES`), for a
batch and for a payment settled on its own (a dunning retry, a reconciled payment, a
webhook, a 3-D Secure confirmation).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..errors import BalanceChanged
from ..gateways.base import ChargeResult
from ..models import Invoice, Payment, Subscription
from ..notifications import Mailing, enqueue_rendered, render_many
from ..signals import subscription_renewed
from ..state import get_state
from . import _tx
from ._gc import full_collections_deferred
from ._sql import among
from ._tx import send_after_commit
from .claims import release
from .dunning import clear_dunning, hand_to_dunning, payment_failed_key
from .notices import mail_about
from .pipeline import (
    Outcomes,
    Recorded,
    Reserved,
    answered_in_one_call,
    charge,
    one_by_one,
    record,
)
from .profiles import recipients_for
from .reconciliation import reconcile_unknown_payments
from .renewal_batch import Batch, Renewed, Snapshot, open_batch

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


#: Batches in progress at once when charges are calls in flight: while one batch waits for
#: the gateway's answers, the next is claimed, written and sent, so the calls in flight
#: never drain between two batches.
LANES = 2


def renew_due(
    *, concurrency: int | None = None, progress: Callable[[int], None] | None = None
) -> RenewalReport:
    """Renew every subscription due today, batch by batch, ``concurrency`` charges at a time.

    With many calls in flight (a gateway called once per charge), two batches overlap, each
    on a thread with its own app context and session, sharing the calls in flight: the
    claims keep them apart, as they keep two workers apart.
    """
    state = get_state()
    workers = concurrency or state.settings.renewal_concurrency
    token = uuid.uuid4().hex
    run = _Run(RenewalReport(), progress)
    reconcile_unknown_payments()  # heal what a crashed run left: never charged twice
    with full_collections_deferred(), ThreadPoolExecutor(max_workers=workers) as pool:
        if workers == 1 or answered_in_one_call():
            run.lane(token, pool if workers > 1 else None)
        else:
            state.session.commit()  # each lane has its own session: hold nothing here
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            with ThreadPoolExecutor(max_workers=LANES) as lanes:
                started = [lanes.submit(run.lane_in, app, token, pool) for _ in range(LANES)]
                for lane in started:
                    lane.result()
    return run.report


@dataclass
class _Run:
    """One run's report, added to by its lanes."""

    report: RenewalReport
    progress: Callable[[int], None] | None
    lock: Lock = field(default_factory=Lock)

    def lane(self, token: str, pool: ThreadPoolExecutor | None) -> None:
        while done := renew_batch(token, pool):
            with self.lock:
                self.report.add(done.report)
                if self.progress:
                    self.progress(len(done.subscription_ids))

    def lane_in(self, app: Flask, token: str, pool: ThreadPoolExecutor) -> None:
        with app.app_context():
            self.lane(token, pool)


@dataclass
class BatchDone:
    """One batch's report, and the licenses it claimed (for a progress bar, or a worker
    that asks whether any of them still owes a term)."""

    report: RenewalReport
    subscription_ids: list[int]


def renew_batch(
    token: str, pool: ThreadPoolExecutor | None = None, size: int | None = None
) -> BatchDone | None:
    """Claim one batch, charge it (``pool``: several charges at once) and record it: the
    whole of a renewal, for the in-process run and for one task on a queue's worker alike.

    None when nothing due is free to claim. No transaction is open while the gateway answers.
    """
    batch = _open(token, size or get_state().settings.renewal_batch_size)
    if batch is None:
        return None
    requests = [r.request for r in batch.reserved if r.request is not None]
    done = record_batch(batch, charge(requests, pool))
    report = RenewalReport(
        renewed=batch.renewed + len(done.succeeded),
        failed=batch.failed + len(done.declined),
        pending=len(done.waiting),
        expired=batch.expired,
    )
    for one in done.succeeded:
        assert one.request is not None
        report.charged[one.request.currency] += one.request.amount
    return BatchDone(report, batch.subscription_ids)


def still_due(subscription_ids: Sequence[int]) -> int:
    """How many of these licenses owe another term now (a scheduler that was down for
    months): a worker that renewed one term of each asks for another batch."""
    state = get_state()
    return (
        state.session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                among(Subscription.id, subscription_ids),
                Subscription.state == "active",
                Subscription.current_term_end <= state.today(),
            )
        )
        or 0
    )


def record_batch(batch: Batch, results: Sequence[ChargeResult]) -> Recorded:
    """Record the batch's answers through the pipeline, giving its claims back in the same
    transaction (licenses still due, or expired)."""
    held = [i for i in batch.subscription_ids if i not in batch.released]
    return record(
        list(zip(batch.reserved, results, strict=True)),
        before_commit=lambda: release(held, batch.token, commit=False) if held else None,
    )


def _open(token: str, size: int) -> Batch | None:
    for attempt in range(_RETRIES):
        try:
            return open_batch(token, size)
        except (IntegrityError, BalanceChanged):
            _tx.rollback()  # another writer took a balance seq or a term first: read again
            if attempt == _RETRIES - 1:
                raise
    return None


# --- outcomes ----------------------------------------------------------------------------


def _paid(reserved: Sequence[Reserved]) -> None:
    """Receipts (R-REN-3): a batch's rendered at once from what it wrote; a payment settled
    on its own (a retry that paid the last open renewal) also ends its dunning (R-DUN-1)."""
    from_batch = [r for r in reserved if isinstance(r.context, Renewed)]
    write_receipts(from_batch)
    for one in from_batch:
        term = one.invoice or {}
        _renewed(one.account_id, one.context.subscription.id, one.invoice_id, term)
    one_by_one(_paid_alone)([r for r in reserved if not isinstance(r.context, Renewed)])


def _paid_alone(invoice: Invoice, payment: Payment | None) -> None:
    subscription = get_state().session.get_one(Subscription, invoice.subscription_id)
    mail_about(
        "renewal_receipt",
        subscription,
        invoice,
        payment,
        dedupe_key=f"renewal_receipt:{invoice.id}",
    )
    if subscription.payment_failed_on is not None:
        clear_dunning(subscription)
    _renewed(
        invoice.account_id,
        subscription.id,
        invoice.id,
        {"period_start": invoice.period_start, "period_end": invoice.period_end},
    )


def _renewed(account_id: str, subscription_id: int, invoice_id: int, term: dict[str, Any]) -> None:
    send_after_commit(
        subscription_renewed,
        account_id=account_id,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
        term_start=term.get("period_start"),
        term_end=term.get("period_end"),
    )


def _failed(invoice: Invoice, payment: Payment | None) -> None:
    """The renewal could not be charged: recorded, and handed to dunning (R-DUN).

    One "payment failed" e-mail per unpaid renewal (R-DUN-4): the key is the invoice's, so
    the daily retries that fail after the first say nothing new."""
    assert payment is not None
    hand_to_dunning("payment_failed", invoice, payment, dedupe_key=payment_failed_key(invoice.id))


def _action_required(invoice: Invoice, payment: Payment | None) -> None:
    """The bank wants the card holder (3-D Secure): e-mail owners a link; unpaid for dunning."""
    assert payment is not None
    hand_to_dunning(
        "payment_action_required",
        invoice,
        payment,
        dedupe_key=f"payment_action_required:{payment.idempotency_key}",
    )


OUTCOMES = Outcomes(
    paid=_paid,
    failed=one_by_one(_failed),
    action_required=one_by_one(_action_required),
    charge_when_never_sent=True,
)


def write_receipts(reserved: Sequence[Reserved]) -> None:
    """The receipt e-mails of a batch's renewals: accounts loaded at once, one INSERT."""
    if not reserved:
        return
    state = get_state()
    accounts = state.load_accounts({r.account_id for r in reserved})
    today = state.today()
    messages: list[Mailing] = []
    locales: dict[str, str] = {}  # read with the batch's profiles: no statement of its own
    for one in reserved:
        done: Renewed = one.context
        account = accounts.get(one.account_id)
        recipients = recipients_for(account, done.billing_email) if account else []
        if account is None or not recipients:
            continue
        paid_by_card = one.payment_id is not None
        context = {
            "subscription": done.subscription,
            "plan": done.plan,
            "invoice": Snapshot(**{**(one.invoice or {}), "status": "paid"}),
            "lines": done.lines,
            "payment": _payment(one) if paid_by_card else None,
            "payment_method": done.method if paid_by_card else None,
            "today": today,
        }
        messages.append((account, recipients, context, f"renewal_receipt:{one.invoice_id}"))
        if done.locale:
            locales[one.account_id] = done.locale
    enqueue_rendered(render_many("renewal_receipt", messages, locales))


def _payment(one: Reserved) -> Snapshot:
    request = one.request
    assert request is not None
    return Snapshot(
        id=one.payment_id,
        idempotency_key=request.idempotency_key,
        account_id=one.account_id,
        invoice_id=one.invoice_id,
        amount=request.amount,
        currency=request.currency,
        status="succeeded",
    )
