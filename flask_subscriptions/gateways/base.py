"""The payment gateway protocol: everything else in the package codes against this.

A gateway is an adapter to an *external* payment service. Card numbers and
security codes go from the person's browser to that service only (R-SEC-1); we
keep the service's references: a customer id, a payment-method token with brand,
last 4 digits and expiry, and charge / refund / payout ids.

The shape follows what Stripe needs, so an adapter fits without changing it:

- ``start_card_setup`` returns either a ``redirect_url`` (a hosted page, like the
  sandbox's) or a ``client_secret`` + ``publishable_key`` for an embedded form
  (a SetupIntent confirmed with Stripe Elements). Either way the service comes
  back to ``return_url`` and we call ``finish_card_setup`` with the reference.
- ``charge`` is an off-session PaymentIntent created with an idempotency key.
  When the bank wants the person present (3-D Secure), the result is
  ``REQUIRES_ACTION`` with an ``action_url``; after the person completes it,
  ``lookup_charge`` reports the final status. The page at ``action_url`` sends the
  person back to the charge's ``return_url``, or, for an off-session charge made
  without one (a renewal), to the ``next`` query parameter it is opened with (a URL
  on this host).
- Every money-moving call takes an idempotency key derived from one of our
  durable rows, so retrying after a crash or a timeout never moves money twice.

A gateway may also define ``init_app(app)`` (the sandbox does, to mount its
pages and bind its storage); ``Subscriptions.init_app`` calls it when present, and the
gateway's ``init_app`` is where missing or malformed settings stop the app. A gateway that
reads ``SUBSCRIPTIONS_*`` settings of its own lists their full names in ``settings_keys``:
every other key under that prefix is refused as a typo. A
service that takes many charges in one call may implement :class:`BulkCharges`;
the renewal job then hands it a batch at once instead of one call per charge.

What the service reports on its own (webhooks: a charge confirmed later, a refund or
a dispute made at the service, a card removed there) the gateway hands over as the
neutral events of ``events.py``; it never writes our tables itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "ACTION_REQUIRED_MESSAGE",
    "BulkCharges",
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

#: Refunds and payouts either happened or did not; there is no "declined" nuance.
TransferStatus = Literal["succeeded", "failed"]

_MAX_KEY_LENGTH = 255


class ChargeStatus(StrEnum):
    """Outcome of a charge.

    ``UNKNOWN`` is not an answer a gateway gives for a finished charge: it is the
    state the caller records when the gateway did not answer (``GatewayTimeout``)
    or answered "still processing"; a job reconciles it with ``lookup_charge``.
    """

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"
    REQUIRES_ACTION = "requires_action"


class DeclineKind(StrEnum):
    """Whether retrying the same card can help.

    ``HARD`` (card_declined, lost_card, expired_card): the card will not work;
    ask for another. ``SOFT`` (insufficient_funds): a retry later may succeed,
    so dunning retries it during the grace period.
    """

    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True)
class PaymentMethodInfo:
    """All we may keep about a card (R-SEC-1): never its number or security code.

    ``brand`` uses the payment services' lower-case codes (``visa``,
    ``mastercard``, ``amex``, ...).
    """

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class CardSetup:
    """How the person enters a card: on the service's page, or in an embedded form.

    A hosted-page gateway sets ``redirect_url``; an embedded one (Stripe Elements)
    sets ``client_secret`` and ``publishable_key``. ``reference`` identifies the
    setup (the sandbox's session, a Stripe SetupIntent) so the caller can check
    that what comes back to ``return_url`` is the setup it started.
    """

    redirect_url: str | None = None
    client_secret: str | None = None
    publishable_key: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class ChargeRequest:
    """One attempt to take money.

    ``idempotency_key`` is required and must come from a durable row of ours
    (``renewal:<invoice id>:<attempt>``), never a fresh random value: it is what
    makes a retry after a crash or timeout charge at most once (R-BUY-6, R-REN-2).
    ``return_url`` is where a person who has to authenticate (3-D Secure) is sent
    back to; off-session charges may leave it unset.
    """

    customer: str
    payment_method: str
    amount: int
    currency: str
    idempotency_key: str
    description: str
    off_session: bool = True
    return_url: str | None = None

    def __post_init__(self) -> None:
        # Checked here so that no gateway can be handed a request that would
        # silently charge without idempotency or with a non-integer amount (R-MON-1).
        check_idempotency_key(self.idempotency_key)
        check_amount(self.amount)
        if len(self.currency) != 3 or not self.currency.isascii() or not self.currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, got {self.currency!r}")


#: What a ``REQUIRES_ACTION`` result tells the person, whichever service asked for it.
ACTION_REQUIRED_MESSAGE = "Your bank asks you to confirm this payment."


@dataclass(frozen=True)
class ChargeResult:
    """What the gateway answered. ``message`` is fit to show the person."""

    status: ChargeStatus
    charge_id: str | None = None
    decline_kind: DeclineKind | None = None
    decline_code: str | None = None
    message: str | None = None
    action_url: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is ChargeStatus.SUCCEEDED


@dataclass(frozen=True)
class RefundResult:
    status: TransferStatus
    refund_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class PayoutResult:
    """Result of paying an account's balance out (R-BAL-2)."""

    status: TransferStatus
    payout_id: str | None = None
    message: str | None = None


class GatewayError(Exception):
    """Base of every gateway failure; ``str(error)`` is for logs, not for people."""


class GatewayUnavailable(GatewayError):
    """The request never reached the service (connection refused, DNS, 503 before work).

    Nothing happened, so retrying with the same idempotency key is safe and
    needs no reconciliation.
    """


class GatewayTimeout(GatewayError):
    """The request was sent but no answer came back.

    Distinct from ``GatewayUnavailable`` because the money may have moved: the
    caller must record the payment as ``unknown`` and settle it later with
    ``lookup_charge`` (or a retry with the same key), never with a new key.
    """


class IdempotencyKeyReused(GatewayError):
    """The key was already used for a *different* request.

    This is a bug in the caller (keys must be derived from one durable row), so
    it is an error rather than a silent second charge or a wrong replay.
    """


class CardSetupFailed(GatewayError):
    """The card could not be registered. ``str(error)`` is fit to show the person."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@runtime_checkable
class Gateway(Protocol):
    """An external payment service, as the rest of the package sees it."""

    name: str

    def create_customer(self, account_id: str, email: str | None) -> str:
        """Create the service's customer; we store the reference once per account."""
        ...

    def start_card_setup(self, customer: str, return_url: str) -> CardSetup:
        """Begin registering a card; the service returns to ``return_url``."""
        ...

    def finish_card_setup(self, customer: str, setup_reference: str) -> PaymentMethodInfo:
        """The card registered by that setup; raises ``CardSetupFailed`` if none."""
        ...

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; a replay returns the recorded charge."""
        ...

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made with that key, or ``None`` if none was ever made.

        This is how an ``unknown`` payment is reconciled after ``GatewayTimeout``.
        """
        ...

    def refund(self, charge_id: str, amount: int, idempotency_key: str) -> RefundResult: ...

    def payout(
        self, customer: str, amount: int, currency: str, idempotency_key: str
    ) -> PayoutResult:
        """Pay money out to the customer (balance withdrawal, R-BAL-2)."""
        ...

    def remove_payment_method(self, token: str) -> None:
        """Detach the card at the service, so it can never be charged again."""
        ...


@runtime_checkable
class BulkCharges(Protocol):
    """Optional: a gateway that can take a batch of charges in one call.

    Each request is charged exactly as :meth:`Gateway.charge` would charge it: once
    per idempotency key, a replay answering the recorded charge. Only the transport
    differs. ``bulk_charges`` says whether it should be used now (Sandbox Pay takes
    batches when it is instant and in-process, and plays a remote service, one call
    per charge, when given a latency).
    """

    @property
    def bulk_charges(self) -> bool: ...

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | GatewayError]:
        """One answer per request, in order: a result, or the error ``charge`` would
        have raised for it (``GatewayTimeout``, ``GatewayUnavailable``, ...)."""
        ...


def check_idempotency_key(key: str) -> None:
    """Gateways call this too: a missing key must never mean "charge anyway"."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError("an idempotency key is required")
    if len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key has at most {_MAX_KEY_LENGTH} characters")


def check_amount(amount: int) -> None:
    """Amounts are positive integers in the minor unit (R-MON-1)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an int in the currency's minor unit, got {amount!r}")
    if not 0 < amount <= 10**15:
        raise ValueError(f"amount must be positive and sane, got {amount}")
