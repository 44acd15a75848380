"""Support's actions on any account (R-OPS-1), each through the owner's own services: plan
changes, credit, refunds and e-mail here; terms and dunning in ``support_licenses``.

Every action here takes who acts, the form's idempotency key and a reason, and runs inside
:func:`.audit.audited`: claimed once, audited with the account before and after. Where
money moves, the owner's path does the moving: a plan change is ``changes.apply_change``
with the options check lifted (R-LIC-7), a retry is the dunning job's own retry, credits
are ledger entries through ``balance.append_entry``, a card refund is the gateway's
``refund`` recorded by ``refund_records.record_refund``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select

from ..accounts import BillingAccount
from ..core.money import format_money, to_minor
from ..errors import NotFound, PaymentServiceUnavailable, SupportActionRefused
from ..gateways.base import GatewayError
from ..models import (
    Invoice,
    OutboxMessage,
    Payment,
    PlanChange,
)
from ..state import get_state
from . import _tx
from .audit import Actor, audited
from .balance import append_entry, current_balance
from .changes import ChangeQuote, ChangeRequest, apply_change, quote_for
from .licenses import find_license, update_license
from .payment_methods import default_method_id
from .profiles import profile_currency
from .refund_records import record_refund

#: Bounds of what support may type (R-SEC-4): no credit over this many minor units.
MAX_AMOUNT = 10**11
#: Refund rows of a charge that count against what may still be refunded.
LIVE_REFUNDS = ("pending", "succeeded")


def support_account(account_id: str) -> BillingAccount:
    """The host's account, or NotFound: support acts on accounts the host knows."""
    account = get_state().load_account(account_id)
    if account is None:
        raise NotFound()
    return account


# --- plan changes (R-LIC-7) ----------------------------------------------------------------


def change_quote(account_id: str, subscription_id: int, request: ChangeRequest) -> ChangeQuote:
    """The owner's quote for a change to any plan: shown before support confirms."""
    account = support_account(account_id)
    request = _resolved(account_id, subscription_id, request)
    return quote_for(account, subscription_id, request, any_plan=True)


def _resolved(account_id: str, subscription_id: int, request: ChangeRequest) -> ChangeRequest:
    """No interval asked for means the one the license has."""
    if request.interval:
        return request
    interval = find_license(account_id, subscription_id).subscription.interval
    return replace(request, interval=interval)


def change_plan_now(
    actor: Actor,
    key: str,
    account_id: str,
    subscription_id: int,
    request: ChangeRequest,
    fingerprint: str,
    reason: str,
) -> PlanChange:
    """Execute the quote support saw; the card that pays any rest is the account's default."""
    account = support_account(account_id)
    request = _resolved(account_id, subscription_id, request)
    details = _change_details(subscription_id, request, "now")
    return audited(
        actor,
        key,
        account_id,
        "change_plan",
        reason,
        details,
        lambda: apply_change(
            account,
            subscription_id,
            request,
            fingerprint,
            default_method_id(account_id),
            any_plan=True,
        ),
    )


def change_plan_at_renewal(
    actor: Actor, key: str, account_id: str, subscription_id: int, plan_code: str, reason: str
) -> None:
    """Schedule any plan for the next renewal, through the license page's own service."""
    account = support_account(account_id)
    request = ChangeRequest(plan_code, "", ())
    details = _change_details(subscription_id, request, "renewal")

    def run() -> None:
        license_ = find_license(account_id, subscription_id)
        if not license_.subscription.auto_renew:
            raise SupportActionRefused(code="renewal_change_needs_enabled")
        update_license(
            account, subscription_id, auto_renew=True, renew_with=plan_code, any_plan=True
        )

    audited(actor, key, account_id, "schedule_plan", reason, details, run)


def _change_details(subscription_id: int, request: ChangeRequest, when: str) -> dict[str, object]:
    return {
        "license": subscription_id,
        "plan": request.plan_code,
        "interval": request.interval or None,
        "addons": list(request.addon_codes),
        "when": when,
    }


# --- balance (R-BAL-1) ----------------------------------------------------------------------


def account_currency(account_id: str) -> str:
    """The account's billing currency (R-MON-3): credit can only be kept in it."""
    currency = profile_currency(account_id) or current_balance(account_id).currency
    if currency is None:
        raise SupportActionRefused(code="account_has_no_currency")
    return currency


def parse_amount(text: str, currency: str) -> int:
    """Major units as typed ("10.00") to minor units; anything else is refused (R-SEC-4)."""
    try:
        amount = to_minor(text or "", currency)
    except ValueError:
        raise SupportActionRefused(code="amount_invalid", currency=currency) from None
    if not 0 < amount <= MAX_AMOUNT:
        raise SupportActionRefused(code="amount_invalid", currency=currency)
    return amount


