"""Payment gateways: the protocol, the events a service reports, the built-in sandbox, and
(as an extra) Stripe. A gateway imports from here, never from the services above it."""

from __future__ import annotations

from .base import (
    CardSetup,
    CardSetupFailed,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    Gateway,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
    PaymentMethodInfo,
    PayoutResult,
    RefundResult,
    TransferStatus,
)
from .events import (
    CardDetached,
    ChargeUpdated,
    DisputeState,
    DisputeUpdated,
    EventSink,
    GatewayEvent,
    GatewayNotice,
    RefundUpdated,
)

__all__ = [
    "CardDetached",
    "CardSetup",
    "CardSetupFailed",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "ChargeUpdated",
    "DeclineKind",
    "DisputeState",
    "DisputeUpdated",
    "EventSink",
    "Gateway",
    "GatewayError",
    "GatewayEvent",
    "GatewayNotice",
    "GatewayTimeout",
    "GatewayUnavailable",
    "IdempotencyKeyReused",
    "PaymentMethodInfo",
    "PayoutResult",
    "RefundResult",
    "RefundUpdated",
    "TransferStatus",
]
