"""Each account's billing profile: currency, notification address, gateway customer."""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache

from sqlalchemy import ColumnElement, ScalarSelect, bindparam, select
from sqlalchemy.exc import IntegrityError

from ..accounts import BillingAccount
from ..errors import InvalidEmail
from ..i18n import normalize_locale
from ..models import BillingProfile
from ..state import get_state

_ACCOUNT = BillingProfile.account_id == bindparam("account_id")
#: Built once: building a statement costs about as much as running it.
_PROFILE = select(BillingProfile).where(_ACCOUNT)
_CURRENCY = select(BillingProfile.currency).where(_ACCOUNT)
_LOCALE = select(BillingProfile.locale).where(_ACCOUNT)


def find_profile(account_id: str) -> BillingProfile | None:
    return get_state().session.scalar(_PROFILE, {"account_id": account_id})


def profile_currency(account_id: str) -> str | None:
    """The currency the account bills in, once fixed by its first purchase (R-MON-3)."""
    return get_state().session.scalar(_CURRENCY, {"account_id": account_id})


def gateway_customer(account_id: str) -> str | None:
    """The account's customer reference at the payment service, if it has one."""
    return get_state().session.scalar(
        select(BillingProfile.gateway_customer).where(BillingProfile.account_id == account_id)
    )


def ensure_profile(account_id: str) -> BillingProfile:
    """The account's profile, created on first use; safe when two requests race to create it.

    Flushes but does not commit: the caller's transaction decides.
    """
    state = get_state()
    session = state.session
    profile = find_profile(account_id)
    if profile is not None:
        return profile
    try:
        with session.begin_nested():
            profile = BillingProfile(account_id=account_id, created_at=state.now())
            session.add(profile)
    except IntegrityError:
        profile = find_profile(account_id)
        assert profile is not None
    return profile


def billing_recipients(account: BillingAccount, profile: BillingProfile | None) -> list[str]:
    """The payment-notification address (if any) and every owner, each once (R-NOTE-2)."""
    return recipients_for(account, profile.billing_email if profile else None)


def recipients_for(account: BillingAccount, billing_email: str | None) -> list[str]:
    """As ``billing_recipients``, for a caller that read the profile's address itself."""
    seen: dict[str, str] = {}
    candidates = [billing_email] if billing_email else []
    candidates += list(account.billing_owner_emails())
    for address in candidates:
        clean = clean_address(address)
        if clean and clean.lower() not in seen:
            seen[clean.lower()] = clean
    return list(seen.values())


def clean_address(address: str | None) -> str | None:
    """An address that cannot smuggle a header or a second recipient into a message."""
    if not address or any(c in address for c in '\r\n,;<>"') or len(address) > 320:
        return None
    return _parsed_address(address)


@lru_cache(maxsize=4096)
def _parsed_address(address: str) -> str | None:
    """Remembered: a renewal batch checks the same owners' addresses for every receipt."""
    _name, parsed = parseaddr(address)
    if (
        parsed != address.strip()
        or "@" not in parsed
        or parsed.startswith("@")
        or parsed.endswith("@")
    ):
        return None
    return parsed


def set_billing_email(account_id: str, address: str | None) -> BillingProfile:
    """Register (or clear, with an empty value) the payment-notification address."""
    session = get_state().session
    value = (address or "").strip() or None
    if value is not None and clean_address(value) is None:
        raise InvalidEmail()
    try:
        profile = ensure_profile(account_id)
        profile.billing_email = value
        session.commit()
    except Exception:
        session.rollback()
        raise
    return profile


def account_locale(account: BillingAccount, profile: BillingProfile | None = None) -> str | None:
    """The language to write to ``account`` in (R-I18N-1): the host's own word for it (a
    ``billing_locale`` attribute on its model), else the one stored on the profile."""
    chosen = normalize_locale(getattr(account, "billing_locale", None))
    if chosen is not None:
        return chosen
    if profile is None:
        return stored_locale(account.billing_id)
    return profile.locale


def stored_locale(account_id: str) -> str | None:
    """The account's stored preferred language: one column, not the whole profile (a host's
    locale selector asks on every page)."""
    return get_state().session.scalar(_LOCALE, {"account_id": account_id})


def stored_locale_of(account_id: str | ColumnElement[str]) -> ScalarSelect[str | None]:
    """SQL: the stored preferred language of ``account_id`` (a value, or a column of the
    host's own statement), so a host can read it with a statement it runs anyway: the
    example app reads it with the signed-in person."""
    return (
        select(BillingProfile.locale)
        .where(BillingProfile.account_id == account_id)
        .scalar_subquery()
    )


def account_locales(account_ids: list[str]) -> dict[str, str]:
    """The stored preferred languages of many accounts, in one statement (a renewal batch)."""
    if not account_ids:
        return {}
    rows = get_state().session.execute(
        select(BillingProfile.account_id, BillingProfile.locale).where(
            BillingProfile.account_id.in_(account_ids), BillingProfile.locale.is_not(None)
        )
    )
    return {account_id: locale for account_id, locale in rows if locale}


def remember_locale(account_id: str, locale: str | None) -> None:
    """Store the account's preferred language when it is known (the language its owner
    buys in), so the e-mails a job sends later (a renewal's receipt) are written in it.
    One short transaction, only when it changes; an unknown value changes nothing."""
    value = normalize_locale(locale)
    if value is None or value == get_state().session.scalar(
        select(BillingProfile.locale).where(BillingProfile.account_id == account_id)
    ):
        return
    set_locale(account_id, value)


def set_locale(account_id: str, locale: str | None) -> BillingProfile:
    """Set (or clear, with None) the account's preferred language, and commit."""
    session = get_state().session
    try:
        profile = ensure_profile(account_id)
        profile.locale = normalize_locale(locale)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return profile
