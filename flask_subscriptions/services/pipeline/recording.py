"""Step 3: record gateway answers once, and what they mean, in one transaction; and the
steps after a commit for payments already written (a lookup, a webhook, a retry)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import CursorResult

from ...gateways.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
)
from ...models import BillingProfile, Invoice, Payment, PaymentMethod
from ...signals import payment_failed, payment_succeeded
from ...state import get_state
from .. import _tx
from .._sql import among
from .charging import charge
from .drafts import INVOICES, OPEN_STATUSES, PAYMENTS, Handler, Outcomes, Reserved, outcomes_for


@dataclass
class Recorded:
    """Which of the answers this call recorded, by outcome."""

    succeeded: list[Reserved] = field(default_factory=list)
    declined: list[Reserved] = field(default_factory=list)
    waiting: list[Reserved] = field(default_factory=list)  # unknown, or 3-D Secure

    def __len__(self) -> int:
        return len(self.succeeded) + len(self.declined) + len(self.waiting)


def record(
    answers: Sequence[tuple[Reserved, ChargeResult]],
    before_commit: Callable[[], None] | None = None,
) -> Recorded:
    """Record gateway answers once, and what they mean for each invoice, in one transaction.

    Of several reporters (two workers, a webhook and a lookup) exactly one moves a payment:
    the others' answers for it are left out of what this returns. ``before_commit`` runs
    in the same transaction (a batch gives its claims back there).
    """
    state = get_state()
    now = state.now()
    moved = _move(answers, now)
    mine = [(r, result) for r, result in answers if r.payment_id in moved]
    done = Recorded()
    for r, result in mine:
        if result.status is ChargeStatus.SUCCEEDED:
            done.succeeded.append(r)
        elif result.status is ChargeStatus.DECLINED:
            done.declined.append(r)
        else:
            done.waiting.append(r)
    signals = [(r, result) for r, result in mine if r.request is not None]
    _tx.after_commit(lambda: _send_signals(signals))  # the payment's, then its outcome's
    if done.succeeded:
        state.session.execute(
            update(INVOICES)
            .where(among(INVOICES.c.id, [r.invoice_id for r in done.succeeded]))
            .values(status="paid", paid_at=now)
        )
    _dispatch(done.succeeded, lambda o: o.paid)
    _dispatch(done.declined, lambda o: o.failed)
    _dispatch(
        [r for r, result in mine if result.status is ChargeStatus.REQUIRES_ACTION],
        lambda o: o.action_required,
    )
    if before_commit is not None:
        before_commit()
    _tx.commit()
    return done


def _dispatch(reserved: list[Reserved], pick: Callable[[Outcomes], Handler | None]) -> None:
    for kind in dict.fromkeys(r.kind for r in reserved):
        handler = pick(outcomes_for(kind))
        if handler is not None:
            handler([r for r in reserved if r.kind == kind])


def _move(answers: Sequence[tuple[Reserved, ChargeResult]], now: datetime) -> set[int]:
    """Move each payment still open to its answer's state; the ids this call moved.

    One executemany when every row moves (the rule); when some had already moved (another
    reporter got there first), each is asked again on its own to tell which are ours.
    """
    session = get_state().session
    rows = [_moved_values(r, result) for r, result in answers if r.payment_id is not None]
    if not rows:
        return set()
    p = PAYMENTS.c
    statement = (
        update(PAYMENTS)
        # (an IN list expands per execution, which executemany does not allow)
        .where(
            p.id == bindparam("b_id"),
            or_(*(p.status == status for status in OPEN_STATUSES)),
            p.status != bindparam("b_status"),
        )
        .values(
            status=bindparam("b_status"),
            charge_id=func.coalesce(bindparam("b_charge"), p.charge_id),
            decline_kind=bindparam("b_decline_kind"),
            decline_code=bindparam("b_decline_code"),
            message=bindparam("b_message"),
            action_url=bindparam("b_action_url"),
            updated_at=now,
        )
    )
    if len(rows) == 1 or session.get_bind().dialect.supports_sane_multi_rowcount:
        result = cast(CursorResult[Any], session.execute(statement, rows))
        if result.rowcount == len(rows):
            return {row["b_id"] for row in rows}
        if len(rows) == 1:
            _tx.rollback()
            return set()
        _tx.rollback()
    moved = set()
    for row in rows:
        if cast(CursorResult[Any], session.execute(statement, row)).rowcount == 1:
            moved.add(row["b_id"])
    return moved


def _moved_values(r: Reserved, result: ChargeResult) -> dict[str, Any]:
    return {
        "b_id": r.payment_id,
        "b_status": result.status.value,
        "b_charge": result.charge_id,
        "b_decline_kind": result.decline_kind.value if result.decline_kind else None,
        "b_decline_code": result.decline_code,
        "b_message": result.message,
        "b_action_url": result.action_url,
    }


def _send_signals(recorded: list[tuple[Reserved, ChargeResult]]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for r, result in recorded:
        assert r.request is not None
        if result.status is ChargeStatus.SUCCEEDED:
            payment_succeeded.send(
                app,
                account_id=r.account_id,
                payment_id=r.payment_id,
                invoice_id=r.invoice_id,
                amount=r.request.amount,
                currency=r.request.currency,
            )
        elif result.status is ChargeStatus.DECLINED:
            payment_failed.send(
                app,
                account_id=r.account_id,
                payment_id=r.payment_id,
                invoice_id=r.invoice_id,
                decline_kind=result.decline_kind.value if result.decline_kind else None,
                message=result.message,
            )


def charge_and_record(
    reserved: Sequence[Reserved], pool: ThreadPoolExecutor | None = None
) -> Recorded:
    """Steps 2 and 3 for reserved payments the caller has committed."""
    to_charge = [r for r in reserved if r.request is not None]
    get_state().session.commit()  # no transaction, lock or connection is held meanwhile
    results = charge([r.request for r in to_charge if r.request is not None], pool)
    return record(list(zip(to_charge, results, strict=True)))


def reserved_payment(payment_id: int) -> Reserved | None:
    """A payment already written, as :func:`reserve` returned it (for a lookup, a
    webhook, or a charge its process never sent), with the request that charges it."""
    p, i, m = Payment, Invoice, PaymentMethod
    row = (
        get_state()
        .session.execute(
            select(
                p.id,
                p.idempotency_key,
                p.account_id,
                p.amount,
                p.currency,
                i.id.label("invoice_id"),
                i.number,
                i.kind,
                m.token,
                BillingProfile.gateway_customer,
            )
            .join(i, i.id == p.invoice_id)
            .outerjoin(m, m.id == p.payment_method_id)
            .outerjoin(BillingProfile, BillingProfile.account_id == p.account_id)
            .where(p.id == payment_id)
        )
        .first()
    )
    if row is None:
        return None
    request = ChargeRequest(
        customer=row.gateway_customer or "",
        payment_method=row.token or "",
        amount=row.amount,
        currency=row.currency,
        idempotency_key=row.idempotency_key,
        description=f"{row.kind.capitalize()} {row.number}",
    )
    return Reserved(row.invoice_id, row.number, row.kind, row.account_id, row.id, request)


def record_outcome(payment_id: int, result: ChargeResult) -> bool:
    """Record one gateway answer (a webhook, a lookup); False when it was recorded before."""
    reserved = reserved_payment(payment_id)
    if reserved is None:
        return False
    return len(record([(reserved, result)])) == 1
