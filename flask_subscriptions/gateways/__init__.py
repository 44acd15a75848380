"""Payment gateways: the protocol, the built-in sandbox, and (as an extra) Stripe."""

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

__all__ = [
    "CardSetup",
    "CardSetupFailed",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "DeclineKind",
    "Gateway",
    "GatewayError",
    "GatewayTimeout",
    "GatewayUnavailable",
    "IdempotencyKeyReused",
    "PaymentMethodInfo",
    "PayoutResult",
    "RefundResult",
    "TransferStatus",
]
