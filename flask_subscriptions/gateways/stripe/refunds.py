"""Refunds, and payouts paid as refunds, each made at most once per idempotency key.

A refund cannot be created unconfirmed, so its key is claimed in our table *before* the
request (``storage.py``). A caller that finds a fresh claim gets ``GatewayTimeout`` (the
outcome is not known yet); one that finds a stale claim first looks for the refund at
Stripe by the key in its metadata, and only then tries again, with the same
``Idempotency-Key``.

Payouts: Stripe pays out only to the platform's own bank account, never to a customer.
So a balance withdrawal is paid back to the customer's card, as a refund of their most
recent succeeded card payment in that currency with enough left to refund. If no single
payment has enough, the payout fails with a message saying so; the withdrawal service
then gives the balance back, and the host pays it by bank transfer if it wishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe

from ..base import (
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
    TransferStatus,
)
from .mapping import error_of, transport
from .storage import Ledger, Sent, is_fresh

__all__ = ["Done", "RefundDesk"]

NO_PAYOUT_SOURCE = (
    "No recent card payment of this account can take this withdrawal; "
    "it has to be paid by bank transfer."
)


@dataclass(frozen=True)
class Done:
    status: TransferStatus
    refund_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RefundDesk:
    client: stripe.StripeClient
    ledger: Ledger
    lease: timedelta

    def refund(self, key: str, intent_id: str, amount: int) -> Done:
        fingerprint = f"{intent_id}|{amount}"
        return self._once(
            "refund", key, fingerprint, intent_id, lambda: self._refund(key, intent_id, amount)
        )

    def payout(self, key: str, customer: str, amount: int, currency: str) -> Done:
        fingerprint = f"{customer}|{amount}|{currency.lower()}"
        return self._once(
            "payout", key, fingerprint, None, lambda: self._payout(key, customer, amount, currency)
        )

    # -- once per key -----------------------------------------------------------------------

    def _once(
        self, kind: str, key: str, fingerprint: str, target: str | None, run: Callable[[], Done]
    ) -> Done:
        sent, ours = self.ledger.add(key, kind, fingerprint, target=target)
        if not ours:
            if sent.kind != kind or sent.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"idempotency key {key!r} was used for another request")
            if sent.settled:
                return _replay(sent)
            found = self._take_over(sent)
            if found is not None:
                return found
        try:
            return run()
        except GatewayUnavailable:
            self.ledger.release(key)  # nothing reached Stripe: the key may be tried afresh
            raise

    def _take_over(self, sent: Sent) -> Done | None:
        """A claim someone else holds: wait while fresh; when stale, settle it from Stripe's
        record if the refund was made, else take the claim over (None: go ahead)."""
        if is_fresh(sent, self.lease):
            raise GatewayTimeout(f"a request with key {sent.key!r} is in progress")
        made = self._find(sent.target, sent.key) if sent.target else None
        if made is not None:
            self.ledger.settle(sent.key, object_id=made)
            return Done("succeeded", made)
        if not self.ledger.reclaim(sent):
            raise GatewayTimeout(f"a request with key {sent.key!r} is in progress")
        return None

    def _find(self, intent_id: str, key: str) -> str | None:
        with transport(moves_money=False):
            found = self.client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
        for refund in found.data:
            if (refund.to_dict().get("metadata") or {}).get("idempotency_key") == key:
                return str(refund.id)
        return None

    # -- the work -------------------------------------------------------------------------

    def _refund(self, key: str, intent_id: str, amount: int, purpose: str = "refund") -> Done:
        refusal = self._refusal(intent_id, amount)
        if refusal is not None:
            return self._failed(key, refusal)
        try:
            with transport(moves_money=True):
                refund = self.client.v1.refunds.create(
                    params={
                        "payment_intent": intent_id,
                        "amount": amount,
                        "metadata": {"idempotency_key": key, "purpose": purpose},
                    },
                    options={"idempotency_key": key},
                )
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            return self._failed(key, str(error_of(exc).get("message") or exc.user_message))
        if refund.status in ("failed", "canceled"):
            return self._failed(key, "The payment service could not make the refund.")
        self.ledger.settle(key, object_id=refund.id)
        return Done("succeeded", refund.id)

    def _refusal(self, intent_id: str, amount: int) -> str | None:
        """Why this refund cannot be made, checked before asking (Stripe checks too)."""
        try:
            with transport(moves_money=False):
                intent = self.client.v1.payment_intents.retrieve(
                    intent_id, params={"expand": ["latest_charge"]}
                )
        except stripe.InvalidRequestError:
            return "No such charge."
        charge = intent.to_dict().get("latest_charge")
        if intent.status != "succeeded" or not isinstance(charge, dict):
            return "Only a succeeded charge can be refunded."
        if amount > int(charge["amount"]) - int(charge.get("amount_refunded") or 0):
            return "The refund exceeds what is left of the charge."
        return None

    def _payout(self, key: str, customer: str, amount: int, currency: str) -> Done:
        source = self.payout_source(customer, amount, currency)
        if source is None:
            return self._failed(key, NO_PAYOUT_SOURCE)
        self.ledger.set_target(key, source)  # a stale claim is then looked up on it
        return self._refund(key, source, amount, purpose="payout")

    def payout_source(self, customer: str, amount: int, currency: str) -> str | None:
        """The PaymentIntent of the customer's latest card payment that can refund ``amount``."""
        try:
            with transport(moves_money=False):
                charges = self.client.v1.charges.list(params={"customer": customer, "limit": 100})
        except stripe.InvalidRequestError:
            return None
        fits = [
            charge
            for charge in charges.data
            if charge.status == "succeeded"
            and charge.currency == currency.lower()
            and charge.payment_intent
            and charge.amount - (charge.amount_refunded or 0) >= amount
        ]
        if not fits:
            return None
        latest = max(fits, key=lambda charge: (charge.created, charge.id))
        intent: Any = latest.payment_intent
        return str(intent if isinstance(intent, str) else intent.id)

    def _failed(self, key: str, message: str) -> Done:
        self.ledger.settle(key, failure=message)
        return Done("failed", message=message)


def _replay(sent: Sent) -> Done:
    if sent.failure is not None:
        return Done("failed", message=sent.failure)
    return Done("succeeded", sent.object_id)
