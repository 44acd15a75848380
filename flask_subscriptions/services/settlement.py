"""Settle overdue (R-DUN-3): everything unpaid in one payment, the restriction lifted at once.

The settlement is an invoice of its own whose lines are the open invoices it pays. Its
first transaction reserves each open invoice for it with a conditional UPDATE, so two
settlements (two tabs, a double click) cannot both pay the same invoice; a failed payment
gives the invoices back and changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from ..accounts import BillingAccount
from ..core.quotes import NothingToChange, Quote, quote_settlement
from ..errors import NothingUnpaid, PaymentMethodRequired, QuoteChanged, SettlementDeclined
from ..models import Invoice, Payment, Subscription
from ..state import get_state
from . import _tx
from ._sql import updated
from .balance import current_balance
from .dunning import clear_dunning
from .invoices import create_invoice, mark_paid, use_balance, void_and_return_balance
from .payment_methods import usable_methods
from .payments import (
    OutcomeHandlers,
    attempt_open,
    execute,
    open_payment,
    register_outcome_handlers,
)
from .renewals import mail_about


@dataclass(frozen=True)
class Settlement:
    """What the history page offers to pay."""

    invoices: tuple[Invoice, ...]
    quote: Quote | None


def unpaid_invoices(account_id: str) -> list[Invoice]:
    """Open renewal invoices, oldest first: the unpaid terms, restricted period included.

    Not one whose attempt is still open (waiting for 3-D Secure, in flight, or its outcome
    unknown): that attempt can still take the money, so settling the invoice too could take
    it twice. The person confirms it on its own page, or it is declined first.
    """
    return list(
        get_state().session.scalars(
            select(Invoice)
            .where(
                Invoice.account_id == account_id,
                Invoice.kind == "renewal",
                Invoice.status == "open",
                Invoice.paid_by_invoice_id.is_(None),
                ~attempt_open(),
            )
            .order_by(Invoice.period_start, Invoice.id)
        )
    )


def settlement_for(account_id: str) -> Settlement:
    invoices = unpaid_invoices(account_id)
    if not invoices:
        return Settlement((), None)
    return Settlement(tuple(invoices), _quote(account_id, invoices))


def _quote(account_id: str, invoices: list[Invoice]) -> Quote:
    balance = current_balance(account_id)
    currency = invoices[0].currency
    usable = balance.amount if balance.currency in (None, currency) else 0
    lines = [(i.id, f"Invoice {i.number}", i.amount_due) for i in invoices]
    return quote_settlement(lines, currency, usable)


def settle(account: BillingAccount, fingerprint: str, method_id: int | None) -> Invoice:
    """Pay every unpaid invoice in one payment, exactly as quoted (R-DUN-3)."""
    try:
        invoice, payment_id = _reserve(account, fingerprint, method_id)
    except BaseException:
        _tx.rollback()
        raise
    payment = (
        execute(payment_id, description=f"Settlement {invoice.number}") if payment_id else None
    )
    settled = get_state().session.get(Invoice, invoice.id)
    assert settled is not None
    if settled.status == "void":  # its charge was declined
        raise (
            SettlementDeclined(code="gateway_refused", reason=payment.message)
            if payment and payment.message
            else SettlementDeclined()
        )
    return settled


def _reserve(
    account: BillingAccount, fingerprint: str, method_id: int | None
) -> tuple[Invoice, int | None]:
    state = get_state()
    session = state.session
    invoices = unpaid_invoices(account.billing_id)
    if not invoices:
        raise NothingUnpaid()
    balance = current_balance(account.billing_id)
    try:
        quote = _quote(account.billing_id, invoices)
    except NothingToChange:
        raise NothingUnpaid() from None
    if quote.fingerprint != fingerprint:
        raise QuoteChanged()
    method = None
    if quote.card_amount > 0:
        method = {m.id: m for m in usable_methods(account.billing_id)}.get(method_id or 0)
        if method is None:
            raise PaymentMethodRequired()
    settlement = create_invoice(account.billing_id, "settlement", quote, subscription_id=None)
    for invoice in invoices:
        taken = updated(
            update(Invoice)
            .where(
                Invoice.id == invoice.id,
                Invoice.status == "open",
                Invoice.paid_by_invoice_id.is_(None),
            )
            .values(paid_by_invoice_id=settlement.id)
        )
        if taken != 1:
            raise QuoteChanged()
    use_balance(settlement, balance.seq, f"Used for settlement {settlement.number}")
    if method is None:
        _paid(settlement, None)
        _tx.commit()
        return settlement, None
    payment = open_payment(settlement, method, quote.card_amount)
    session.flush()
    _tx.commit()
    return settlement, payment.id


def _settled_invoices(settlement: Invoice) -> list[Invoice]:
    return list(
        get_state().session.scalars(
            select(Invoice).where(Invoice.paid_by_invoice_id == settlement.id).order_by(Invoice.id)
        )
    )


def _paid(settlement: Invoice, payment: Payment | None) -> None:
    """Every invoice it covers is paid, and each license is out of dunning at once."""
    session = get_state().session
    mark_paid(settlement)
    subscriptions: dict[int, Subscription] = {}
    for invoice in _settled_invoices(settlement):
        mark_paid(invoice)
        if invoice.subscription_id is not None:
            subscription = session.get(Subscription, invoice.subscription_id)
            assert subscription is not None
            subscriptions[subscription.id] = subscription
    session.flush()
    for subscription in subscriptions.values():
        clear_dunning(subscription)
        mail_about(
            "settled",
            subscription,
            settlement,
            payment,
            dedupe_key=f"settled:{settlement.id}:{subscription.id}",
        )


def _failed(settlement: Invoice, payment: Payment) -> None:
    """Nothing changes: the invoices are open again and the balance comes back."""
    void_and_return_balance(settlement, f"Returned from declined settlement {settlement.number}")
    get_state().session.execute(
        update(Invoice)
        .where(Invoice.paid_by_invoice_id == settlement.id)
        .values(paid_by_invoice_id=None)
    )


register_outcome_handlers("settlement", OutcomeHandlers(paid=_paid, failed=_failed))
