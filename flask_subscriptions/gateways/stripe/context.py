"""What one app holds of the Stripe adapter, under ``app.extensions[EXTENSION_KEY]``.

The adapter's pages (``views.py``) and its reading of webhook events (``events.py``) need
the app's Stripe client, settings and ledger, not the gateway class: they read them here,
so that ``gateway.py`` can mount the pages without the pages importing it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from flask import current_app

from ..base import Gateway
from .settings import StripeSettings
from .storage import Ledger

__all__ = ["EXTENSION_KEY", "StripeContext", "stripe_context"]

EXTENSION_KEY = "subscriptions_stripe"


@dataclass(frozen=True)
class StripeContext:
    gateway: Gateway
    settings: StripeSettings
    client: stripe.StripeClient
    ledger: Ledger
    owns_engine: bool


def stripe_context() -> StripeContext:
    """The current app's; an app without a ``StripeGateway`` is a setup error."""
    context: StripeContext | None = current_app.extensions.get(EXTENSION_KEY)
    if context is None:
        raise RuntimeError("call StripeGateway.init_app(app) for this app first")
    return context
