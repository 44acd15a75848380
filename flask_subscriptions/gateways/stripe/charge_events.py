"""Stripe's events about money after a charge: refunds and disputes (``events.py`` routes).

- ``charge.refunded`` / ``charge.refund.updated``: the PaymentIntent's refunds *as Stripe
  has them now* are listed and each one made outside this app (in the dashboard, say) is
  recorded, or its status moved, by ``services.refund_records``. Refunds this adapter made
  itself (a withdrawal paid back as a refund) carry our idempotency key and are skipped:
  they are recorded where they were made.
- ``charge.dispute.created`` / ``charge.dispute.closed``: the signed event's dispute
  marks the charge (``services.disputes``), which keeps the states in order.

A charge of ours is a PaymentIntent (its id is our ``charge_id``); a Charge or a Dispute
names it directly, or through its Charge, which is then asked of Stripe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import stripe

from ...services.disputes import record_dispute
from ...services.refund_records import RefundStatus, charge_payment_id, record_refund
from .mapping import transport

if TYPE_CHECKING:
    from .gateway import StripeGateway

__all__ = ["dispute", "refunds"]

_REFUND_STATUSES: dict[str, RefundStatus] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}


def refunds(gateway: StripeGateway, obj: dict[str, Any]) -> str:
    """``obj`` is a Charge (``charge.refunded``) or a Refund (``charge.refund.updated``)."""
    intent_id = _intent_of(gateway, obj)
    if intent_id is None or charge_payment_id(gateway.name, intent_id) is None:
        return "ignored"
    with transport(moves_money=False):
        listed = gateway.client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
    outcomes = [
        record_refund(
            gateway.name,
            intent_id,
            str(refund.id),
            int(refund.amount),
            str(refund.currency),
            _REFUND_STATUSES.get(str(refund.status), "pending"),
        )
        for refund in listed.data
        if not _made_by_us(gateway, refund.to_dict())
    ]
    changed = [o for o in outcomes if o not in ("unchanged", "ignored")]
    return ", ".join(changed) if changed else "unchanged"


def dispute(gateway: StripeGateway, obj: dict[str, Any]) -> str:
    """``obj`` is a Dispute; its status is the state to record."""
    intent_id = _intent_of(gateway, obj)
    if intent_id is None:
        return "ignored"
    return record_dispute(gateway.name, intent_id, str(obj["id"]), str(obj.get("status") or ""))


def _made_by_us(gateway: StripeGateway, refund: dict[str, Any]) -> bool:
    key = (refund.get("metadata") or {}).get("idempotency_key")
    return bool(key) and gateway.ledger.get(str(key)) is not None


def _intent_of(gateway: StripeGateway, obj: dict[str, Any]) -> str | None:
    intent = obj.get("payment_intent")
    if intent:
        return str(intent if isinstance(intent, str) else intent["id"])
    charge_id = obj.get("charge") if obj.get("object") != "charge" else obj.get("id")
    if not charge_id:
        return None
    try:
        with transport(moves_money=False):
            charge = gateway.client.v1.charges.retrieve(str(charge_id))
    except stripe.InvalidRequestError:
        return None  # no such charge at Stripe: not ours
    return str(charge.payment_intent) if charge.payment_intent else None
