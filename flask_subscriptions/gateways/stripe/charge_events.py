"""Stripe's events about money after a charge, as neutral refund and dispute events.

- ``charge.refunded`` / ``charge.refund.updated``: the PaymentIntent's refunds *as Stripe
  has them now*, one ``RefundUpdated`` each. A refund this adapter made itself (a
  withdrawal paid back as a refund) carries our idempotency key in its metadata and has a
  row in our ledger: its event says so (``idempotency_key``), so it is not recorded twice.
- ``charge.dispute.created`` / ``charge.dispute.closed``: the signed event's dispute, with
  Stripe's status mapped to a ``DisputeState``.

A charge of ours is a PaymentIntent (its id is the protocol's ``charge_id``); a Charge or
a Dispute names it directly, or through its Charge, which is then asked of Stripe.
"""

from __future__ import annotations

from typing import Any

import stripe

from ..events import DisputeState, DisputeUpdated, GatewayEvent, RefundStatus, RefundUpdated
from .context import StripeContext
from .mapping import transport

__all__ = ["dispute", "refunds"]

_REFUND_STATUSES: dict[str, RefundStatus] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}

#: Stripe's dispute statuses that are not open; every other one is (needs_response, …).
_ENDED = {
    "won": DisputeState.WON,
    "lost": DisputeState.LOST,
    "warning_closed": DisputeState.CLOSED,
    "prevented": DisputeState.CLOSED,
}


def refunds(context: StripeContext, obj: dict[str, Any]) -> tuple[GatewayEvent, ...]:
    """``obj`` is a Charge (``charge.refunded``) or a Refund (``charge.refund.updated``)."""
    intent_id = _intent_of(context, obj)
    if intent_id is None:
        return ()
    try:
        with transport(moves_money=False):
            listed = context.client.v1.refunds.list(
                params={"payment_intent": intent_id, "limit": 100}
            )
    except stripe.InvalidRequestError:
        return ()  # no such PaymentIntent at Stripe: not ours
    return tuple(
        RefundUpdated(
            charge_id=intent_id,
            refund_id=str(refund.id),
            amount=int(refund.amount),
            currency=str(refund.currency),
            status=_REFUND_STATUSES.get(str(refund.status), "pending"),
            idempotency_key=_our_key(context, refund.to_dict()),
        )
        for refund in listed.data
    )


def dispute(context: StripeContext, obj: dict[str, Any]) -> tuple[GatewayEvent, ...]:
    """``obj`` is a Dispute; its status is the state to report."""
    intent_id = _intent_of(context, obj)
    status = str(obj.get("status") or "")
    if intent_id is None or not status:
        return ()
    return (
        DisputeUpdated(
            charge_id=intent_id,
            dispute_id=str(obj["id"]),
            state=_ENDED.get(status, DisputeState.OPEN),
            amount=int(obj.get("amount") or 0),
            currency=str(obj.get("currency") or ""),
            status=status,
        ),
    )


def _our_key(context: StripeContext, refund: dict[str, Any]) -> str | None:
    """The idempotency key this adapter made the refund with, if it made it."""
    key = (refund.get("metadata") or {}).get("idempotency_key")
    return str(key) if key and context.ledger.get(str(key)) is not None else None


def _intent_of(context: StripeContext, obj: dict[str, Any]) -> str | None:
    intent = obj.get("payment_intent")
    if intent:
        return str(intent if isinstance(intent, str) else intent["id"])
    charge_id = obj.get("charge") if obj.get("object") != "charge" else obj.get("id")
    if not charge_id:
        return None
    try:
        with transport(moves_money=False):
            charge = context.client.v1.charges.retrieve(str(charge_id))
    except stripe.InvalidRequestError:
        return None  # no such charge at Stripe: not ours
    return str(charge.payment_intent) if charge.payment_intent else None