def adjust_credit(
    actor: Actor, key: str, account_id: str, amount_text: str, reason: str, *, grant: bool
) -> int:
    """Grant (``grant``) or remove balance credit; a removal never takes it below zero."""
    support_account(account_id)
    currency = account_currency(account_id)
    amount = parse_amount(amount_text, currency)
    action = "grant_credit" if grant else "remove_credit"

    def run() -> int:
        if grant:
            append_entry(account_id, "credit", amount, currency, "Credit granted by support")
        else:
            append_entry(account_id, "use", -amount, currency, "Credit removed by support")
        _tx.commit()
        return amount

    details = {"amount": amount, "currency": currency}
    return audited(actor, key, account_id, action, reason, details, run)


# --- refunds --------------------------------------------------------------------------------


def refundable(payment: Payment) -> int:
    """What is left of a charge to refund: its amount less every live refund of it."""
    refunded = get_state().session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.refund_of_id == payment.id, Payment.status.in_(LIVE_REFUNDS)
        )
    )
    return payment.amount - int(refunded or 0)


def refundable_charge(account_id: str, payment_id: int) -> Payment:
    payment = get_state().session.get(Payment, payment_id)
    if (
        payment is None
        or payment.account_id != account_id
        or payment.purpose != "charge"
        or payment.status != "succeeded"
    ):
        raise SupportActionRefused(code="payment_not_refundable")
    return payment


def refund(
    actor: Actor,
    key: str,
    account_id: str,
    payment_id: int,
    amount_text: str,
    to: str,
    reason: str,
) -> int:
    """Refund a charge, whole or in part, to the balance or to the card (through the
    gateway, outside any transaction). Nothing is refunded beyond what was charged."""
    support_account(account_id)
    payment = refundable_charge(account_id, payment_id)
    amount = parse_amount(amount_text, payment.currency)
    if to not in ("balance", "card"):
        raise SupportActionRefused()
    details = {"payment": payment_id, "amount": amount, "currency": payment.currency, "to": to}

    def run() -> int:
        charge = refundable_charge(account_id, payment_id)
        left = refundable(charge)
        if amount > left:
            raise SupportActionRefused(
                code="refund_too_large", refundable=shown_money(left, charge.currency)
            )
        if to == "balance":
            _refund_to_balance(charge, amount, key)
        else:
            _refund_to_card(charge, amount, key)
        return amount

    return audited(actor, key, account_id, "refund", reason, details, run)


def _refund_to_balance(charge: Payment, amount: int, key: str) -> None:
    """A refund row of the charge (so what is left to refund counts it) and the credit."""
    state = get_state()
    now = state.now()
    number = state.session.scalar(select(Invoice.number).where(Invoice.id == charge.invoice_id))
    state.session.add(
        Payment(
            idempotency_key=f"refund:balance:{key}",
            account_id=charge.account_id,
            refund_of_id=charge.id,
            purpose="refund",
            attempt=1,
            gateway="balance",
            amount=amount,
            currency=charge.currency,
            status="succeeded",
            message="Refunded to the balance by support.",
            created_at=now,
            updated_at=now,
        )
    )
    append_entry(
        charge.account_id,
        "credit",
        amount,
        charge.currency,
        f"Refund of a payment (invoice {number or '—'})",
        invoice_id=charge.invoice_id,
    )
    _tx.commit()


def _refund_to_card(charge: Payment, amount: int, key: str) -> None:
    """The gateway refunds with a key from the audit entry's, so a retry of the same
    action is the same refund; its answer is recorded as any refund the service reports."""
    state = get_state()
    gateway = state.require_gateway()
    charge_id, currency = charge.charge_id or "", charge.currency
    state.session.commit()  # no transaction stays open while the service answers
    try:
        result = gateway.refund(charge_id, amount, f"support-refund:{key}")
    except GatewayError:
        raise PaymentServiceUnavailable() from None
    if result.status == "failed" or result.refund_id is None:
        raise SupportActionRefused(code="refund_failed", reason=result.message or "")
    record_refund(gateway.name, charge_id, result.refund_id, amount, currency, result.status)


# --- e-mail ---------------------------------------------------------------------------------


def send_again(actor: Actor, key: str, account_id: str, message_id: int, reason: str) -> None:
    """A sent e-mail goes again as a new message; a dead one is retried from scratch. The
    outbox job delivers either, with its retries (R-NOTE-3)."""
    support_account(account_id)

    def run() -> None:
        state = get_state()
        message = state.session.get(OutboxMessage, message_id)
        if message is None or message.account_id != account_id:
            raise SupportActionRefused(code="email_not_found")
        now = state.now()
        if message.status == "sent":
            state.session.add(_copy(message, now))
        elif message.status == "dead":
            message.status, message.attempts, message.next_attempt_at = "pending", 0, now
            message.claimed_by = message.claimed_until = None
        else:
            raise SupportActionRefused(code="email_not_sent_or_dead")
        _tx.commit()

    audited(actor, key, account_id, "send_email", reason, {"email": message_id}, run)


def _copy(message: OutboxMessage, now: datetime) -> OutboxMessage:
    return OutboxMessage(
        account_id=message.account_id,
        kind=message.kind,
        recipients=list(message.recipients),
        subject=message.subject,
        text_body=message.text_body,
        html_body=message.html_body,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def shown_money(amount: int, currency: str) -> str:
    """An amount as a refusal's sentence shows it (R-MON-4)."""
    return format_money(amount, currency, get_state().settings.locale)
