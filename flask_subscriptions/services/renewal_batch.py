"""Renewing a claimed batch of subscriptions set-based (R-REN-1, R-REN-2).

A batch is three steps and two transactions:

1. :func:`open_batch` — one transaction claims up to ``size`` due subscriptions (a
   conditional UPDATE with a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), reads what
   they hold in a fixed number of queries, has the core quote each next term, and writes
   every term, invoice, line, balance entry, pending payment and subscription update with
   executemany. The pending payments, keyed by their invoices, are durable before any
   gateway is called.
2. :func:`charge_batch` — the gateway is called for each pending payment outside any
   transaction, ``concurrency`` calls at a time (or once for the batch, when it takes
   batches: ``BulkCharges``).
3. :func:`record_batch` — one transaction records the successes (payment, invoice, receipt);
   a decline or an unknown outcome goes through ``record_outcome`` like any other payment's,
   so dunning and reconciliation see it the same way. Then the claims are released (with
   the successes, when every charge succeeded).

The statements a batch issues depend neither on its size nor on any subscription's history.
The uncommon cases (a license that expires, a scheduled plan that changes usage limits, no
usable card) take the ORM path for their subscription inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import bindparam, exists, or_, update
from sqlalchemy.engine import CursorResult

from ..gateways.base import ChargeRequest, ChargeResult, ChargeStatus
from ..models import Invoice, Subscription
from ..state import get_state
from . import _tx
from .claims import claim_rows, release
from .payments import (
    OPEN_STATUSES,
    attempt_open,
    charge,
    charge_many,
    record_outcome,
    send_succeeded,
)
from .renewal_facts import INVOICES, PAYMENTS, BatchFacts
from .renewal_receipts import Snapshot, write_receipts
from .renewal_terms import Batch, Charge, TermWriter, expire_all

# --- 1. open -----------------------------------------------------------------------------


def open_batch(token: str, size: int) -> Batch | None:
    """Claim up to ``size`` due subscriptions and write their next terms, in one transaction.

    None when nothing is due. Committed before it returns: nothing is held afterwards.
    """
    state = get_state()
    subs = claim_rows(
        token,
        size,
        Subscription.state == "active",
        Subscription.current_term_end <= state.today(),
        # Terms are charged in their order: not while an earlier term's attempt can still
        # take money (a crashed run's pending payment, an unknown outcome, 3-D Secure).
        # Reconciliation or the card holder settles it first; a decline goes to dunning.
        ~exists().where(Invoice.subscription_id == Subscription.id, attempt_open()),
        order_by=[Subscription.current_term_end],
    )
    if not subs:
        state.session.commit()
        return None
    batch = Batch(token, [s.id for s in subs])
    facts = BatchFacts.load(subs)
    plans = [facts.plans[s.next_plan_id or s.plan_id] for s in subs]
    expiring = [
        s.id for s, plan in zip(subs, plans, strict=True) if not s.auto_renew or plan.is_free
    ]
    renewing = [
        (s, plan) for s, plan in zip(subs, plans, strict=True) if s.auto_renew and not plan.is_free
    ]
    if renewing:
        TermWriter(batch, facts).write(renewing)
    expire_all(expiring)
    batch.expired = len(expiring)
    _tx.commit()
    return batch


# --- 2. charge ---------------------------------------------------------------------------


def charge_batch(charges: Sequence[Charge], pool: ThreadPoolExecutor | None) -> list[ChargeResult]:
    """Call the gateway for each pending payment, outside any transaction of ours: the whole
    batch in one call when the gateway takes batches, else one call per charge."""
    if not charges:
        return []
    answers = charge_many([c.request for c in charges])
    if answers is not None:
        return answers
    if pool is None:
        return [charge(c.request) for c in charges]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return list(pool.map(lambda c: _charge_in(app, c.request), charges))


def _charge_in(app: Flask, request: ChargeRequest) -> ChargeResult:
    with app.app_context():
        return charge(request)


# --- 3. record ---------------------------------------------------------------------------


@dataclass
class Outcomes:
    succeeded: list[Charge] = field(default_factory=list)
    declined: int = 0
    pending: int = 0


def record_batch(batch: Batch, results: Sequence[ChargeResult]) -> Outcomes:
    """Record the batch's successes in one transaction, the rest one by one; release the
    claims (with the successes when there is nothing else: one commit fewer)."""
    outcomes = Outcomes()
    pairs = list(zip(batch.charges, results, strict=True))
    succeeded = [(c, r) for c, r in pairs if r.status is ChargeStatus.SUCCEEDED]
    rest = [(c, r) for c, r in pairs if r.status is not ChargeStatus.SUCCEEDED]
    if succeeded:
        outcomes.succeeded = _record_succeeded(succeeded, None if rest else batch)
    for c, result in rest:
        record_outcome(c.payment_id, result)
        if result.status is ChargeStatus.DECLINED:
            outcomes.declined += 1
        else:
            outcomes.pending += 1
    if rest or not succeeded:
        _release(batch, commit=True)
    return outcomes


def _record_succeeded(
    succeeded: list[tuple[Charge, ChargeResult]], releasing: Batch | None
) -> list[Charge]:
    """Paid: each payment moved once (of several reporters exactly one moves a row, as in
    ``record_outcome``), its invoice paid, its receipt written; ``releasing``'s claims given
    back in the same transaction."""
    now = get_state().now()
    moved = _move_all(succeeded, now)
    if moved is None:  # another reporter moved some first: find out which are ours
        _tx.rollback()
        moved = _move_each(succeeded, now)
    mine = [(c, r) for c, r in succeeded if c.payment_id in moved]
    if mine:
        get_state().session.execute(
            update(INVOICES)
            .where(INVOICES.c.id.in_([c.renewed.invoice.id for c, _r in mine]))
            .values(status="paid", paid_at=now)
        )
        payments = {c.renewed.invoice.id: _payment(c, r, now) for c, r in mine}
        write_receipts([c.renewed for c, _r in mine], payments)
        _tx.after_commit(lambda: _signals(payments.values()))
    if releasing is not None:
        _release(releasing, commit=False)
    _tx.commit()
    return [c for c, _r in mine]


def _release(batch: Batch, *, commit: bool) -> None:
    """Give back the claims the batch still holds (licenses still due, or expired)."""
    held = [i for i in batch.subscription_ids if i not in batch.released]
    if held:
        release(held, batch.token, commit=commit)


def _move_all(succeeded: list[tuple[Charge, ChargeResult]], now: datetime) -> set[int] | None:
    """Every payment moved to succeeded with its charge id in one executemany, as is the
    rule; None when some had already left the open states (another reporter moved them
    first): the caller rolls back and asks which are its own."""
    session = get_state().session
    if not session.get_bind().dialect.supports_sane_multi_rowcount:
        return None
    p = PAYMENTS.c
    result = session.execute(
        update(PAYMENTS)
        # (an IN list expands per execution, which executemany does not allow)
        .where(p.id == bindparam("b_id"), or_(*(p.status == s for s in OPEN_STATUSES)))
        .values(status="succeeded", charge_id=bindparam("b_charge"), updated_at=now),
        [{"b_id": c.payment_id, "b_charge": r.charge_id} for c, r in succeeded],
    )
    if cast(CursorResult[Any], result).rowcount != len(succeeded):
        return None
    return {c.payment_id for c, _r in succeeded}


def _move_each(succeeded: list[tuple[Charge, ChargeResult]], now: datetime) -> set[int]:
    """The payments this reporter moved, told apart by ``UPDATE … RETURNING``."""
    session = get_state().session
    p = PAYMENTS.c
    moved = set(
        session.execute(
            update(PAYMENTS)
            .where(p.id.in_([c.payment_id for c, _r in succeeded]), p.status.in_(OPEN_STATUSES))
            .values(status="succeeded", updated_at=now)
            .returning(p.id)
        ).scalars()
    )
    mine = [(c, r) for c, r in succeeded if c.payment_id in moved]
    if mine:
        session.execute(
            update(PAYMENTS)
            .where(p.id == bindparam("b_id"))
            .values(charge_id=bindparam("b_charge")),
            [{"b_id": c.payment_id, "b_charge": r.charge_id} for c, r in mine],
        )
    return moved


def _payment(charge: Charge, result: ChargeResult, now: datetime) -> Snapshot:
    request = charge.request
    return Snapshot(
        id=charge.payment_id,
        idempotency_key=request.idempotency_key,
        account_id=charge.renewed.subscription.account_id,
        invoice_id=charge.renewed.invoice.id,
        purpose="charge",
        attempt=1,
        payment_method_id=charge.renewed.method.id if charge.renewed.method else None,
        amount=request.amount,
        currency=request.currency,
        status="succeeded",
        charge_id=result.charge_id,
        updated_at=now,
    )


def _signals(payments: Iterable[Snapshot]) -> None:
    for payment in payments:
        send_succeeded(
            payment.account_id, payment.id, payment.invoice_id, payment.amount, payment.currency
        )
