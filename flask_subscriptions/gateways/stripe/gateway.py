"""Stripe, as a gateway: customers, SetupIntents, off-session PaymentIntents, refunds.

``StripeGateway()`` is passed to ``Subscriptions(app, gateway=...)`` like the sandbox; its
``init_app`` reads the ``SUBSCRIPTIONS_STRIPE_*`` settings, binds its table (the host's
Flask-SQLAlchemy database unless ``database_url`` is given) and mounts the webhook and the
authentication page under ``<SUBSCRIPTIONS_URL_PREFIX>/stripe``.

A charge is one PaymentIntent per idempotency key, created unconfirmed, recorded in our
table, then confirmed (``storage.py`` says why). Its id is the protocol's ``charge_id``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import stripe
from flask import Flask, current_app

from ..base import (
    CardSetup,
    CardSetupFailed,
    ChargeRequest,
    ChargeResult,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
    PaymentMethodInfo,
    PayoutResult,
    RefundResult,
    check_amount,
    check_idempotency_key,
)
from . import links
from .context import EXTENSION_KEY, StripeContext
from .mapping import card_error_result, charge_result, decline, error_of, transport
from .refunds import RefundDesk
from .settings import SETTINGS_KEYS, StripeSettings, load_stripe_settings
from .storage import Ledger, Sent, metadata
from .views import mount

__all__ = ["EXTENSION_KEY", "StripeGateway"]

_MAX_METADATA_VALUE = 500  # Stripe's limit for one metadata value


class StripeGateway:
    """The Stripe adapter. Per-app state lives in ``app.extensions``, never on ``self``.

    ``timeout`` (seconds) bounds every request; ``max_network_retries`` is 0 so that a
    request that may have reached Stripe surfaces as ``GatewayTimeout`` and is settled by
    lookup. ``http_client`` replaces the SDK's (tests inject faults through it).
    ``claim_lease`` is how long a refund in flight keeps others with its key waiting.
    """

    name = "stripe"
    #: The ``SUBSCRIPTIONS_STRIPE_*`` settings it reads; any other is refused at start.
    settings_keys = SETTINGS_KEYS

    def __init__(
        self,
        *,
        database_url: str | None = None,
        timeout: float = 30.0,
        max_network_retries: int = 0,
        http_client: stripe.HTTPClient | None = None,
        claim_lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.database_url = database_url
        self.timeout = timeout
        self.max_network_retries = max_network_retries
        self.http_client = http_client
        self.claim_lease = claim_lease

    # -- mounting -------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Check the settings, bind the table, mount the pages; again for this app: no-op.

        The table is not created here (workers starting at once raced on it): it is in
        our migrations' ``subscriptions`` branch, or ``db create`` makes it."""
        state = app.extensions.get(EXTENSION_KEY)
        if state is not None:
            if state.gateway is self:
                return
            raise RuntimeError("another StripeGateway is already registered on this app")
        settings = load_stripe_settings(app.config)
        engine, owns_engine = self._bind_engine(app)
        app.extensions[EXTENSION_KEY] = StripeContext(
            self, settings, self._client(settings), Ledger(engine), owns_engine
        )
        app.jinja_env.globals["subscriptions_stripe_js_url"] = settings.js_url
        mount(app)

    def _client(self, settings: StripeSettings) -> stripe.StripeClient:
        return stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            max_network_retries=self.max_network_retries,
            http_client=self.http_client or stripe.RequestsClient(timeout=self.timeout),
        )

    def _bind_engine(self, app: Flask) -> tuple[sa.Engine, bool]:
        if self.database_url:
            return sa.create_engine(self.database_url), True
        billing = app.extensions.get("subscriptions")
        db = billing.db if billing is not None else app.extensions.get("sqlalchemy")
        if db is None:
            raise RuntimeError(
                "StripeGateway needs a database: initialise Flask-SQLAlchemy first, "
                "or pass database_url=..."
            )
        with app.app_context():
            return db.engine, False

    def _state(self) -> StripeContext:
        state: StripeContext | None = current_app.extensions.get(EXTENSION_KEY)
        if state is None or state.gateway is not self:
            raise RuntimeError("call StripeGateway.init_app(app) for this app first")
        return state

    @property
    def client(self) -> stripe.StripeClient:
        """The current app's Stripe client."""
        return self._state().client

    @property
    def settings(self) -> StripeSettings:
        return self._state().settings

    @property
    def ledger(self) -> Ledger:
        return self._state().ledger

    def engine(self) -> sa.Engine:
        """The engine of the adapter's table (tests inspect and empty it through it)."""
        return self.ledger.engine

    def dispose(self) -> None:
        """Close the current app's pooled connections (only an engine of our own)."""
        state = self._state()
        if state.owns_engine:
            state.ledger.engine.dispose()

    # -- customers and cards ----------------------------------------------------------------

    def create_customer(self, account_id: str, email: str | None) -> str:
        if not account_id:
            raise ValueError("account_id is required")
        with transport(moves_money=False):
            if email:
                customer = self.client.v1.customers.create(
                    params={"email": email, "metadata": {"account_id": account_id}}
                )
            else:
                customer = self.client.v1.customers.create(
                    params={"metadata": {"account_id": account_id}}
                )
        return str(customer.id)

    def start_card_setup(self, customer: str, return_url: str) -> CardSetup:
        """A SetupIntent for an off-session card; the embedded form confirms it with Stripe.js
        and sends the browser to ``return_url`` with ``setup_reference=<its id>``."""
        try:
            with transport(moves_money=False):
                intent = self.client.v1.setup_intents.create(
                    params={
                        "customer": customer,
                        "usage": "off_session",
                        "allowed_payment_method_types": ["card"],
                    }
                )
        except stripe.InvalidRequestError as exc:
            raise GatewayError(f"Stripe refused the card setup for {customer}: {exc}") from exc
        return CardSetup(
            client_secret=intent.client_secret,
            publishable_key=self.settings.publishable_key,
            reference=intent.id,
        )

    def finish_card_setup(self, customer: str, setup_reference: str) -> PaymentMethodInfo:
        if not setup_reference.startswith("seti_"):
            raise CardSetupFailed("This card setup was not found.")
        try:
            with transport(moves_money=False):
                intent = self.client.v1.setup_intents.retrieve(
                    setup_reference, params={"expand": ["payment_method"]}
                )
        except stripe.InvalidRequestError as exc:
            raise CardSetupFailed("This card setup was not found.") from exc
        setup = intent.to_dict()
        if setup.get("customer") != customer:
            raise CardSetupFailed("This card setup was not found.")
        method = setup.get("payment_method")
        if setup.get("status") != "succeeded" or not isinstance(method, dict):
            error = setup.get("last_setup_error") or {}
            raise CardSetupFailed(error.get("message") or "No card was registered.")
        if method.get("customer") != customer:  # detached since: removed
            raise CardSetupFailed("This card was removed.")
        card = method["card"]
        return PaymentMethodInfo(
            token=str(method["id"]),
            brand=str(card["brand"]).lower(),
            last4=str(card["last4"]),
            exp_month=int(card["exp_month"]),
            exp_year=int(card["exp_year"]),
        )

    def remove_payment_method(self, token: str) -> None:
        """Detach the card; a card already detached is done, an unknown one an error."""
        try:
            with transport(moves_money=False):
                self.client.v1.payment_methods.detach(token)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise GatewayError(f"No such payment method: {token}") from exc
            with transport(moves_money=False):
                method = self.client.v1.payment_methods.retrieve(token)
            if method.customer is not None:
                raise GatewayError(f"Stripe did not detach {token}: {exc}") from exc

    # -- charges ----------------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per key: a replay settles (or reports) the key's one PaymentIntent."""
        check_idempotency_key(request.idempotency_key)
        fingerprint = _charge_fingerprint(request)
        sent = self.ledger.get(request.idempotency_key)
        if sent is not None:
            _check_reuse(sent, "charge", fingerprint)
            return self._resume(str(sent.object_id), request)
        created = self._create_intent(request)
        if isinstance(created, ChargeResult):
            return created  # refused before any PaymentIntent existed
        sent, ours = self.ledger.add(
            request.idempotency_key, "charge", fingerprint, object_id=created.id
        )
        if not ours:  # another worker recorded its PaymentIntent for this key first
            _check_reuse(sent, "charge", fingerprint)
            self._discard(created.id, keep=str(sent.object_id))
            return self._resume(str(sent.object_id), request)
        return self._settle(created, request)

    def _create_intent(self, request: ChargeRequest) -> stripe.PaymentIntent | ChargeResult:
        meta = {"idempotency_key": request.idempotency_key}
        if request.return_url and len(request.return_url) <= _MAX_METADATA_VALUE:
            meta["return_url"] = request.return_url
        try:
            with transport(moves_money=False):  # an unconfirmed PaymentIntent moves nothing
                return self.client.v1.payment_intents.create(
                    params={
                        "amount": request.amount,
                        "currency": request.currency.lower(),
                        "customer": request.customer,
                        "payment_method": request.payment_method,
                        "allowed_payment_method_types": ["card"],
                        "description": request.description,
                        "metadata": meta,
                    },
                    options={"idempotency_key": request.idempotency_key},
                )
        except stripe.CardError as exc:
            return decline(error_of(exc), None)
        except stripe.InvalidRequestError as exc:
            if exc.param in ("payment_method", "customer") or exc.http_status == 404:
                # A card that was removed, or belongs to someone else: it cannot pay.
                return decline({"code": "card_declined"}, None)
            raise GatewayError(f"Stripe refused the payment: {exc}") from exc

    def _resume(self, intent_id: str, request: ChargeRequest) -> ChargeResult:
        return self._settle(self._retrieve_settled(intent_id), request)

    def _retrieve_settled(self, intent_id: str) -> stripe.PaymentIntent:
        """The PaymentIntent when an earlier call may already have moved money: no answer
        is then "unknown" (``GatewayTimeout``), never "nothing was charged"."""
        try:
            with transport(moves_money=True):
                return self.client.v1.payment_intents.retrieve(intent_id)
        except GatewayUnavailable as exc:
            raise GatewayTimeout(f"Stripe could not be asked about {intent_id}: {exc}") from exc

    def _settle(self, intent: stripe.PaymentIntent, request: ChargeRequest) -> ChargeResult:
        if intent.status != "requires_confirmation":
            result = charge_result(intent.to_dict(), self.action_url)
            assert result is not None
            return result
        options: Any = {"idempotency_key": _derived_key(request.idempotency_key, "confirm")}
        try:
            with transport(moves_money=True):
                if request.off_session:
                    confirmed = self.client.v1.payment_intents.confirm(
                        intent.id, params={"off_session": True}, options=options
                    )
                else:
                    confirmed = self.client.v1.payment_intents.confirm(intent.id, options=options)
        except stripe.CardError as exc:
            return card_error_result(exc, intent.id, self.action_url)
        except stripe.InvalidRequestError as exc:
            return self._after_refused_confirmation(intent.id, exc)
        result = charge_result(confirmed.to_dict(), self.action_url)
        if result is None:
            raise GatewayTimeout(f"Stripe left {intent.id} unconfirmed")
        return result

    def _after_refused_confirmation(
        self, intent_id: str, exc: stripe.InvalidRequestError
    ) -> ChargeResult:
        """A confirmation refused as a bad request: most often another worker confirmed the
        PaymentIntent first (its state is then the answer); else the card cannot pay."""
        result = charge_result(self._retrieve_settled(intent_id).to_dict(), self.action_url)
        if result is None:
            return decline({"code": exc.code or "card_declined", "message": None}, intent_id)
        return result

    def _discard(self, intent_id: str, *, keep: str) -> None:
        """Cancel a PaymentIntent that lost the race for its key (it was never confirmed)."""
        if intent_id == keep:
            return
        try:
            with transport(moves_money=False):
                self.client.v1.payment_intents.cancel(intent_id)
        except (GatewayError, stripe.StripeError):
            pass  # an unconfirmed PaymentIntent left behind can take no money

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        """The key's PaymentIntent as it stands, or None if it never took a confirmation."""
        check_idempotency_key(idempotency_key)
        sent = self.ledger.get(idempotency_key)
        if sent is None or sent.kind != "charge" or sent.object_id is None:
            return None
        with transport(moves_money=False):
            intent = self.client.v1.payment_intents.retrieve(sent.object_id)
        return charge_result(intent.to_dict(), self.action_url)

    # -- refunds and payouts ----------------------------------------------------------------

    def refund(self, charge_id: str, amount: int, idempotency_key: str) -> RefundResult:
        """Refund part or all of a charge (a PaymentIntent id), once per key."""
        check_idempotency_key(idempotency_key)
        check_amount(amount)
        done = self._desk().refund(idempotency_key, charge_id, amount)
        return RefundResult(status=done.status, refund_id=done.refund_id, message=done.message)

    def payout(
        self, customer: str, amount: int, currency: str, idempotency_key: str
    ) -> PayoutResult:
        """Stripe pays out only to the platform's own bank account, so a withdrawal is paid
        back to the customer's card: a refund of their latest card payment with enough
        left to refund (``refunds.py``). When none has, the payout fails and says so; the
        balance is then given back, and the host may pay it by bank transfer."""
        check_idempotency_key(idempotency_key)
        check_amount(amount)
        done = self._desk().payout(idempotency_key, customer, amount, currency)
        return PayoutResult(status=done.status, payout_id=done.refund_id, message=done.message)

    # -- storage (``flask subscriptions db create`` / ``db upgrade``) -------------------------

    def create_storage(self) -> None:
        """``db create``: the ledger table where the ledger lives, if it is missing."""
        metadata.create_all(self._state().ledger.engine)

    def upgrade_storage(self) -> str | None:
        """``db upgrade``: on the billing database the table is revision ``subs_0001`` of
        our ``subscriptions`` branch, already applied. A ledger given a database of its own
        (``database_url``) holds that one table alone, so it is created there if missing."""
        state = self._state()
        if state.owns_engine:
            metadata.create_all(state.ledger.engine)
        return None

    def _desk(self) -> RefundDesk:
        state = self._state()
        return RefundDesk(state.client, state.ledger, self.claim_lease)

    # -- the authentication page ------------------------------------------------------------

    def action_url(self, intent_id: str) -> str:
        """Our page where the card holder approves the PaymentIntent (a signed link)."""
        return links.action_url(intent_id)

    def intent_of_action(self, token: str) -> dict[str, Any] | None:
        """The PaymentIntent an action link names, if the link is ours."""
        return links.intent_of_action(self.client, token)


def _charge_fingerprint(request: ChargeRequest) -> str:
    return "|".join(
        (request.customer, request.payment_method, str(request.amount), request.currency.lower())
    )


def _check_reuse(sent: Sent, kind: str, fingerprint: str) -> None:
    if sent.kind != kind or sent.fingerprint != fingerprint:
        raise IdempotencyKeyReused(f"idempotency key {sent.key!r} was used for another request")


def _derived_key(key: str, step: str) -> str:
    """The Idempotency-Key of a later step of the same request, within Stripe's 255."""
    derived = f"{key}:{step}"
    if len(derived) <= 255:
        return derived
    return f"{hashlib.sha256(key.encode()).hexdigest()}:{step}"
