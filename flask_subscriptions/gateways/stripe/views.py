"""The Stripe adapter's two pages, under ``<SUBSCRIPTIONS_URL_PREFIX>/stripe``.

- ``POST /webhook``: Stripe's events. The signature is checked against
  ``SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET`` before anything is read; a bad one is a 400 and
  changes nothing. ``events.py`` reads the event as neutral events, and the extension's
  ``apply_gateway_event`` applies them, once per event id.
- ``GET /authenticate/<signed token>``: where the card holder approves a payment their
  bank wants confirmed (3-D Secure), with Stripe.js. It is the ``action_url`` of a
  ``REQUIRES_ACTION`` charge; only an owner of the paying account may open it: the
  PaymentIntent's customer is the one this adapter created for that account.
"""

from __future__ import annotations

from typing import Any

import stripe
from flask import Blueprint, Flask, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.routing import BuildError

from ...access import owner_required, safe_next
from ...accounts import BillingAccount
from ...state import get_state
from ..base import ChargeStatus, GatewayError
from . import links
from .context import stripe_context
from .events import read_event
from .mapping import charge_result

__all__ = ["blueprint", "mount"]

blueprint = Blueprint("subscriptions_stripe", __name__)


def mount(app: Flask) -> None:
    prefix = str(app.config.get("SUBSCRIPTIONS_URL_PREFIX", "/billing")).rstrip("/")
    app.register_blueprint(blueprint, url_prefix=f"{prefix}/stripe")
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # Stripe signs its requests; it cannot send a CSRF token
        csrf.exempt(webhook)


@blueprint.post("/webhook")
def webhook() -> ResponseReturnValue:
    context = stripe_context()
    try:
        event = context.client.construct_event(
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            context.settings.webhook_secret,
        )
    except (ValueError, stripe.SignatureVerificationError):
        return {"error": "The signature or the payload is invalid."}, 400
    try:
        notice = read_event(context, event)
    except GatewayError:
        # Stripe delivers the event again later; nothing was handed over for it.
        return {"error": "Stripe could not be asked about this event; send it again."}, 503
    return {"id": event.id, "outcome": get_state().apply_gateway_event(notice)}


@blueprint.get("/authenticate/<token>")
@owner_required
def authenticate(account: BillingAccount, token: str) -> ResponseReturnValue:
    context = stripe_context()
    try:
        intent = links.intent_of_action(context.client, token, expand=["customer"])
    except GatewayError:
        return _error("The payment service is unavailable right now. Please try again.", 503)
    if intent is None or _account_of(intent) != account.billing_id:
        abort(404)
    result = charge_result(intent, links.action_url)
    return render_template(
        "subscriptions/stripe_authenticate.html",
        intent=intent,
        pending=result is not None and result.status is ChargeStatus.REQUIRES_ACTION,
        succeeded=result is not None and result.status is ChargeStatus.SUCCEEDED,
        client_secret=intent["client_secret"],
        payment_method=_payment_method(intent),
        publishable_key=context.settings.publishable_key,
        return_url=safe_next((intent.get("metadata") or {}).get("return_url"))
        or safe_next(request.args.get("next"))  # an off-session charge: the page that sent us
        or _billing_home(),
    )


def _account_of(intent: dict[str, Any]) -> str | None:
    """The account whose customer this is: ``create_customer`` wrote it on the customer."""
    customer = intent.get("customer")
    if not isinstance(customer, dict):
        return None
    account_id = (customer.get("metadata") or {}).get("account_id")
    return str(account_id) if account_id else None


def _payment_method(intent: dict[str, Any]) -> str | None:
    """The card to authenticate: after an off-session ``authentication_required`` decline,
    Stripe keeps it only on the error, and Stripe.js must be told which it is."""
    error = intent.get("last_payment_error") or {}
    method = error.get("payment_method") or intent.get("payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    return str(method) if method else None


def _billing_home() -> str:
    try:
        return url_for("subscriptions.licenses.index")
    except BuildError:  # a host that mounts its own billing pages
        return "/"


def _error(message: str, status: int) -> ResponseReturnValue:
    """The package's error page (a host's template of the same name wins)."""
    page = render_template("subscriptions/error.html", message=message, status=status)
    return page, status
