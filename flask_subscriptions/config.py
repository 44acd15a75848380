"""Configuration: one ``DEFAULTS`` table, validated once when the extension starts.

Every key is read from ``app.config["SUBSCRIPTIONS_" + KEY]``. A key we do not know, or a
value of the wrong type, stops the app at start with a message that says what to set:
a typo in billing configuration must never fall back silently to a default.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

PREFIX = "SUBSCRIPTIONS_"

#: key → (default, check, what a valid value looks like)
DEFAULTS: dict[str, Any] = {
    "URL_PREFIX": "/billing",
    "BASE_TEMPLATE": "subscriptions/_base.html",
    "TIMEZONE": "UTC",
    "LOCALE": "en_US",
    "DEFAULT_CURRENCY": "USD",
    "REGISTER_BLUEPRINTS": True,
    "SQLITE_BEGIN": "IMMEDIATE",
    "SCHEDULER_ENABLED": True,
    "SCHEDULER_LEASE_SECONDS": 180,
    "DUNNING_POLICY": "restrict",
    "GRACE_DAYS": None,
    "GRACE_WARNING_DAYS": 2,
    "RETRY_AFTER_UPDATE_MINUTES": 15,
    "CONTACT_SUPPORT_AFTER_HOURS": 24,
    "WITHDRAWAL_FEE_PERCENT": 10,
    "RENEWAL_CONCURRENCY": 8,
    "RENEWAL_BATCH_SIZE": 500,
    "DUNNING_BATCH_SIZE": 100,
    "CLAIM_LEASE_SECONDS": 300,
    "MAIL_SENDER": None,
    "MAIL_MAX_ATTEMPTS": 8,
    "MAIL_BATCH_SIZE": 50,
    "SUPPORT_EMAIL": None,
    "FEATURE_REFUSED": "page",
    "FEATURE_REFUSED_REDIRECT": None,
    "SELLER_NAME": None,
    "SELLER_ADDRESS": None,
    "SELLER_TAX_ID": None,
    "REQUIRE_MAIL": False,
    "ENTITLEMENTS_TTL": 1.0,
    "ENTITLEMENTS_CACHE_SIZE": 10_000,
    "PAGE_SIZE": 25,
    "PDF_FONT": None,
}

#: The grace each dunning policy gets when GRACE_DAYS is not set (R-DUN-1, R-DUN-2).
POLICY_GRACE_DAYS = {"restrict": 7, "free": 10}


class ConfigurationError(RuntimeError):
    """Raised at start-up when a ``SUBSCRIPTIONS_*`` setting is unknown or invalid."""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 3600


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _percent(value: Any) -> bool:
    return isinstance(value, int | Fraction) and not isinstance(value, bool) and 0 <= value < 100


def _locale(value: Any) -> bool:
    """A locale Babel has CLDR data for: money is formatted with it on every page (R-MON-4),
    so an unknown one must stop the app at start, not make every billing page a 500."""
    if not isinstance(value, str) or not value:
        return False
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


def _timezone(value: Any) -> bool:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, TypeError, ValueError):
        return False
    return True


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "URL_PREFIX": (lambda v: isinstance(v, str) and v.startswith("/"), "a path like '/billing'"),
    "BASE_TEMPLATE": (lambda v: isinstance(v, str) and bool(v), "a template name"),
    "TIMEZONE": (_timezone, "an IANA time zone name like 'UTC' or 'Asia/Tokyo'"),
    "LOCALE": (_locale, "a locale Babel knows, like 'en_US', 'ja_JP' or 'ko_KR'"),
    "DEFAULT_CURRENCY": (
        lambda v: isinstance(v, str) and len(v) == 3 and v.isupper(),
        "an ISO 4217 code like 'USD'",
    ),
    "REGISTER_BLUEPRINTS": (lambda v: isinstance(v, bool), "True or False"),
    "SQLITE_BEGIN": (
        lambda v: v in (None, "IMMEDIATE", "DEFERRED", "EXCLUSIVE"),
        "'IMMEDIATE', 'DEFERRED', 'EXCLUSIVE' or None",
    ),
    "SCHEDULER_ENABLED": (lambda v: isinstance(v, bool), "True or False"),
    "SCHEDULER_LEASE_SECONDS": (_positive_int, "a whole number of seconds"),
    "DUNNING_POLICY": (lambda v: v in POLICY_GRACE_DAYS, "'restrict' or 'free'"),
    "GRACE_DAYS": (lambda v: v is None or _positive_int(v), "None or a whole number of days"),
    "GRACE_WARNING_DAYS": (_non_negative_int, "a whole number of days"),
    "RETRY_AFTER_UPDATE_MINUTES": (_positive_int, "a whole number of minutes"),
    "CONTACT_SUPPORT_AFTER_HOURS": (_positive_int, "a whole number of hours"),
    "WITHDRAWAL_FEE_PERCENT": (_percent, "a whole number (or Fraction) from 0 to 99"),
    "RENEWAL_CONCURRENCY": (_positive_int, "a whole number ≥ 1"),
    "RENEWAL_BATCH_SIZE": (_positive_int, "a whole number ≥ 1"),
    "DUNNING_BATCH_SIZE": (_positive_int, "a whole number ≥ 1"),
    "CLAIM_LEASE_SECONDS": (_positive_int, "a whole number of seconds"),
    "MAIL_SENDER": (_optional_str, "None or an address like 'billing@example.com'"),
    "MAIL_MAX_ATTEMPTS": (_positive_int, "a whole number ≥ 1"),
    "MAIL_BATCH_SIZE": (_positive_int, "a whole number ≥ 1"),
    "SUPPORT_EMAIL": (_optional_str, "None or an address"),
    "FEATURE_REFUSED": (
        lambda v: v in ("page", "redirect") or callable(v),
        "'page', 'redirect' or a callable(feature, entitlement) returning a response",
    ),
    "FEATURE_REFUSED_REDIRECT": (_optional_str, "None or a URL or endpoint name"),
    "SELLER_NAME": (_optional_str, "None or the seller's name as receipts print it"),
    "SELLER_ADDRESS": (_optional_str, "None or the seller's address (one line per line)"),
    "SELLER_TAX_ID": (_optional_str, "None or the seller's tax id (VAT, GST, 登録番号)"),
    "REQUIRE_MAIL": (lambda v: isinstance(v, bool), "True or False"),
    "ENTITLEMENTS_TTL": (_seconds, "a number of seconds from 0 to 3600, like 1.0"),
    "ENTITLEMENTS_CACHE_SIZE": (_positive_int, "a whole number of accounts ≥ 1"),
    "PAGE_SIZE": (lambda v: _positive_int(v) and v <= 500, "a whole number from 1 to 500"),
    "PDF_FONT": (
        lambda v: v is None or (isinstance(v, str | PathLike) and Path(v).is_file()),
        "None (a Debian CJK font is looked for) or the path of a TrueType / OpenType font "
        "file with the receipts' glyphs, like '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc'",
    ),
}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app (kept in ``app.extensions['subscriptions']``)."""

    url_prefix: str
    base_template: str
    timezone: str
    locale: str
    default_currency: str
    register_blueprints: bool
    sqlite_begin: str | None
    scheduler_enabled: bool
    #: How long the process running the in-app jobs keeps that role without a tick.
    scheduler_lease_seconds: int
    dunning_policy: str
    grace_days: int
    grace_warning_days: int
    retry_after_update_minutes: int
    contact_support_after_hours: int
    withdrawal_fee_percent: int | Fraction
    renewal_concurrency: int
    renewal_batch_size: int
    dunning_batch_size: int
    claim_lease_seconds: int
    mail_sender: str | None
    mail_max_attempts: int
    mail_batch_size: int
    support_email: str | None
    feature_refused: Any
    feature_refused_redirect: str | None
    #: Who the receipts say was paid (R-INV-2).
    seller_name: str | None
    seller_address: str | None
    seller_tax_id: str | None
    #: Refuse to start without a mail server or MAIL_SUPPRESS_SEND (else only a warning).
    require_mail: bool
    #: How long a process trusts the entitlements it keeps without asking the database
    #: whether they changed (0: ask on every request). Its own changes it sees at once.
    entitlements_ttl: float
    #: How many accounts' entitlements each process keeps (the least recently used go).
    entitlements_cache_size: int
    #: Rows per page of the long lists: history, ledger, e-mails, the console's lists.
    page_size: int
    #: The Unicode font of Japanese and Korean receipts (None: a Debian CJK font if found).
    pdf_font: str | PathLike[str] | None


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every missing ``SUBSCRIPTIONS_*`` key, so ``app.config`` shows the real values."""
    for key, value in DEFAULTS.items():
        config.setdefault(PREFIX + key, value)


def load_settings(config: Mapping[str, Any], gateway_keys: Collection[str] = ()) -> Settings:
    """Validate the app's ``SUBSCRIPTIONS_*`` keys and freeze them.

    ``gateway_keys`` are the full names of the settings the gateway in use reads (its
    ``settings_keys``, e.g. ``SUBSCRIPTIONS_STRIPE_SECRET_KEY``); any other key under our
    prefix is a typo, whatever gateway it looks like it is meant for.
    """
    allowed = {PREFIX + k for k in DEFAULTS} | set(gateway_keys)
    unknown = sorted(k for k in config if k.startswith(PREFIX) and k not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ConfigurationError(f"Unknown setting {unknown[0]}: the settings are {known}.")
    values: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        value = config.get(PREFIX + key, default)
        check, expected = _CHECKS[key]
        if not check(value):
            raise ConfigurationError(f"Set {PREFIX}{key} to {expected} (got {value!r}).")
        values[key.lower()] = value
    if values["grace_days"] is None:
        values["grace_days"] = POLICY_GRACE_DAYS[values["dunning_policy"]]
    values["url_prefix"] = values["url_prefix"].rstrip("/") or "/"
    names = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in names})
