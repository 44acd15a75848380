"""What a payment service told us, applied through the services that own each rule.

A gateway hands a :class:`~flask_subscriptions.gateways.events.GatewayNotice` to
``get_state().apply_gateway_event``, which ``init_app`` sets to :func:`apply_gateway_event`.
The gateway knows none of our tables; this module knows no gateway:

- ``ChargeUpdated``: the payment with that idempotency key (or charge id) gets the outcome
  through ``payments.record_outcome``, which moves an open payment once.
- ``RefundUpdated``: a refund made at the service is recorded once (``refund_records``).
- ``DisputeUpdated``: the charge is marked disputed (``disputes``).
- ``CardDetached``: the card is forgotten as if its owner removed it (``payment_methods``).

A notice is remembered in ``subs_processed_events`` by its id once applied; a delivery of a
notice already remembered does nothing. One that fails half way is not remembered, so the
service delivers it again and each event, idempotent on its own, is applied again.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import IntegrityError

from ..gateways.base import ChargeStatus
from ..gateways.events import (
    CardDetached,
    ChargeUpdated,
    DisputeUpdated,
    GatewayEvent,
    GatewayNotice,
    RefundUpdated,
)
from ..models import Payment, ProcessedEvent
from ..state import get_state
from .disputes import record_dispute
from .payment_methods import forget_detached
from .pipeline import record_outcome
from .refund_records import charge_payment_id, our_charge, record_refund

__all__ = ["apply_gateway_event"]

_NOTHING_NEW = ("unchanged", "ignored")


def apply_gateway_event(notice: GatewayNotice) -> str:
    """Apply the notice once; what came of it (the webhook's answer, for the logs)."""
    if _seen(notice):
        return "duplicate"
    outcomes = [_apply(notice.gateway, event) for event in notice.events]
    _remember(notice)
    return _summary(outcomes)


def _apply(gateway: str, event: GatewayEvent) -> str:
    match event:
        case ChargeUpdated():
            return _charge(gateway, event)
        case RefundUpdated():
            return _refund(gateway, event)
        case DisputeUpdated():
            return record_dispute(
                gateway, event.charge_id, event.dispute_id, event.state, event.status
            )
        case CardDetached():
            return "card removed" if forget_detached(gateway, event.token) else "unchanged"


def _charge(gateway: str, event: ChargeUpdated) -> str:
    result = event.result
    session = get_state().session
    mine: ColumnElement[bool]
    if event.idempotency_key is not None:
        mine = (Payment.gateway == gateway) & (Payment.idempotency_key == event.idempotency_key)
    elif result.charge_id is not None:
        mine = our_charge(gateway, result.charge_id)
    else:
        return "ignored"
    found = session.execute(
        select(Payment.id, Payment.status, Payment.charge_id).where(
            mine, Payment.purpose == "charge"
        )
    ).first()
    session.commit()  # nothing of ours is held open while record_outcome claims the row
    if found is None:
        return "ignored"
    if found.charge_id and result.charge_id and found.charge_id != result.charge_id:
        return "ignored"  # another charge than the one this payment made
    if result.status is ChargeStatus.UNKNOWN or result.status.value == found.status:
        return "unchanged"
    return "recorded" if record_outcome(found.id, result) else "unchanged"


def _refund(gateway: str, event: RefundUpdated) -> str:
    if event.idempotency_key is not None:
        # Made through the gateway by one of our services, which recorded it already.
        return "unchanged" if charge_payment_id(gateway, event.charge_id) else "ignored"
    return record_refund(
        gateway, event.charge_id, event.refund_id, event.amount, event.currency, event.status
    )


def _summary(outcomes: list[str]) -> str:
    changed = [outcome for outcome in outcomes if outcome not in _NOTHING_NEW]
    if changed:
        return ", ".join(changed)
    return "unchanged" if "unchanged" in outcomes else "ignored"


def _seen(notice: GatewayNotice) -> bool:
    session = get_state().session
    seen = session.scalar(
        select(
            exists().where(
                ProcessedEvent.gateway == notice.gateway,
                ProcessedEvent.event_id == notice.notice_id,
            )
        )
    )
    session.commit()
    return bool(seen)


def _remember(notice: GatewayNotice) -> None:
    state = get_state()
    session = state.session
    session.add(
        ProcessedEvent(
            gateway=notice.gateway,
            event_id=notice.notice_id,
            event_type=notice.kind[:100],
            received_at=state.now(),
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # a concurrent delivery of the same notice remembered it first
