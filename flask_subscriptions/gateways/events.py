"""What a payment service tells us on its own (webhooks), in terms of no service at all.

A gateway turns the service's notification into a :class:`GatewayNotice` holding these
events and hands it to ``get_state().apply_gateway_event`` (``init_app`` registers the
function that applies them). The gateway never decides what an event means for our
billing: which payment it is, whether an invoice is paid, which card becomes the default.
It only says what happened at the service, by the service's ids and ours.

Every event may arrive late, twice, or out of order, and the applying side copes: a charge
event should carry the charge *as the service has it now* (ask the service when the
notification is only a hint), so a stale delivery cannot undo a newer state.

Plain frozen dataclasses: no Flask, no SQLAlchemy, nothing of the rest of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from .base import ChargeResult

__all__ = [
    "CardDetached",
    "ChargeUpdated",
    "DisputeState",
    "DisputeUpdated",
    "EventSink",
    "GatewayEvent",
    "GatewayNotice",
    "RefundStatus",
    "RefundUpdated",
]

#: A refund the service reports may still be on its way (``pending``).
RefundStatus = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True)
class ChargeUpdated:
    """A charge of ours reached ``result.status`` (succeeded, declined, requires_action).

    The payment is found by ``idempotency_key`` (the key we charged with, when the service
    echoes it back) or else by ``result.charge_id``. An ``UNKNOWN`` result changes nothing.
    """

    result: ChargeResult
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RefundUpdated:
    """A refund of the charge ``charge_id``, made at the service or through us.

    ``idempotency_key`` is set only when the refund was made through
    :meth:`Gateway.refund` or :meth:`Gateway.payout` with that key (the gateway knows it
    from its own records, not from anything a dashboard user could type): such a refund
    was recorded by whoever asked for it, and is not recorded again.
    """

    charge_id: str
    refund_id: str
    amount: int
    currency: str
    status: RefundStatus
    idempotency_key: str | None = None


class DisputeState(StrEnum):
    """Where a dispute (chargeback) stands, in words every service can be mapped to."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"
    #: Ended with neither outcome: an inquiry that closed, a chargeback prevented.
    CLOSED = "closed"


@dataclass(frozen=True)
class DisputeUpdated:
    """The card holder's bank disputes the charge ``charge_id``.

    ``status`` is the service's own word for an open dispute (Stripe's
    ``needs_response``), shown to people and handed to the host's signal handlers; it
    says what to do next, which ``DisputeState.OPEN`` alone does not.
    """

    charge_id: str
    dispute_id: str
    state: DisputeState
    amount: int
    currency: str
    status: str | None = None


@dataclass(frozen=True)
class CardDetached:
    """The card ``token`` can no longer be charged (removed at the service)."""

    token: str


GatewayEvent = ChargeUpdated | RefundUpdated | DisputeUpdated | CardDetached


@dataclass(frozen=True)
class GatewayNotice:
    """One notification from the service (a webhook delivery), and what it says.

    ``notice_id`` is the service's id for the notification: a notice already applied is
    not applied again, however often it is delivered. ``kind`` is the service's name for
    it, for the log. A notice about nothing of ours carries no events.
    """

    gateway: str
    notice_id: str
    kind: str
    events: tuple[GatewayEvent, ...] = ()


#: Applies a notice and says what came of it (``"recorded"``, ``"duplicate"``, …), for the
#: webhook's answer and the logs.
EventSink = Callable[[GatewayNotice], str]
