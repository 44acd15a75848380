"""What support finds and sees (R-OPS-1): one search box over every reference a caller
may read out, and everything about one account on one page.

Reads only: a handful of statements per page, none per row, so an account with years of
invoices opens as fast as a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import String, cast, func, or_, select

from ..accounts import BillingAccount
from ..core.money import exponent
from ..models import (
    AuditEntry,
    BalanceEntry,
    BillingProfile,
    Invoice,
    InvoiceLine,
    OutboxMessage,
    Payment,
    PaymentMethod,
    Plan,
    PlanChange,
    Subscription,
    Term,
    UsageReport,
)
from ..state import get_state
from .audit import audit_entries
from .balance import Balance, current_balance, history
from .invoice_details import HistoryRow, history_rows
from .licenses import License, list_licenses
from .payment_methods import list_methods

K = TypeVar("K")
V = TypeVar("V")

#: At most this many accounts answer one search.
MAX_RESULTS = 50
_LAST4 = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class Found:
    """An account the search found, and what of it matched (shown beside it)."""

    account_id: str
    matched: tuple[str, ...]
    account: BillingAccount | None = None


def find_accounts(query: str) -> list[Found]:
    """Accounts whose id, owner e-mail, invoice number, payment reference or card's last
    4 digits is ``query``. Owner e-mails are the billing e-mail and every address billing
    mail went to (R-NOTE-2 sends to every owner), so the host need not be searched."""
    text = (query or "").strip()
    if not text or len(text) > 320:
        return []
    matches: dict[str, list[str]] = {}
    for account_id, what in _matches(text):
        seen = matches.setdefault(account_id, [])
        if what not in seen:
            seen.append(what)
    ids = list(matches)[:MAX_RESULTS]
    accounts = get_state().load_accounts(ids)
    return [Found(i, tuple(matches[i]), accounts.get(i)) for i in ids]


def _matches(text: str) -> Iterable[tuple[str, str]]:
    session = get_state().session
    lowered = text.lower()
    for table, label in ((Subscription, "account id"), (BillingProfile, "account id")):
        for account_id in session.scalars(
            select(table.account_id).where(table.account_id == text).limit(1)
        ):
            yield account_id, label
    if "@" in text:
        quoted = f'%"{lowered}"%'
        for (account_id,) in session.execute(
            select(BillingProfile.account_id).where(
                func.lower(BillingProfile.billing_email) == lowered
            )
        ):
            yield account_id, "billing e-mail"
        for (mailed,) in session.execute(
            select(OutboxMessage.account_id)
            .where(
                OutboxMessage.account_id.is_not(None),
                func.lower(cast(OutboxMessage.recipients, String)).like(quoted),
            )
            .distinct()
            .limit(MAX_RESULTS)
        ):
            yield mailed or "", "owner e-mail"
    for (account_id,) in session.execute(
        select(Invoice.account_id).where(func.upper(Invoice.number) == text.upper())
    ):
        yield account_id, "invoice number"
    for (account_id,) in session.execute(
        select(Payment.account_id)
        .where(or_(Payment.charge_id == text, Payment.idempotency_key == text))
        .limit(MAX_RESULTS)
    ):
        yield account_id, "payment reference"
    if _LAST4.fullmatch(text):
        for (account_id,) in session.execute(
            select(PaymentMethod.account_id)
            .where(PaymentMethod.last4 == text)
            .distinct()
            .limit(MAX_RESULTS)
        ):
            yield account_id, "card ending " + text


@dataclass(frozen=True)
class PaymentRow:
    payment: Payment
    card: PaymentMethod | None
    invoice_number: str | None
    refundable: int

    @property
    def refundable_text(self) -> str:
        """What is left to refund as a person types it ("13.00"): the refund form's default."""
        places = exponent(self.payment.currency)
        return f"{Decimal(self.refundable).scaleb(-places):.{places}f}"


@dataclass(frozen=True)
class LicenseHistory:
    """A license with its terms and its executed plan changes, oldest first."""

    license: License
    terms: list[Term]
    changes: list[PlanChange]


