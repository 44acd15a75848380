"""Settle overdue (R-DUN-3): everything unpaid in one payment, the restriction lifted at once.

The settlement is an invoice of its own whose lines are the open invoices it pays. Its
first transaction reserves each open invoice for it with a conditional UPDATE, so two
settlements (two tabs, a double click) cannot both pay the same invoice; a failed payment
gives the invoices back and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, select, update
from sqlalchemy.orm import aliased

from ..accounts import BillingAccount
from ..core.quotes import NothingToChange, Quote, quote_settlement
from ..errors import NothingUnpaid, PaymentMethodRequired, QuoteChanged, SettlementDeclined
from ..models import Invoice, Payment, Subscription
from ..state import get_state
from . import _tx
from ._sql import updated
from .balance import Balance, current_balance
from .dunning import clear_dunning
from .invoices import mark_paid, void_and_return_balance
from .notices import mail_about
from .payment_methods import usable_methods
from .pipeline import (
    OPEN_STATUSES,
    Draft,
    Entry,
    Outcomes,
    Reserved,
    attempt_open,
    card_of,
    charge_and_record,
    one_by_one,
    reserve,
)


@dataclass(frozen=True)
class Settlement:
    """What the history page offers to pay."""

    invoices: tuple[Invoice, ...]
    quote: Quote | None


@dataclass(frozen=True)
class WaitingSettlement:
    """A settlement whose payment has not ended: the bank wants the card holder to confirm
    it (3-D Secure), or the payment service has not answered yet. It is not paid (R-DUN-6):
    the invoices it covers stay unpaid, and are not offered again, until it ends."""

    invoice: Invoice
    payment: Payment

    @property
    def needs_confirmation(self) -> bool:
        return self.payment.status == "requires_action"


def unpaid_invoices(account_id: str) -> list[Invoice]:
    """Open renewal invoices, oldest first: the unpaid terms, restricted period included.

    Not one whose attempt is still open (waiting for 3-D Secure, in flight, or its outcome
    unknown): that attempt can still take the money, so settling the invoice too could take
    it twice. The person confirms it on its own page, or it is declined first.
    """
    return list(get_state().session.scalars(_UNPAID, {"account_id": account_id}))


def _unpaid(invoice: Any) -> tuple[ColumnElement[bool], ...]:
    """SQL: ``invoice`` (``Invoice`` or an alias) is one of :func:`unpaid_invoices`, of the
    account bound as ``account_id``."""
    return (
        invoice.account_id == bindparam("account_id"),
        invoice.kind == "renewal",
        invoice.status == "open",
        invoice.paid_by_invoice_id.is_(None),
        ~attempt_open(invoice),
    )


#: Built once (the history page asks on every view): building a statement costs about as
#: much as running it.
_UNPAID = select(Invoice).where(*_unpaid(Invoice)).order_by(Invoice.period_start, Invoice.id)

#: SQL: whether the account bound as ``account_id`` has an unpaid invoice, as a column the
#: History page's own statement carries, so that a page with nothing to settle reads no
#: more (``settlement_for``'s ``owes``).
ANY_UNPAID = exists().where(*_unpaid(aliased(Invoice))).label("owes")


def settlement_for(account_id: str, owes: bool | None = None) -> Settlement:
    """What the History page offers to pay. ``owes``: whether anything is unpaid, when a
    statement of the page read :data:`ANY_UNPAID` already (``False``: no statement)."""
    if owes is False:
        return Settlement((), None)
    invoices = unpaid_invoices(account_id)
    if not invoices:
        return Settlement((), None)
    return Settlement(tuple(invoices), _quote(invoices, current_balance(account_id)))


def _quote(invoices: list[Invoice], balance: Balance) -> Quote:
    """The settlement of ``invoices``, the balance first: ``balance`` as the caller read it,
    so a reservation checks the ledger's seq of the very balance it quoted."""
    currency = invoices[0].currency
    usable = balance.amount if balance.currency in (None, currency) else 0
    lines = [(i.id, f"Invoice {i.number}", i.amount_due) for i in invoices]
    return quote_settlement(lines, currency, usable)


