"""Refunds made at the payment service, outside this app (its dashboard, its support).

Our tables stay the source of truth: such a refund becomes one row of ours, a ``Payment``
with ``purpose='refund'`` pointing at the charge it refunds (``refund_of_id``), keyed by
``refund:<gateway>:<the service's refund id>`` so that however often, and in whatever
order, the service reports it, it is recorded once. A later report of the same refund only
moves its status (pending → succeeded or failed). Gateways report through
``record_refund``; none of this knows which gateway it is.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.exc import IntegrityError

from ..gateways.events import RefundStatus
from ..models import Payment
from ..signals import payment_refunded
from ..state import get_state
from . import _tx
from ._sql import updated

__all__ = ["RefundStatus", "charge_payment_id", "our_charge", "record_refund"]


def our_charge(gateway: str, charge_id: str) -> ColumnElement[bool]:
    """Which payment row is our charge that the service knows as ``charge_id``."""
    return and_(
        Payment.gateway == gateway, Payment.charge_id == charge_id, Payment.purpose == "charge"
    )


def charge_payment_id(gateway: str, charge_id: str) -> int | None:
    """Our succeeded charge with the service's id ``charge_id``, if it is ours."""
    session = get_state().session
    found = session.scalar(
        select(Payment.id).where(our_charge(gateway, charge_id), Payment.status == "succeeded")
    )
    session.commit()
    return found


def record_refund(
    gateway: str, charge_id: str, refund_id: str, amount: int, currency: str, status: RefundStatus
) -> str:
    """Record the refund once, or move its status; what came of it (for the webhook log)."""
    state = get_state()
    session = state.session
    charge = session.scalar(select(Payment).where(our_charge(gateway, charge_id)))
    if (
        charge is None
        or charge.status != "succeeded"
        or amount <= 0
        or currency.upper() != charge.currency  # not a refund of this charge as we know it
    ):
        session.commit()
        return "ignored"
    key = f"refund:{gateway}:{refund_id}"
    if session.scalar(select(Payment.id).where(Payment.idempotency_key == key)) is not None:
        return _move(key, status)
    now = state.now()
    refund = Payment(
        idempotency_key=key,
        account_id=charge.account_id,
        refund_of_id=charge.id,
        purpose="refund",
        attempt=1,
        gateway=gateway,
        payment_method_id=charge.payment_method_id,
        amount=amount,
        currency=charge.currency,
        status=status,
        charge_id=refund_id,
        message="Refunded at the payment service.",
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    try:
        session.flush()
    except IntegrityError:  # a concurrent delivery recorded it first
        _tx.rollback()
        return _move(key, status)
    if status == "succeeded":
        _after_commit_signal(refund)
    _tx.commit()
    return "refund recorded"


def _move(key: str, status: RefundStatus) -> str:
    """A refund already recorded: only a pending one, or a succeeded one that failed, moves."""
    state = get_state()
    moved = updated(
        update(Payment)
        .where(
            Payment.idempotency_key == key,
            Payment.status != status,
            Payment.status.in_(("pending", "succeeded") if status == "failed" else ("pending",)),
        )
        .values(status=status, updated_at=state.now())
        .execution_options(synchronize_session=False)
    )
    if moved != 1:
        _tx.rollback()
        return "unchanged"
    if status == "succeeded":
        refund = state.session.scalars(
            select(Payment)
            .where(Payment.idempotency_key == key)
            .execution_options(populate_existing=True)
        ).one()
        _after_commit_signal(refund)
    _tx.commit()
    return "refund updated"


def _after_commit_signal(refund: Payment) -> None:
    values = (refund.account_id, refund.refund_of_id, refund.id, refund.amount, refund.currency)

    def send() -> None:
        account_id, charge_id, refund_id, amount, currency = values
        payment_refunded.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            account_id=account_id,
            payment_id=charge_id,
            refund_id=refund_id,
            amount=amount,
            currency=currency,
        )

    _tx.after_commit(send)