@dataclass(frozen=True)
class AccountView:
    account_id: str
    account: BillingAccount | None
    currency: str | None
    balance: Balance
    licenses: list[LicenseHistory]
    invoices: list[HistoryRow]
    lines: dict[int, list[InvoiceLine]]
    payments: list[PaymentRow]
    ledger: list[BalanceEntry]
    emails: list[OutboxMessage]
    usage: list[UsageReport]
    audit: list[AuditEntry]
    methods: list[PaymentMethod]
    plans: list[Plan] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """Billing has rows for it, or the host knows it."""
        return self.account is not None or bool(self.licenses or self.invoices or self.ledger)


def account_view(account_id: str) -> AccountView:
    """Everything about one account (R-OPS-1), in a fixed number of statements."""
    state = get_state()
    session = state.session
    licenses = list_licenses(account_id)
    sub_ids = [lic.subscription.id for lic in licenses]
    terms = _grouped(
        session.scalars(select(Term).where(Term.subscription_id.in_(sub_ids)).order_by(Term.start)),
        lambda t: t.subscription_id,
    )
    changes = _grouped(
        session.scalars(
            select(PlanChange)
            .where(PlanChange.subscription_id.in_(sub_ids))
            .order_by(PlanChange.id)
        ),
        lambda c: c.subscription_id,
    )
    invoices = history_rows(account_id)
    lines = _grouped(
        session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id.in_([row.invoice.id for row in invoices]))
            .order_by(InvoiceLine.id)
        ),
        lambda line: line.invoice_id,
    )
    methods = list_methods(account_id) + _removed_methods(account_id)
    balance = current_balance(account_id)
    return AccountView(
        account_id=account_id,
        account=state.load_account(account_id),
        currency=_currency(account_id) or balance.currency,
        balance=balance,
        licenses=[
            LicenseHistory(
                lic, terms.get(lic.subscription.id, []), changes.get(lic.subscription.id, [])
            )
            for lic in licenses
        ],
        invoices=invoices,
        lines=lines,
        payments=_payments(account_id, invoices, methods),
        ledger=history(account_id),
        emails=list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.account_id == account_id)
                .order_by(OutboxMessage.id.desc())
            )
        ),
        usage=list(
            session.scalars(
                select(UsageReport)
                .where(UsageReport.account_id == account_id)
                .order_by(UsageReport.reported_at.desc())
                .limit(50)
            )
        ),
        audit=audit_entries(account_id),
        methods=methods,
        plans=list(session.scalars(select(Plan).where(Plan.active).order_by(Plan.position))),
    )


def _currency(account_id: str) -> str | None:
    return get_state().session.scalar(
        select(BillingProfile.currency).where(BillingProfile.account_id == account_id)
    )


def _removed_methods(account_id: str) -> list[PaymentMethod]:
    return list(
        get_state().session.scalars(
            select(PaymentMethod).where(
                PaymentMethod.account_id == account_id, PaymentMethod.removed_at.is_not(None)
            )
        )
    )


def _payments(
    account_id: str, invoices: list[HistoryRow], methods: list[PaymentMethod]
) -> list[PaymentRow]:
    payments = list(
        get_state().session.scalars(
            select(Payment).where(Payment.account_id == account_id).order_by(Payment.id.desc())
        )
    )
    numbers = {row.invoice.id: row.invoice.number for row in invoices}
    cards = {method.id: method for method in methods}
    refunded: dict[int, int] = {}
    for payment in payments:
        if payment.refund_of_id is not None and payment.status in ("pending", "succeeded"):
            refunded[payment.refund_of_id] = refunded.get(payment.refund_of_id, 0) + payment.amount
    return [
        PaymentRow(
            payment,
            cards.get(payment.payment_method_id or 0),
            numbers.get(payment.invoice_id or 0),
            payment.amount - refunded.get(payment.id, 0)
            if payment.purpose == "charge" and payment.status == "succeeded"
            else 0,
        )
        for payment in payments
    ]


def _grouped(rows: Iterable[V], key: Callable[[V], K]) -> dict[K, list[V]]:
    grouped: dict[K, list[V]] = {}
    for row in rows:
        grouped.setdefault(key(row), []).append(row)
    return grouped
