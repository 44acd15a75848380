"""Stripe as the payment gateway: ``Subscriptions(app, gateway=StripeGateway())``.

Installed with the ``stripe`` extra (``pip install flask-subscriptions[stripe]``), it needs
``SUBSCRIPTIONS_STRIPE_SECRET_KEY``, ``SUBSCRIPTIONS_STRIPE_PUBLISHABLE_KEY`` and
``SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET``; ``SUBSCRIPTIONS_STRIPE_API_BASE`` points it at a
Stripe-compatible server (tests use localstripe). Stripe's webhook endpoint is
``<SUBSCRIPTIONS_URL_PREFIX>/stripe/webhook`` with the events ``payment_intent.succeeded``,
``payment_intent.payment_failed``, ``payment_intent.requires_action``,
``payment_intent.canceled``, ``payment_method.detached``, ``charge.refunded``,
``charge.refund.updated``, ``charge.dispute.created`` and ``charge.dispute.closed``.
"""

from __future__ import annotations

try:
    import stripe as _stripe  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The Stripe gateway needs the Stripe SDK: pip install 'flask-subscriptions[stripe]'"
    ) from exc

from .gateway import EXTENSION_KEY, StripeGateway
from .mapping import SOFT_DECLINES
from .settings import StripeSettings
from .storage import metadata

__all__ = ["EXTENSION_KEY", "SOFT_DECLINES", "StripeGateway", "StripeSettings", "metadata"]
