"""Registering and managing cards (R-BUY-4, R-BUY-10). Card numbers never come here: the
person types them into the payment service's own form; we keep its reference (R-SEC-1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Integer, bindparam, func, select, update

from .. import signals
from ..accounts import BillingAccount
from ..errors import (
    CardRegistrationFailed,
    NotFound,
    PaymentMethodRequired,
    PaymentServiceUnavailable,
)
from ..gateways.base import CardSetup, CardSetupFailed, GatewayError
from ..models import BillingProfile, Payment, PaymentMethod, Plan, Subscription
from ..state import get_state
from . import _tx
from ._sql import among, mostly, updated
from .profiles import billing_recipients, ensure_profile


def is_expired(method: PaymentMethod, today: date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (method.exp_year, method.exp_month) < (today.year, today.month)


def list_methods(account_id: str) -> list[PaymentMethod]:
    return list(get_state().session.scalars(_METHODS, {"account_id": account_id}))


def usable_methods(account_id: str) -> list[PaymentMethod]:
    today = get_state().today()
    return [m for m in list_methods(account_id) if not is_expired(m, today)]


def default_method_id(account_id: str) -> int | None:
    """The default card (R-DUN-5): the one the owner last set as default on the payment
    methods page; until they set one, the card that last paid. A card that was declined,
    or only registered, is never the default by itself. One statement."""
    found: int | None = get_state().session.scalar(_DEFAULT, {"account_id": account_id})
    return found


def preselected_method_id(account_id: str, offered: Sequence[PaymentMethod]) -> int | None:
    """The card a payment form selects first: the default, else the newest card offered.
    Only a convenience of the form: it does not make that card the default (R-DUN-5)."""
    default = default_method_id(account_id)
    if default is not None or not offered:
        return default
    return offered[-1].id


@dataclass(frozen=True)
class Cards:
    """The account's registered cards, the default card's id (:func:`default_method_id`) and
    the payment-notification address (R-NOTE-2): what the payment methods page shows."""

    methods: list[PaymentMethod]
    default_id: int | None
    billing_email: str | None


def methods_and_default(account_id: str) -> Cards:
    """:class:`Cards`, from one statement whether or not the account has a card."""
    params = {"account_id": account_id}
    rows = get_state().session.execute(_METHODS_AND_DEFAULT, params).all()
    if not rows:
        default_id, email = get_state().session.execute(_NO_METHODS, params).one()
        return Cards([], default_id, email)
    return Cards([row[0] for row in rows], rows[0][1], rows[0][2])


def usable_and_preselected(account_id: str) -> tuple[list[PaymentMethod], int | None]:
    """:func:`usable_methods` and :func:`preselected_method_id` in one statement."""
    cards = methods_and_default(account_id)
    today = get_state().today()
    usable = [m for m in cards.methods if not is_expired(m, today)]
    default = cards.default_id
    return usable, default if default is not None or not usable else usable[-1].id


def _default_id(account_id: Any) -> ColumnElement[Any]:
    """SQL: the default card's id (see :func:`default_method_id`), to read or to join;
    ``account_id`` a value or a bound parameter."""
    chosen = (
        select(BillingProfile.default_payment_method_id)
        .where(BillingProfile.account_id == account_id)
        .scalar_subquery()
    )
    last_paid = (
        select(Payment.payment_method_id)
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .where(
            Payment.account_id == account_id,
            Payment.purpose == "charge",
            mostly(Payment.status == "succeeded"),
            PaymentMethod.removed_at.is_(None),
        )
        .order_by(Payment.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(chosen, last_paid)


#: The pages' statements, built once: building one costs about as much as running it.
_METHODS = (
    select(PaymentMethod)
    .where(PaymentMethod.account_id == bindparam("account_id"), PaymentMethod.removed_at.is_(None))
    .order_by(PaymentMethod.id)
)
_DEFAULT = select(_default_id(bindparam("account_id")))
_BILLING_EMAIL = (
    select(BillingProfile.billing_email)
    .where(BillingProfile.account_id == bindparam("account_id"))
    .scalar_subquery()
)
_METHODS_AND_DEFAULT = _METHODS.add_columns(_default_id(bindparam("account_id")), _BILLING_EMAIL)
_NO_METHODS = select(_default_id(bindparam("account_id")), _BILLING_EMAIL)
_RENEWAL_METHOD = select(PaymentMethod).where(
    PaymentMethod.id
    == func.coalesce(_default_id(bindparam("account_id")), bindparam("method_id", type_=Integer))
)


def last_paid_methods(account_ids: Sequence[str], excluding: int | None = None) -> dict[str, int]:
    """Per account, the card (still registered, and not ``excluding``) of its latest
    successful charge: a purchase, a change, a settlement or a renewal. One statement for a
    batch of accounts."""
    if not account_ids:
        return {}
    latest = (
        select(func.max(Payment.id))
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .where(
            among(Payment.account_id, account_ids),
            Payment.purpose == "charge",
            mostly(Payment.status == "succeeded"),
            PaymentMethod.removed_at.is_(None),
            PaymentMethod.id != (excluding or 0),
        )
        .group_by(Payment.account_id)
    )
    rows = get_state().session.execute(
        select(Payment.account_id, Payment.payment_method_id).where(Payment.id.in_(latest))
    )
    return {row.account_id: row.payment_method_id for row in rows if row.payment_method_id}


def renewal_method_id(
    chosen_id: int | None, last_paid_id: int | None, license_method_id: int | None
) -> int | None:
    """Which card pays renewals (R-DUN-5): the owner's chosen default, else the card that
    last paid, else the license's own (the card it was bought with)."""
    return chosen_id or last_paid_id or license_method_id


