"""Stripe's webhook events, each handled once by its id, in any order, any number of times.

Our tables stay the source of truth, and an event is only a hint that something changed:

- ``payment_intent.*``: the payment whose idempotency key is in the PaymentIntent's
  metadata (and whose PaymentIntent it is, by our ``subs_stripe_requests`` row) gets the
  outcome of the PaymentIntent *as it stands now*, asked of Stripe, through
  ``record_outcome``. An old event delivered late therefore cannot undo a newer state,
  and ``record_outcome`` only moves a payment that is still open, once.
- ``payment_method.detached``: our card with that token is marked removed, and another
  usable card becomes the default, as when the owner removes it here.
- ``charge.refunded``, ``charge.refund.updated``, ``charge.dispute.created`` and
  ``charge.dispute.closed``: a refund made outside this app is recorded once in our own
  refund rows, a dispute marks our charge (``charge_events.py``).
- anything else is acknowledged and ignored.

An event is remembered in ``subs_processed_events`` once handled; a delivery of an event
already remembered does nothing. If Stripe cannot be asked, the event is not remembered
and the caller answers 503, so Stripe delivers it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from ...models import BillingProfile, Payment, PaymentMethod, ProcessedEvent
from ...services import _tx
from ...services._sql import updated
from ...services.payment_methods import usable_methods
from ...services.pipeline import record_outcome
from ...signals import payment_method_removed
from ...state import get_state
from ..base import ChargeStatus
from . import charge_events

if TYPE_CHECKING:
    from .gateway import StripeGateway

__all__ = ["handle_event"]


def handle_event(gateway: StripeGateway, event: Any) -> str:
    """Handle one verified event; what came of it (for the response and the logs)."""
    session = get_state().session
    seen = session.scalar(
        select(
            exists().where(
                ProcessedEvent.gateway == gateway.name, ProcessedEvent.event_id == event.id
            )
        )
    )
    session.commit()
    if seen:
        return "duplicate"
    obj = event.to_dict()["data"]["object"]
    if event.type.startswith("payment_intent."):
        outcome = _payment_intent(gateway, str(obj["id"]), (obj.get("metadata") or {}))
    elif event.type == "payment_method.detached":
        outcome = _detached(gateway.name, str(obj["id"]))
    elif event.type in ("charge.refunded", "charge.refund.updated"):
        outcome = charge_events.refunds(gateway, obj)
    elif event.type in ("charge.dispute.created", "charge.dispute.closed"):
        outcome = charge_events.dispute(gateway, obj)
    else:
        outcome = "ignored"
    _remember(gateway.name, event)
    return outcome


def _payment_intent(gateway: StripeGateway, intent_id: str, metadata: Any) -> str:
    key = metadata.get("idempotency_key")
    if not key:
        return "ignored"  # not made by us
    session = get_state().session
    payment = session.execute(
        select(Payment.id, Payment.status).where(
            Payment.idempotency_key == key, Payment.gateway == gateway.name
        )
    ).first()
    session.commit()  # nothing of ours is held open while the ledger and Stripe answer
    sent = gateway.ledger.get(key)
    if payment is None or sent is None or sent.object_id != intent_id:
        return "ignored"  # not ours, or a PaymentIntent that lost the race for its key
    payment_id, status = payment
    result = gateway.lookup_charge(key)
    if result is None or result.status is ChargeStatus.UNKNOWN or result.status.value == status:
        return "unchanged"
    return "recorded" if record_outcome(payment_id, result) else "unchanged"


def _detached(gateway_name: str, token: str) -> str:
    state = get_state()
    session = state.session
    method = session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.gateway == gateway_name,
            PaymentMethod.token == token,
            PaymentMethod.removed_at.is_(None),
        )
    )
    if method is None:
        session.commit()
        return "unchanged"
    method_id, account_id = method.id, method.account_id
    claimed = updated(
        update(PaymentMethod)
        .where(PaymentMethod.id == method_id, PaymentMethod.removed_at.is_(None))
        .values(removed_at=state.now())
        .execution_options(synchronize_session=False)
    )
    if claimed != 1:
        _tx.rollback()
        return "unchanged"
    others = [m.id for m in usable_methods(account_id) if m.id != method_id]
    session.execute(
        update(BillingProfile)
        .where(
            BillingProfile.account_id == account_id,
            BillingProfile.default_payment_method_id == method_id,
        )
        .values(default_payment_method_id=others[0] if others else None)
    )
    _tx.after_commit(lambda: _removed_signal(account_id, method_id))
    _tx.commit()
    return "card removed"


def _remember(gateway_name: str, event: Any) -> None:
    session = get_state().session
    session.add(
        ProcessedEvent(
            gateway=gateway_name,
            event_id=str(event.id),
            event_type=str(event.type)[:100],
            received_at=get_state().now(),
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # a concurrent delivery of the same event remembered it first


def _removed_signal(account_id: str, method_id: int) -> None:
    payment_method_removed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account_id=account_id,
        payment_method_id=method_id,
    )
