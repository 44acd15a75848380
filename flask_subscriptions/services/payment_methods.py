"""Registering and managing cards (R-BUY-4, R-BUY-10). Card numbers never come here: the
person types them into the payment service's own form; we keep its reference (R-SEC-1)."""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import select, update

from .. import signals
from ..accounts import BillingAccount
from ..errors import (
    CardRegistrationFailed,
    NotFound,
    PaymentMethodRequired,
    PaymentServiceUnavailable,
)
from ..gateways.base import CardSetup, CardSetupFailed, GatewayError
from ..models import BillingProfile, PaymentMethod, Subscription
from ..state import get_state
from . import _tx
from .accounts import billing_recipients, ensure_profile


def is_expired(method: PaymentMethod, today: date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (method.exp_year, method.exp_month) < (today.year, today.month)


def list_methods(account_id: str) -> list[PaymentMethod]:
    return list(
        get_state().session.scalars(
            select(PaymentMethod)
            .where(PaymentMethod.account_id == account_id, PaymentMethod.removed_at.is_(None))
            .order_by(PaymentMethod.id)
        )
    )


def usable_methods(account_id: str) -> list[PaymentMethod]:
    today = get_state().today()
    return [m for m in list_methods(account_id) if not is_expired(m, today)]


def default_method_id(account_id: str) -> int | None:
    return get_state().session.scalar(
        select(BillingProfile.default_payment_method_id).where(
            BillingProfile.account_id == account_id
        )
    )


def start_registration(account: BillingAccount, return_url: str) -> CardSetup:
    """Create the gateway customer once, then ask the service for its card form."""
    try:
        customer = _ensure_customer(account)
        return get_state().require_gateway().start_card_setup(customer, return_url)
    except GatewayError as exc:
        raise PaymentServiceUnavailable() from exc


def finish_registration(account: BillingAccount, setup_reference: str) -> PaymentMethod:
    """Keep the reference of the card the service registered; the first card is the default.

    Coming back to the same return URL twice registers the card once.
    """
    state = get_state()
    session = state.session
    gateway = state.require_gateway()
    try:
        customer = _ensure_customer(account)
        info = gateway.finish_card_setup(customer, setup_reference)
    except CardSetupFailed as exc:
        raise (
            CardRegistrationFailed(code="gateway_refused", reason=exc.message)
            if exc.message
            else CardRegistrationFailed()
        ) from exc
    except GatewayError as exc:
        raise PaymentServiceUnavailable() from exc
    existing = session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.gateway == gateway.name, PaymentMethod.token == info.token
        )
    )
    if existing is not None:
        if existing.account_id != account.billing_id:
            raise NotFound()
        return existing
    method = PaymentMethod(
        account_id=account.billing_id,
        gateway=gateway.name,
        token=info.token,
        brand=info.brand,
        last4=info.last4,
        exp_month=info.exp_month,
        exp_year=info.exp_year,
        created_at=state.now(),
    )
    session.add(method)
    session.flush()
    profile = ensure_profile(account.billing_id)
    if profile.default_payment_method_id is None:
        profile.default_payment_method_id = method.id
    note_payment_method_update(account.billing_id)
    _tx.after_commit(lambda: _signal("payment_method_added", account.billing_id, method.id))
    _tx.commit()
    return method


def set_default(account: BillingAccount, method_id: int) -> PaymentMethod:
    """The default card pays automatic renewals (R-BUY-10)."""
    state = get_state()
    method = _owned(account, method_id)
    if is_expired(method, state.today()):
        raise PaymentMethodRequired(code="card_expired")
    profile = ensure_profile(account.billing_id)
    profile.default_payment_method_id = method.id
    note_payment_method_update(account.billing_id)
    _tx.commit()
    return method


def remove(account: BillingAccount, method_id: int) -> None:
    """Detach the card at the service, then forget it here; another card becomes default."""
    state = get_state()
    session = state.session
    method = _owned(account, method_id)
    session.commit()
    try:
        state.require_gateway().remove_payment_method(method.token)
    except GatewayError as exc:
        raise PaymentServiceUnavailable() from exc
    method.removed_at = state.now()
    profile = ensure_profile(account.billing_id)
    if profile.default_payment_method_id == method.id:
        others = [m for m in usable_methods(account.billing_id) if m.id != method.id]
        profile.default_payment_method_id = others[0].id if others else None
    _tx.after_commit(lambda: _signal("payment_method_removed", account.billing_id, method.id))
    _tx.commit()


def note_payment_method_update(account_id: str) -> None:
    """R-DUN-2: an owner updated the card; the next dunning run retries (in the caller's
    transaction)."""
    state = get_state()
    state.session.execute(
        update(Subscription)
        .where(
            Subscription.account_id == account_id,
            Subscription.state == "active",
            Subscription.payment_failed_on.is_not(None),
        )
        .values(payment_method_updated_at=state.now())
    )


def _owned(account: BillingAccount, method_id: int) -> PaymentMethod:
    # An id from a URL may not fit the id column's 32-bit INTEGER (PostgreSQL: "integer out
    # of range"; SQLite: OverflowError): either would be a 500, not a 404.
    fits = 0 < method_id < 2**31
    method = get_state().session.get(PaymentMethod, method_id) if fits else None
    if method is None or method.account_id != account.billing_id or method.removed_at is not None:
        raise NotFound()
    return method


def _ensure_customer(account: BillingAccount) -> str:
    """The gateway customer, created at most once per account (a conditional UPDATE)."""
    state = get_state()
    session = state.session
    account_id = account.billing_id
    profile = ensure_profile(account_id)
    profile_id, customer = profile.id, profile.gateway_customer
    emails = billing_recipients(account, profile)
    session.commit()  # the gateway is called with no transaction open (nor a lazy load after)
    if customer:
        return customer
    customer = state.require_gateway().create_customer(account_id, emails[0] if emails else None)
    session.execute(
        update(BillingProfile)
        .where(BillingProfile.id == profile_id, BillingProfile.gateway_customer.is_(None))
        .values(gateway_customer=customer)
    )
    stored = session.scalar(
        select(BillingProfile.gateway_customer).where(BillingProfile.id == profile_id)
    )
    session.commit()
    return stored or customer


def _signal(name: str, account_id: str, method_id: int) -> None:
    getattr(signals, name).send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account_id=account_id,
        payment_method_id=method_id,
    )
