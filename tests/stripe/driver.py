"""Test doubles around the real Stripe adapter: what the card holder and the network do.

``LocalStripeGateway`` is the adapter unchanged, plus the steps a test takes in place of
a person: typing a card into Stripe's form (``register_card``, as Stripe.js does: the
number goes to localstripe only) and approving a payment (``complete_authentication``).
``FaultyClient`` is the SDK's own HTTP client with two switches for network failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
import stripe
import urllib3

from flask_subscriptions.gateways import CardSetupFailed
from flask_subscriptions.gateways.stripe import StripeGateway

Match = Callable[[str, str], bool]


class FaultyClient(stripe.RequestsClient):
    """``fail_before(method, url)``: the connection is refused, nothing is sent.
    ``timeout_after(method, url)``: the request is served, the answer is lost."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.fail_before: Match | None = None
        self.timeout_after: Match | None = None
        self.sent: list[tuple[str, str, str]] = []  # method, URL, form data
        self.keys: list[tuple[str, str | None]] = []  # URL, Idempotency-Key header

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if self.fail_before and self.fail_before(method, url):
            refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
            self._handle_request_error(
                requests.exceptions.ConnectionError(
                    urllib3.exceptions.MaxRetryError(None, url, refused)  # type: ignore[arg-type]
                )
            )
        self.sent.append((method, url, post_data or ""))
        self.keys.append((url, dict(headers or {}).get("Idempotency-Key")))
        answer = super().request(method, url, headers, post_data)
        if self.timeout_after and self.timeout_after(method, url):
            self._handle_request_error(requests.exceptions.ReadTimeout("Read timed out."))
        return answer


def confirming(method: str, url: str) -> bool:
    """Confirming a PaymentIntent: the request that moves the money."""
    return method == "post" and "/v1/payment_intents/" in url and url.endswith("/confirm")


def about_payment_intents(method: str, url: str) -> bool:
    """Every answer about a PaymentIntent after its creation (confirm, retrieve)."""
    return "/v1/payment_intents/" in url


def creating_payment_intents(method: str, url: str) -> bool:
    return method == "post" and url.endswith("/v1/payment_intents")


class LocalStripeGateway(StripeGateway):
    """The adapter, and the hands of the person in front of Stripe's form."""

    def __init__(self, *, database_url: str | None = None) -> None:
        self.faults = FaultyClient()
        super().__init__(database_url=database_url, http_client=self.faults)

    def register_card(self, reference: str, digits: str, exp_month: int, exp_year: int) -> str:
        """What Stripe.js does when the person submits the Elements form (and, for a card
        that asks for 3-D Secure at registration, approves it)."""
        card = {"number": digits, "exp_month": exp_month, "exp_year": exp_year, "cvc": "123"}
        try:
            intent = self.client.v1.setup_intents.confirm(
                reference,
                params={"payment_method_data": {"type": "card", "card": card}},  # type: ignore[typeddict-item]
            )
            if intent.status == "requires_action":
                intent = self.client.v1.setup_intents.confirm(reference)
        except stripe.CardError as exc:
            raise CardSetupFailed(exc.user_message or "Your card was declined.", exc.code) from exc
        return str(intent.payment_method)

    def complete_authentication(self, charge_id: str, succeeded: bool) -> None:
        """What the card holder does on the bank's 3-D Secure page (localstripe's modal)."""
        intent = self.client.v1.payment_intents.retrieve(charge_id)
        self.client.raw_request(
            "post",
            f"/v1/payment_intents/{charge_id}/_authenticate",
            client_secret=intent.client_secret,
            success="true" if succeeded else "false",
        )

    def charge_count(self, idempotency_key: str | None = None) -> int:
        """Charges localstripe made (declined ones too), for a key or in all."""
        charges = self.client.v1.charges.list(params={"limit": 1000})
        if idempotency_key is None:
            return len(charges.data)
        sent = self.ledger.get(idempotency_key)
        intent = sent.object_id if sent else None
        return sum(1 for charge in charges.data if charge.payment_intent == intent)
