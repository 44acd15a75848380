"""Disputes (chargebacks): a card holder asked their bank to take back a charge of ours.

The charge's row is marked (``disputed_at``, ``dispute_status``), the account's owners are
told by e-mail (with the support address, if set), and the ``payment_disputed`` signal lets
the host act (suspend, investigate). The payment service tells the merchant itself, and its
evidence is submitted there; we keep no mirror of the dispute.

Reports may come in any order and more than once: an opening marks the charge only if no
report marked it before, and a final state (won, lost, closed) is never replaced, so a late
"opened" cannot reopen a closed dispute. ``dispute_status`` holds the service's own word
while the dispute is open (it says what to do next: ``needs_response``), and our
``won`` / ``lost`` / ``closed`` once it has ended, so an ended dispute is recognised
whichever service reported it.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import or_, select, update

from ..gateways.events import DisputeState
from ..models import Invoice, Payment
from ..notifications import enqueue
from ..signals import payment_disputed
from ..state import get_state
from . import _tx
from ._sql import updated
from .refund_records import our_charge

__all__ = ["FINAL_STATUSES", "record_dispute"]

#: Dispute states after which nothing more happens (the last two: Stripe's words, in rows
#: written before disputes were reported in every service's terms).
FINAL_STATUSES = ("won", "lost", "closed", "warning_closed", "prevented")


def record_dispute(
    gateway: str, charge_id: str, dispute_id: str, state: DisputeState, status: str | None = None
) -> str:
    """Mark our charge ``charge_id`` as disputed, in ``state`` (``status``: the service's
    word for an open dispute); what came of it."""
    final = state is not DisputeState.OPEN
    status = state.value if final or not status else status
    return _record(gateway, charge_id, dispute_id, status, final)


def _record(gateway: str, charge_id: str, dispute_id: str, status: str, final: bool) -> str:
    state = get_state()
    session = state.session
    payment_id = session.scalar(select(Payment.id).where(our_charge(gateway, charge_id)))
    if payment_id is None:
        session.commit()
        return "ignored"
    opened = Payment.disputed_at.is_(None)
    not_final = or_(Payment.dispute_status.is_(None), Payment.dispute_status.not_in(FINAL_STATUSES))
    moved = updated(
        update(Payment)
        .where(Payment.id == payment_id, not_final if final else opened)
        .values(
            dispute_status=status[:32],
            disputed_at=state.now() if not final else Payment.disputed_at,
        )
        .execution_options(synchronize_session=False)
    )
    if moved != 1:
        _tx.rollback()
        return "unchanged"
    payment = session.scalars(
        select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    ).one()
    if payment.disputed_at is None:  # closed before its opening was reported
        payment.disputed_at = state.now()
    _mail_owners(payment, dispute_id)
    account_id = payment.account_id
    _tx.after_commit(lambda: _signal(account_id, payment_id, status))
    _tx.commit()
    return "dispute recorded"


def _mail_owners(payment: Payment, dispute_id: str) -> None:
    """Once per dispute, when it is first reported (opened, or already closed)."""

    state = get_state()
    account = state.load_account(payment.account_id)
    if account is None:
        return
    invoice = state.session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    enqueue(
        "payment_disputed",
        account,
        {"payment": payment, "invoice": invoice, "today": state.today()},
        dedupe_key=f"payment_disputed:{payment.gateway}:{dispute_id}"[:200],
    )


def _signal(account_id: str, payment_id: int, status: str) -> None:
    payment_disputed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account_id=account_id,
        payment_id=payment_id,
        status=status,
    )
