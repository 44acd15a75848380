"""Stripe's signed webhook events, read as the gateway-neutral events of ``gateways.events``.

Stripe's event is only a hint that something changed; what it carries is read from Stripe
*as it stands now*, so an old event delivered late cannot undo a newer state:

- ``payment_intent.*``: the PaymentIntent this adapter made for the idempotency key in its
  metadata (by our ``subs_stripe_requests`` row) becomes a ``ChargeUpdated`` with the
  PaymentIntent's current outcome. One we did not make, or one that lost the race for its
  key, says nothing.
- ``payment_method.detached``: a ``CardDetached`` with the card's token.
- ``charge.refunded``, ``charge.refund.updated``, ``charge.dispute.created`` and
  ``charge.dispute.closed``: ``RefundUpdated`` and ``DisputeUpdated`` (``charge_events.py``).
- anything else: a notice with no events.

What the events mean for our billing (which payment, which invoice, which card becomes the
default, whether the event was seen before) is decided by the function the extension
registered as ``apply_gateway_event``. If Stripe cannot be asked, ``GatewayError`` is
raised before anything is handed over, and the webhook answers 503: Stripe sends it again.
"""

from __future__ import annotations

from typing import Any

from ..events import CardDetached, ChargeUpdated, GatewayEvent, GatewayNotice
from . import charge_events, links
from .context import StripeContext
from .mapping import charge_result, transport

__all__ = ["read_event"]


def read_event(context: StripeContext, event: Any) -> GatewayNotice:
    """The notice of one verified event (``stripe.Event``)."""
    obj = event.to_dict()["data"]["object"]
    kind = str(event.type)
    events: tuple[GatewayEvent, ...] = ()
    if kind.startswith("payment_intent."):
        events = _payment_intent(context, str(obj["id"]), obj.get("metadata") or {})
    elif kind == "payment_method.detached":
        events = (CardDetached(token=str(obj["id"])),)
    elif kind in ("charge.refunded", "charge.refund.updated"):
        events = charge_events.refunds(context, obj)
    elif kind in ("charge.dispute.created", "charge.dispute.closed"):
        events = charge_events.dispute(context, obj)
    return GatewayNotice(
        gateway=context.gateway.name, notice_id=str(event.id), kind=kind, events=events
    )


def _payment_intent(
    context: StripeContext, intent_id: str, metadata: dict[str, Any]
) -> tuple[GatewayEvent, ...]:
    key = metadata.get("idempotency_key")
    sent = context.ledger.get(str(key)) if key else None
    if sent is None or sent.kind != "charge" or sent.object_id != intent_id:
        return ()  # not made by us, or a PaymentIntent that lost the race for its key
    with transport(moves_money=False):
        intent = context.client.v1.payment_intents.retrieve(intent_id)
    result = charge_result(intent.to_dict(), links.action_url)
    if result is None:
        return ()  # never confirmed: no charge yet
    return (ChargeUpdated(result=result, idempotency_key=str(key)),)
