"""The Stripe settings: ``SUBSCRIPTIONS_STRIPE_*``, read and checked once by ``init_app``.

``config.py`` accepts exactly the keys the gateway in use declares (``StripeGateway.
settings_keys``, from :data:`SETTINGS_KEYS`), so a typo stops the app whatever gateway it
runs; this module is where a missing or malformed value stops it, saying what to set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...config import ConfigurationError

__all__ = ["SETTINGS_KEYS", "STRIPE_JS_URL", "StripeSettings", "load_stripe_settings"]

PREFIX = "SUBSCRIPTIONS_STRIPE_"
STRIPE_JS_URL = "https://js.stripe.com/v3/"

#: key → (required, what a valid value looks like)
KEYS: dict[str, tuple[bool, str]] = {
    "SECRET_KEY": (True, "your secret API key, 'sk_live_…' or 'sk_test_…'"),
    "PUBLISHABLE_KEY": (True, "your publishable key, 'pk_live_…' or 'pk_test_…'"),
    "WEBHOOK_SECRET": (True, "the signing secret of your webhook endpoint, 'whsec_…'"),
    "API_BASE": (False, "None, or the base URL of a Stripe-compatible API (tests)"),
    "JS_URL": (False, "None, or the URL of Stripe.js (default: Stripe's, or API_BASE's)"),
}

#: The full names ``config.py`` lets through while Stripe is the gateway.
SETTINGS_KEYS: tuple[str, ...] = tuple(PREFIX + key for key in KEYS)

_KEY_PREFIXES = {
    "SECRET_KEY": ("sk_", "rk_"),
    "PUBLISHABLE_KEY": ("pk_",),
    "WEBHOOK_SECRET": ("whsec_",),
}


@dataclass(frozen=True)
class StripeSettings:
    secret_key: str
    publishable_key: str
    webhook_secret: str
    api_base: str | None
    js_url: str


def load_stripe_settings(config: Mapping[str, Any]) -> StripeSettings:
    unknown = sorted(k for k in config if k.startswith(PREFIX) and k[len(PREFIX) :] not in KEYS)
    if unknown:
        known = ", ".join(PREFIX + k for k in KEYS)
        raise ConfigurationError(f"Unknown setting {unknown[0]}: the Stripe settings are {known}.")
    values = {key: _checked(key, config.get(PREFIX + key)) for key in KEYS}
    api_base = values["API_BASE"].rstrip("/") if values["API_BASE"] else None
    # localstripe (and a Stripe mock in general) serves its own Stripe.js under the API base.
    default_js = f"{api_base}/js.stripe.com/v3/" if api_base else STRIPE_JS_URL
    return StripeSettings(
        secret_key=values["SECRET_KEY"],
        publishable_key=values["PUBLISHABLE_KEY"],
        webhook_secret=values["WEBHOOK_SECRET"],
        api_base=api_base,
        js_url=values["JS_URL"] or default_js,
    )


def _checked(key: str, value: Any) -> Any:
    required, expected = KEYS[key]
    if value is None and not required:
        return None
    prefixes = _KEY_PREFIXES.get(key, ("http://", "https://"))
    if not isinstance(value, str) or not value.strip() or not value.startswith(prefixes):
        raise ConfigurationError(f"Set {PREFIX}{key} to {expected} (got {_redacted(value)}).")
    return value


def _redacted(value: Any) -> str:
    """A secret that is set but malformed is not echoed into logs whole."""
    if isinstance(value, str) and len(value) > 8:
        return repr(value[:8] + "…")
    return repr(value)
