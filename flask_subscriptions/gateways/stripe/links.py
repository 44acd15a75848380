"""Links to the authentication page: signed, so that only a link we made opens it.

The token names a PaymentIntent and is signed with the app's ``SECRET_KEY``; the page also
checks that the signed-in owner's account is the PaymentIntent's customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import stripe
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from ...links import app_url
from .mapping import transport

__all__ = ["action_url", "intent_id", "intent_of_action"]

_SALT = "flask-subscriptions.stripe.authenticate"


def action_url(intent_id: str) -> str:
    return app_url("subscriptions_stripe.authenticate", token=_signer().dumps(intent_id))


def intent_id(token: str) -> str | None:
    try:
        return str(_signer().loads(token))
    except BadSignature:
        return None


def intent_of_action(
    client: stripe.StripeClient, token: str, expand: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The PaymentIntent a link names, if the link is ours (asked of Stripe as it is now)."""
    found = intent_id(token)
    if found is None:
        return None
    params: Any = {"expand": list(expand)} if expand else None
    with transport(moves_money=False):
        return client.v1.payment_intents.retrieve(found, params=params).to_dict()


def _signer() -> URLSafeSerializer:
    secret = current_app.secret_key
    if not secret:
        raise RuntimeError("Set SECRET_KEY: the Stripe gateway signs its authentication links")
    return URLSafeSerializer(secret, salt=_SALT)