def can_pay(method: Any, today: date) -> bool:
    """A card (a model or a row of its columns) that may be charged today."""
    return method is not None and method.removed_at is None and not is_expired(method, today)


def renewal_method(subscription: Subscription) -> PaymentMethod | None:
    """The card that pays the license's renewals (:func:`renewal_method_id`), if it can pay
    today. One statement."""
    state = get_state()
    method = state.session.scalar(
        _RENEWAL_METHOD,
        {"account_id": subscription.account_id, "method_id": subscription.payment_method_id},
    )
    return method if can_pay(method, state.today()) else None


def renews_without_card(subscription: Subscription, card: PaymentMethod | None) -> bool:
    """An auto-renewing license, not in dunning, whose next renewal no card can pay: its
    page says so while there is still time to register one. ``card``: the one that would
    pay it (:func:`renewal_card_id`), read with the license."""
    return (
        subscription.state == "active"
        and subscription.auto_renew
        and subscription.payment_failed_on is None
        and not can_pay(card, get_state().today())
    )


def renewal_card_id(account_id: Any, license_method_id: Any) -> ColumnElement[Any]:
    """SQL: the id of the card that pays a license's renewals (:func:`renewal_method_id`),
    for a statement that reads the license (columns of it, or values)."""
    return func.coalesce(_default_id(account_id), license_method_id)


@dataclass(frozen=True)
class RenewalAtRisk:
    """A license whose next renewal would fail if a card were removed."""

    subscription: Subscription
    plan: Plan


def renewals_left_without_card(account_id: str, method_id: int) -> list[RenewalAtRisk]:
    """The account's auto-renewing paid licenses that no card could renew once this card
    is gone: the owner is warned before removing it."""
    state = get_state()
    session = state.session
    licenses = session.execute(
        select(Subscription, Plan)
        .join(Plan, Plan.id == func.coalesce(Subscription.next_plan_id, Subscription.plan_id))
        .where(
            Subscription.account_id == account_id,
            Subscription.state == "active",
            Subscription.auto_renew.is_(True),
            Plan.is_free.is_(False),
        )
    ).all()
    if not licenses:
        return []
    chosen = session.scalar(
        select(BillingProfile.default_payment_method_id).where(
            BillingProfile.account_id == account_id
        )
    )
    last_paid = last_paid_methods([account_id], excluding=method_id).get(account_id)
    at_risk = []
    for subscription, plan in licenses:
        own = subscription.payment_method_id
        card_id = renewal_method_id(
            chosen if chosen != method_id else None,
            last_paid,
            own if own != method_id else None,
        )
        card = session.get(PaymentMethod, card_id) if card_id else None
        if not can_pay(card, state.today()):
            at_risk.append(RenewalAtRisk(subscription, plan))
    return at_risk


def find_method(account: BillingAccount, method_id: int) -> PaymentMethod:
    """The account's own registered card; anyone else's is "not found" (R-SEC-2)."""
    return _owned(account, method_id)


def start_registration(account: BillingAccount, return_url: str) -> CardSetup:
    """Create the gateway customer once, then ask the service for its card form."""
    try:
        customer = _ensure_customer(account)
        return get_state().require_gateway().start_card_setup(customer, return_url)
    except GatewayError as exc:
        raise PaymentServiceUnavailable() from exc


def finish_registration(account: BillingAccount, setup_reference: str) -> PaymentMethod:
    """Keep the reference of the card the service registered. It is not the default by
    itself (R-DUN-5): it becomes the default when the owner sets it, or when it pays.

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
    ensure_profile(account.billing_id)
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
    _forget(method.id, account.billing_id)


def forget_detached(gateway: str, token: str) -> bool:
    """The service says the card can no longer be charged (removed in its dashboard, say):
    forget it as if the owner had removed it here. False if it was already forgotten."""
    session = get_state().session
    found = session.execute(
        select(PaymentMethod.id, PaymentMethod.account_id).where(
            PaymentMethod.gateway == gateway,
            PaymentMethod.token == token,
            PaymentMethod.removed_at.is_(None),
        )
    ).first()
    if found is None:
        session.commit()
        return False
    return _forget(found.id, found.account_id)


def _forget(method_id: int, account_id: str) -> bool:
    """Mark the card removed and, if the owner had chosen it as the default, forget that
    choice: the card that last paid is the default again (R-DUN-5), never one the owner did
    not choose. The one rule for both ways a card goes (here, or at the service)."""
    state = get_state()
    claimed = updated(
        update(PaymentMethod)
        .where(PaymentMethod.id == method_id, PaymentMethod.removed_at.is_(None))
        .values(removed_at=state.now())
        .execution_options(synchronize_session=False)
    )
    if claimed != 1:  # a concurrent removal (the owner, or the service's webhook) won
        _tx.rollback()
        return False
    state.session.execute(
        update(BillingProfile)
        .where(
            BillingProfile.account_id == account_id,
            BillingProfile.default_payment_method_id == method_id,
        )
        .values(default_payment_method_id=None)
        .execution_options(synchronize_session=False)
    )
    _tx.after_commit(lambda: _signal("payment_method_removed", account_id, method_id))
    _tx.commit()
    return True


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
