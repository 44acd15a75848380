"""Links to the authentication page: signed, so that only a link we made opens it.

The token names a PaymentIntent and is signed with the app's ``SECRET_KEY``; the page also
checks that the signed-in owner's account is the PaymentIntent's customer.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for
from itsdangerous import BadSignature, URLSafeSerializer

__all__ = ["action_url", "intent_id"]

_SALT = "flask-subscriptions.stripe.authenticate"


def action_url(intent_id: str) -> str:
    return _url("subscriptions_stripe.authenticate", token=_signer().dumps(intent_id))


def intent_id(token: str) -> str | None:
    try:
        return str(_signer().loads(token))
    except BadSignature:
        return None


def _signer() -> URLSafeSerializer:
    secret = current_app.secret_key
    if not secret:
        raise RuntimeError("Set SECRET_KEY: the Stripe gateway signs its authentication links")
    return URLSafeSerializer(secret, salt=_SALT)


def _url(endpoint: str, **values: Any) -> str:
    """Absolute when the app knows its address (a request, or ``SERVER_NAME`` for a job, so
    a renewal's e-mail can carry it), else a path on this app."""
    if has_request_context() or current_app.config.get("SERVER_NAME"):
        return url_for(endpoint, _external=True, **values)
    script_name = current_app.config.get("APPLICATION_ROOT") or "/"
    return current_app.url_map.bind("localhost", script_name=script_name).build(endpoint, values)