def settle(account: BillingAccount, fingerprint: str, method_id: int | None) -> Invoice:
    """Pay every unpaid invoice in one payment, exactly as quoted (R-DUN-3).

    The settlement comes back ``paid``, or still ``open`` when its payment waits for the
    bank (3-D Secure) or for the payment service's answer: that is not paid (R-DUN-6), and
    :func:`waiting_settlement` tells the page what to say."""
    try:
        reserved = _reserve(account, fingerprint, method_id)
        _tx.commit()
    except BaseException:
        _tx.rollback()
        raise
    charge_and_record([reserved])
    session = get_state().session
    settled = session.get_one(Invoice, reserved.invoice_id, populate_existing=True)
    if settled.status == "void":  # its charge was declined
        payment = session.get(Payment, reserved.payment_id) if reserved.payment_id else None
        raise (
            SettlementDeclined(code="gateway_refused", reason=payment.message)
            if payment and payment.message
            else SettlementDeclined()
        )
    return settled


def waiting_settlement(account_id: str, invoices: Sequence[Invoice]) -> WaitingSettlement | None:
    """The account's settlement still waiting for its payment, if ``invoices`` (the
    account's, as a page read them) hold one: no statement otherwise."""
    waiting = [i.id for i in invoices if i.kind == "settlement" and i.status == "open"]
    if not waiting:
        return None
    found = (
        get_state()
        .session.execute(
            select(Invoice, Payment)
            .join(Payment, Payment.invoice_id == Invoice.id)
            .where(
                Invoice.account_id == account_id,
                Invoice.id.in_(waiting),
                Payment.status.in_(OPEN_STATUSES),
            )
            .order_by(Payment.id.desc())
            .limit(1)
        )
        .first()
    )
    return WaitingSettlement(found[0], found[1]) if found else None


def _reserve(account: BillingAccount, fingerprint: str, method_id: int | None) -> Reserved:
    invoices = unpaid_invoices(account.billing_id)
    if not invoices:
        raise NothingUnpaid()
    balance = current_balance(account.billing_id)
    try:
        quote = _quote(invoices, balance)
    except NothingToChange:
        raise NothingUnpaid() from None
    if quote.fingerprint != fingerprint:
        raise QuoteChanged()
    method = None
    if quote.card_amount > 0:
        method = {m.id: m for m in usable_methods(account.billing_id)}.get(method_id or 0)
        if method is None:
            raise PaymentMethodRequired()
    draft = Draft(
        account.billing_id,
        "settlement",
        quote,
        "Settlement {number}",
        card=card_of(method) if method is not None else None,
        entries=(Entry("use", -quote.balance_used, "Used for settlement {number}"),)
        if quote.balance_used
        else (),
        balance_seq=balance.seq,
        context=[invoice.id for invoice in invoices],
    )
    [reserved] = reserve([draft])
    if reserved.payment_id is not None:  # (paid by the balance: taken as it was paid)
        _take(reserved.invoice_id, draft.context)
    return reserved


def _take(settlement_id: int, invoice_ids: list[int]) -> None:
    """Reserve each open invoice for this settlement with one conditional UPDATE, so two
    settlements (two tabs, a double click) cannot both pay the same invoice."""
    taken = updated(
        update(Invoice)
        .where(
            Invoice.id.in_(invoice_ids),
            Invoice.status == "open",
            Invoice.paid_by_invoice_id.is_(None),
        )
        .values(paid_by_invoice_id=settlement_id)
        .execution_options(synchronize_session=False)
    )
    if taken != len(invoice_ids):
        raise QuoteChanged()


def _settled_invoices(settlement: Invoice) -> list[Invoice]:
    return list(
        get_state().session.scalars(
            select(Invoice).where(Invoice.paid_by_invoice_id == settlement.id).order_by(Invoice.id)
        )
    )


def _paid(reserved: Sequence[Reserved]) -> None:
    """Every invoice it covers is paid, and each license is out of dunning at once."""
    session = get_state().session
    for one in reserved:
        if one.payment_id is None and one.context is not None:  # paid as it was reserved
            _take(one.invoice_id, one.context)
        settlement = session.get_one(Invoice, one.invoice_id, populate_existing=True)
        payment = session.get(Payment, one.payment_id) if one.payment_id is not None else None
        _settle_invoices(settlement, payment)


def _settle_invoices(settlement: Invoice, payment: Payment | None) -> None:
    session = get_state().session
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


def _failed(settlement: Invoice, payment: Payment | None) -> None:
    """Nothing changes: the invoices are open again and the balance comes back."""
    void_and_return_balance(settlement, f"Returned from declined settlement {settlement.number}")
    get_state().session.execute(
        update(Invoice)
        .where(Invoice.paid_by_invoice_id == settlement.id)
        .values(paid_by_invoice_id=None)
    )


OUTCOMES = Outcomes(paid=_paid, failed=one_by_one(_failed))
