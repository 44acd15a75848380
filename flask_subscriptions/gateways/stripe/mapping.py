"""How Stripe's answers become the protocol's: PaymentIntent statuses, declines, errors.

Declines are hard unless Stripe's decline code says a later retry of the same card may
succeed (``SOFT_DECLINES``): dunning retries a soft decline during the grace period and
asks for another card after a hard one. An unknown code counts as hard, so a card that
will not work is not retried day after day.

``authentication_required`` is not a decline: Stripe answers it to an off-session charge
the bank wants the card holder to approve (3-D Secure). The PaymentIntent stays open and
the person completes it on our authentication page, so it maps to ``REQUIRES_ACTION``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
import stripe
import urllib3

from ..base import (
    ACTION_REQUIRED_MESSAGE,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
)

__all__ = [
    "AUTHENTICATION_REQUIRED",
    "SOFT_DECLINES",
    "card_error_result",
    "charge_result",
    "decline",
    "error_of",
    "reached_stripe",
    "transport",
]

AUTHENTICATION_REQUIRED = "authentication_required"

#: Stripe decline codes after which retrying the same card later may succeed.
SOFT_DECLINES = frozenset(
    {
        "insufficient_funds",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "processing_error",
        "try_again_later",
        "issuer_not_available",
        "reenter_transaction",
        "approve_with_id",
    }
)

_DEFAULT_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "payment_intent_authentication_failure": "The payment was not authenticated.",
    "canceled": "The payment was canceled.",
}

ActionUrl = Callable[[str], str]


def charge_result(intent: Mapping[str, Any], action_url: ActionUrl) -> ChargeResult | None:
    """The protocol's view of a PaymentIntent; None if it was never confirmed (no charge)."""
    status, intent_id = intent.get("status"), str(intent["id"])
    if status == "succeeded":
        return ChargeResult(status=ChargeStatus.SUCCEEDED, charge_id=intent_id)
    if status == "requires_confirmation":
        return None
    if status == "requires_action":
        return _action(intent_id, action_url)
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        if _code(error) == AUTHENTICATION_REQUIRED:
            return _action(intent_id, action_url)
        return decline(error, intent_id)
    if status == "canceled":
        return decline({"code": "canceled"}, intent_id)
    # processing, requires_capture: the money is on its way but not settled yet.
    return ChargeResult(
        status=ChargeStatus.UNKNOWN,
        charge_id=intent_id,
        message="The payment is being processed; we will confirm it shortly.",
    )


def decline(error: Mapping[str, Any], intent_id: str | None) -> ChargeResult:
    """A decline from Stripe's error object (``last_payment_error`` or an API error)."""
    code = _code(error) or "card_declined"
    kind = DeclineKind.SOFT if code in SOFT_DECLINES else DeclineKind.HARD
    message = error.get("message") or _DEFAULT_MESSAGES.get(code, "Your card was declined.")
    return ChargeResult(
        status=ChargeStatus.DECLINED,
        charge_id=intent_id,
        decline_kind=kind,
        decline_code=code,
        message=str(message),
    )


def card_error_result(
    exc: stripe.StripeError, intent_id: str, action_url: ActionUrl
) -> ChargeResult:
    """The answer to a confirmation Stripe refused with a card error (HTTP 402)."""
    error = error_of(exc)
    if _code(error) == AUTHENTICATION_REQUIRED:
        return _action(intent_id, action_url)
    return decline(error, intent_id)


def error_of(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return body["error"]  # type: ignore[no-any-return]
    return {"code": exc.code, "message": exc.user_message}


def _code(error: Mapping[str, Any]) -> str | None:
    # Stripe puts the issuer's reason in decline_code and "card_declined" in code.
    code = error.get("decline_code") or error.get("code")
    return str(code) if code else None


def _action(intent_id: str, action_url: ActionUrl) -> ChargeResult:
    return ChargeResult(
        status=ChargeStatus.REQUIRES_ACTION,
        charge_id=intent_id,
        message=ACTION_REQUIRED_MESSAGE,
        action_url=action_url(intent_id),
    )


# -- transport failures ---------------------------------------------------------------


@contextmanager
def transport(*, moves_money: bool) -> Iterator[None]:
    """Stripe's transport and service errors as the protocol's.

    For a request that can move money, anything that may have reached Stripe without an
    answer coming back is a ``GatewayTimeout`` (the caller records the outcome as unknown
    and looks it up later); only a request that provably never reached Stripe is
    ``GatewayUnavailable``. A request that moves no money is ``GatewayUnavailable``
    either way: trying it again is always safe. Card and request errors pass through.
    """
    try:
        yield
    except stripe.APIConnectionError as exc:
        if moves_money and reached_stripe(exc):
            raise GatewayTimeout(f"Stripe did not answer: {exc}") from exc
        raise GatewayUnavailable(f"Stripe could not be reached: {exc}") from exc
    except stripe.IdempotencyError as exc:
        raise IdempotencyKeyReused(str(exc)) from exc
    except (stripe.RateLimitError, stripe.AuthenticationError, stripe.PermissionError) as exc:
        # Refused before any work: rate limited, or a wrong or restricted API key.
        raise GatewayUnavailable(f"Stripe refused the request: {exc!r}") from exc
    except stripe.APIError as exc:
        # 5xx (and 409, a concurrent request with the same key): Stripe documents the
        # result of such a request as indeterminate.
        if moves_money:
            raise GatewayTimeout(f"Stripe failed to answer: {exc!r}") from exc
        raise GatewayUnavailable(f"Stripe failed to answer: {exc!r}") from exc


def reached_stripe(exc: stripe.APIConnectionError) -> bool:
    """False only when the connection provably failed before the request was sent.

    The requests-based client keeps the cause: a refused or unresolvable connection, a
    connect timeout or a failed TLS handshake sent nothing. A read timeout, or a
    connection dropped after sending, may have reached Stripe; so may any failure of
    another HTTP client, whose causes we do not know.
    """
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        inner = cause.args[0]
        reason = getattr(inner, "reason", inner)
        never_sent = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        return not isinstance(reason, never_sent)
    return True
