"""What support finds and sees (R-OPS-1): one search box over every reference a caller
may read out, and everything about one account on one page.

Reads only: a handful of statements per page, none per row, so an account with years of
invoices opens as fast as a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import aliased

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
from .balance import Balance, current_balance, history
from .invoice_details import HistoryRow, history_page
from .licenses import License, list_licenses
from .paging import Cursor, Page, keyset, page_of, page_size
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
    #: Each paged list's page (its items are the lists above), for its Newer / Older links.
    pages: dict[str, Page[Any]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """Billing has rows for it, or the host knows it."""
        return self.account is not None or bool(self.licenses or self.invoices or self.ledger)


#: The account page's paged lists, each with its own cursor (``emails_before=…``).
PAGED = ("invoices", "payments", "ledger", "emails", "audit")


def account_view(account_id: str, cursors: Mapping[str, Cursor] | None = None) -> AccountView:
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
    cursors = cursors or {}
    size = page_size()

    def cursor(name: str) -> Cursor:
        return cursors.get(name) or Cursor()

    invoice_page = history_page(account_id, cursor("invoices"), size)
    payment_page = _payments(account_id, cursor("payments"), size)
    ledger_page = history(account_id, cursor("ledger"), size)
    email_page: Page[OutboxMessage] = _by_id(OutboxMessage, account_id, cursor("emails"), size)
    audit_page: Page[AuditEntry] = _by_id(AuditEntry, account_id, cursor("audit"), size)
    invoices = invoice_page.items
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
        payments=_with_cards(payment_page.items, methods),
        ledger=ledger_page.items,
        emails=email_page.items,
        usage=list(
            session.scalars(
                select(UsageReport)
                .where(UsageReport.account_id == account_id)
                .order_by(UsageReport.reported_at.desc())
                .limit(50)
            )
        ),
        audit=audit_page.items,
        methods=methods,
        plans=list(session.scalars(select(Plan).where(Plan.active).order_by(Plan.position))),
        pages={
            "invoices": invoice_page,
            "payments": payment_page,
            "ledger": ledger_page,
            "emails": email_page,
            "audit": audit_page,
        },
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


def _by_id(
    model: type[OutboxMessage] | type[AuditEntry], account_id: str, cursor: Cursor, size: int
) -> Page[Any]:
    """A page of the account's e-mails or audit entries, newest first."""
    query = select(model).where(model.account_id == account_id)
    found, more = keyset(query, (model.id,), cursor, size)
    items: list[Any] = [row[0] for row in found]
    return page_of(items, lambda item: (item.id,), cursor, more)


def _payments(account_id: str, cursor: Cursor, size: int) -> Page[PaymentRow]:
    """A page of the account's payments, newest first, each with its invoice's number and
    what is left to refund (what its refunds took, summed in the same statement)."""
    refund = aliased(Payment)
    refunded = (
        select(func.coalesce(func.sum(refund.amount), 0))
        .where(refund.refund_of_id == Payment.id, refund.status.in_(("pending", "succeeded")))
        .correlate(Payment)
        .scalar_subquery()
    )
    query = (
        select(Payment, Invoice.number, refunded)
        .outerjoin(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.account_id == account_id)
    )
    found, more = keyset(query, (Payment.id,), cursor, size)
    rows = [
        PaymentRow(
            payment,
            None,
            number,
            payment.amount - int(taken)
            if payment.purpose == "charge" and payment.status == "succeeded"
            else 0,
        )
        for payment, number, taken in found
    ]
    return page_of(rows, lambda row: (row.payment.id,), cursor, more)


def _with_cards(rows: list[PaymentRow], methods: list[PaymentMethod]) -> list[PaymentRow]:
    cards = {method.id: method for method in methods}
    return [replace(row, card=cards.get(row.payment.payment_method_id or 0)) for row in rows]


def _grouped(rows: Iterable[V], key: Callable[[V], K]) -> dict[K, list[V]]:
    grouped: dict[K, list[V]] = {}
    for row in rows:
        grouped.setdefault(key(row), []).append(row)
    return grouped
