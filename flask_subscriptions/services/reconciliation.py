"""Settling payments whose outcome is unknown, by asking the gateway — never by charging.

A payment is *unknown* after a timeout, and stays *pending* if its process died between
committing it and recording the gateway's answer. Both are looked up by their idempotency
key; a key the gateway never saw means no money moved, and the attempt counts as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, func, or_, select

from ..gateways.base import ChargeResult, ChargeStatus, DeclineKind, GatewayError
from ..models import Payment
from ..state import get_state
from .pipeline import charge_and_record, record_outcome, reserved_payment


@dataclass
class ReconcileReport:
    settled: int = 0
    still_unknown: int = 0
    #: Of ``still_unknown``, those the gateway could not be asked about (it is down): a
    #: worker tries its share again later, with backoff.
    unanswered: int = 0

    def __str__(self) -> str:
        return f"settled {self.settled}, still unknown {self.still_unknown}"


def reconcile_unknown_payments(limit: int = 200) -> ReconcileReport:
    """Settle every open payment whose outcome we do not know, ``limit`` at a time.

    All of them, not the first ``limit``: renewal claims no license while one of its
    payments is open (terms are charged in their order, R-REN-2), so a payment left for a
    later run holds its license's next term back, and its decline reaches dunning late.
    Batches go in id order, so a payment that stays unknown is not read twice in a run.
    """
    state = get_state()
    stale = state.now() - timedelta(seconds=state.settings.claim_lease_seconds)
    report = ReconcileReport()
    after = 0
    while candidates := _open_after(after, stale, limit):
        _settle_all(candidates, report)
        after = candidates[-1].id
    return report


def count_open() -> int:
    """Charges whose outcome is not recorded yet (in flight, or left by a dead worker): a
    run fanned out to workers is not over while there are any."""
    session = get_state().session
    count = session.scalar(
        select(func.count())
        .select_from(Payment)
        .where(Payment.purpose == "charge", Payment.status.in_(("pending", "unknown")))
    )
    session.commit()
    return count or 0


def open_payment_ids() -> list[int]:
    """Every payment :func:`reconcile_unknown_payments` would settle now, in id order: a
    dispatcher splits them into one task per batch."""
    state = get_state()
    stale = state.now() - timedelta(seconds=state.settings.claim_lease_seconds)
    ids: list[int] = []
    while candidates := _open_after(ids[-1] if ids else 0, stale, 1000):
        ids += [row.id for row in candidates]
    return ids


def reconcile_payments(payment_ids: Sequence[int]) -> ReconcileReport:
    """Settle these payments (one task's share), each as the job would: one still open
    when it is read is asked about; one settled meanwhile is left alone."""
    state = get_state()
    stale = state.now() - timedelta(seconds=state.settings.claim_lease_seconds)
    report = ReconcileReport()
    wanted = set(payment_ids)
    after = min(wanted, default=1) - 1
    while candidates := _open_after(after, stale, 200, among=wanted):
        _settle_all(candidates, report)
        after = candidates[-1].id
    return report


def _settle_all(candidates: Sequence[Row[int, str, str]], report: ReconcileReport) -> None:
    for payment_id, key, status in candidates:
        settled = _settle(payment_id, key, status)
        if settled:
            report.settled += 1
        else:
            report.still_unknown += 1
            report.unanswered += settled is None


def _open_after(
    after: int, stale: datetime, limit: int, among: set[int] | None = None
) -> Sequence[Row[int, str, str]]:
    """The next ``limit`` payments to settle after id ``after``: unknown or waiting for the
    card holder, or pending past the claim lease (their process died)."""
    session = get_state().session
    candidates = session.execute(
        select(Payment.id, Payment.idempotency_key, Payment.status)
        .where(
            Payment.purpose == "charge",
            Payment.id > after,
            or_(
                Payment.status.in_(("unknown", "requires_action")),
                (Payment.status == "pending") & (Payment.updated_at < stale),
            ),
            *([] if among is None else [Payment.id.in_(sorted(among))]),
        )
        .order_by(Payment.id)
        .limit(limit)
    ).all()
    session.commit()
    return candidates


def reconcile_payment(payment_id: int) -> bool:
    """Settle one payment now (the person is back from 3-D Secure, or refreshed the page)."""
    payment = get_state().session.get(Payment, payment_id)
    if payment is None:
        return False
    settled = _settle(payment.id, payment.idempotency_key, payment.status, missing_is_failure=False)
    return bool(settled)


def _settle(
    payment_id: int, key: str, status: str, *, missing_is_failure: bool = True
) -> bool | None:
    """Whether the payment is settled now; None when the gateway could not be asked."""
    get_state().session.commit()  # nothing is held open while the gateway answers
    try:
        result = get_state().require_gateway().lookup_charge(key)
    except GatewayError:
        return None
    if result is None:
        if not missing_is_failure:
            return False
        if status == "pending" and _charge_again(payment_id):
            return True
        result = ChargeResult(
            status=ChargeStatus.DECLINED,
            decline_kind=DeclineKind.SOFT,
            decline_code="not_charged",
            message="The payment was not completed. Nothing was charged.",
        )
    if result.status is ChargeStatus.UNKNOWN or result.status.value == status:
        return False
    return record_outcome(payment_id, result)


def _charge_again(payment_id: int) -> bool:
    """The gateway never saw this pending charge: send it now, with the same key, if the
    invoice's kind wants that. A second worker doing the same is answered by the gateway's
    record of the key, so the money still moves once.

    True also when another worker settled it first (its charge landed after our lookup):
    the pipeline records an answer once, so this run neither fails (every worker runs the
    job at once, R-REN-2) nor records "not charged" over an outcome that is already there."""
    reserved = reserved_payment(payment_id)
    if reserved is None or not get_state().outcomes[reserved.kind].charge_when_never_sent:
        get_state().session.commit()
        return False
    charge_and_record([reserved])
    return True
