"""What an invoice's page, its PDF receipt and Subscription History show (R-INV-1, R-INV-2).

Read-only, straight from the tables: the services that write invoices and payments may change
how they do it, but what was invoiced, charged and settled is in these rows. Every query is
bounded by the account, so an id from another account finds nothing (R-SEC-2), and the number
of statements per page is fixed whatever the account's history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Select, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import aliased

from ..models import AddOn, Invoice, InvoiceLine, Payment, PaymentMethod, Plan
from ..state import get_state
from .paging import Cursor, Page, keyset, page_of
from .settlement import ANY_UNPAID

#: The largest id an integer primary key holds on every database we run on: anything above
#: is not an invoice of anyone's, and PostgreSQL would refuse to compare it (a 500, not a 404).
MAX_ID = 2**31 - 1
_ID = re.compile(r"[0-9]{1,10}")
#: An invoice number is at most as long as its column; anything longer is not one.
_NUMBER = re.compile(r"[A-Za-z0-9-]{1,32}")


@dataclass(frozen=True)
class CardRef:
    """The card as a person recognises it: never more than the brand and last 4 (R-SEC-1)."""

    brand: str
    last4: str


@dataclass(frozen=True)
class InvoiceRef:
    """Another invoice this one points at (what a settlement paid, or what paid this one)."""

    id: int
    number: str
    kind: str
    status: str
    period_start: date | None
    period_end: date | None
    amount_due: int


@dataclass(frozen=True)
class Attempt:
    """One try to charge the card for this invoice. A declined try is part of the invoice it
    tried to pay, never a charge of its own (R-INV-1)."""

    id: int
    attempt: int
    status: str
    amount: int
    currency: str
    card: CardRef | None
    on: date
    decline_kind: str | None
    message: str | None
    reference: str | None


@dataclass(frozen=True)
class LineDetail:
    """One invoice line with the item's name, as the catalog calls it."""

    kind: str
    item_code: str
    name: str
    description: str
    start: date | None
    last_day: date | None
    days: int | None
    term_days: int | None
    basis: int | None
    amount: int
    settled: InvoiceRef | None

    @property
    def prorated(self) -> bool:
        """Only part of a term: the page then shows the amount the line came from."""
        return self.days is not None and self.term_days is not None and self.days != self.term_days


@dataclass(frozen=True)
class InvoiceDetail:
    """Everything an invoice's page and its receipt show, as plain values."""

    id: int
    number: str
    kind: str
    status: str
    currency: str
    account_id: str
    issued_on: date
    paid_on: date | None
    voided_on: date | None
    period_start: date | None
    period_last_day: date | None
    lines: tuple[LineDetail, ...]
    total: int
    balance_used: int
    amount_due: int
    attempts: tuple[Attempt, ...]
    settled_by: InvoiceRef | None

    @property
    def discount(self) -> int:
        return sum(line.amount for line in self.lines if line.kind == "discount")

    @property
    def credited(self) -> int:
        """Credits for what was given up (signed, <= 0): they go to the balance (R-PRO-3)."""
        return sum(line.amount for line in self.lines if line.kind == "credit")

    @property
    def amount_owed(self) -> int:
        """What the charges came to after any discount: paid from the balance, then the card.
        (``total`` nets the credits too; they reach the balance before it pays.)"""
        return self.amount_due + self.balance_used

    @property
    def paid_with(self) -> Attempt | None:
        """The payment that took the money, if a card paid it."""
        return next((a for a in self.attempts if a.status == "succeeded"), None)

    @property
    def card_charged(self) -> int:
        return sum(a.amount for a in self.attempts if a.status == "succeeded")

    @property
    def card(self) -> CardRef | None:
        paid = self.paid_with
        return paid.card if paid else None

    @property
    def settles(self) -> tuple[InvoiceRef, ...]:
        """The invoices a settlement pays (or tried to pay, when it was declined)."""
        return tuple(line.settled for line in self.lines if line.settled is not None)

    @property
    def receipt_available(self) -> bool:
        """A receipt is for money received: a paid invoice, not one a settlement paid for it."""
        return self.status == "paid" and self.settled_by is None


@dataclass(frozen=True)
class HistoryRow:
    """One row of Subscription History: a payment that took money, or an invoice still owed
    (R-INV-1). What the card paid and the balance used; a settlement names the invoices it
    paid (they have no row of their own: one payment, one row); declined attempts that were
    invoices of their own (a purchase, a change, a settlement) are folded into the invoice
    they tried to pay."""

    invoice: Invoice
    issued_on: date
    period_start: date | None
    period_last_day: date | None
    card_paid: int
    settles: tuple[InvoiceRef, ...]
    declined: tuple[InvoiceRef, ...] = ()


def parse_ident(ident: str) -> int | str | None:
    """An id (digits) or an invoice number, or None when it can be neither: a malformed or
    huge id is simply not found (R-SEC-4), never a database error."""
    if _ID.fullmatch(ident):
        number = int(ident)
        return number if 0 < number <= MAX_ID else None
    return ident if _NUMBER.fullmatch(ident) else None


def find_invoice(account_id: str, ident: str) -> Invoice | None:
    """The account's invoice by id or number; another account's is never found (R-SEC-2)."""
    key = parse_ident(ident)
    if key is None:
        return None
    which = Invoice.id == key if isinstance(key, int) else Invoice.number == key
    return get_state().session.scalar(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.number.is_not(None), which)
    )


def invoice_detail(account_id: str, ident: str) -> InvoiceDetail | None:
    """The page's data in five statements, whatever the invoice: the invoice, its lines, its
    attempts with their cards, the items' names, and the invoices it points at."""
    invoice = find_invoice(account_id, ident)
    if invoice is None:
        return None
    session = get_state().session
    lines = list(
        session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)
        )
    )
    related = _related(invoice, lines)
    names = _item_names({line.item_code for line in lines if line.item_code})
    return InvoiceDetail(
        id=invoice.id,
        number=invoice.number or "",
        kind=invoice.kind,
        status=invoice.status,
        currency=invoice.currency,
        account_id=invoice.account_id,
        issued_on=billing_date(invoice.created_at),
        paid_on=billing_date(invoice.paid_at) if invoice.paid_at else None,
        voided_on=billing_date(invoice.voided_at) if invoice.voided_at else None,
        period_start=invoice.period_start,
        period_last_day=_last_day(invoice.period_end),
        lines=tuple(_line(line, names, related) for line in lines),
        total=invoice.total,
        balance_used=invoice.balance_applied,
        amount_due=invoice.amount_due,
        attempts=_attempts(invoice),
        settled_by=related.get(invoice.paid_by_invoice_id or 0),
    )


@dataclass(frozen=True)
class HistoryPage(Page[HistoryRow]):
    """A page of History, and whether the account owes anything (its page's statement reads
    it too): ``None`` for an empty page, where nothing was read."""

    owes: bool | None = None


def history_page(account_id: str, cursor: Cursor, size: int) -> HistoryPage:
    """One page of the account's History, newest first: its rows in one keyset read, and
    what they fold in (the invoices they settled, the attempts declined under them) in one
    more, plus one for changes' periods only when the page has any: the same statements
    for the first page of a new account and the hundredth of an old one.

    An invoice a settlement took is shown in the settlement's row, and a void invoice (a
    declined purchase, change or settlement) in the row of the invoice it tried to pay; a
    void one that nothing paid after it took no money and is owed by nobody: it has its
    own page, but no row."""
    found, more = keyset(
        _SHOWN, (Invoice.created_at, Invoice.id), cursor, size, {"account_id": account_id}
    )
    shown = [row[0] for row in found]
    ids = [invoice.id for invoice in shown]
    settles: dict[int, list[InvoiceRef]] = {}
    declined: dict[int, list[InvoiceRef]] = {}
    for invoice, owner in _folded(account_id, ids):  # oldest first
        paid_by = invoice.paid_by_invoice_id
        if paid_by is not None and paid_by in ids:
            settles.setdefault(paid_by, []).append(_ref(invoice))
        if invoice.status == "void" and owner is not None and owner in ids:
            declined.setdefault(owner, []).append(_ref(invoice))
    spans = _change_spans([i.id for i in shown if i.kind == "change" and i.period_end is None])
    rows = []
    for invoice in shown:
        paid = tuple(settles.get(invoice.id, ()))
        start, end = _period(invoice, paid, spans)
        rows.append(
            HistoryRow(
                invoice=invoice,
                issued_on=billing_date(invoice.created_at),
                period_start=start,
                period_last_day=_last_day(end),
                card_paid=_card_paid(invoice),
                settles=paid,
                declined=tuple(declined.get(invoice.id, ())),
            )
        )
    page = page_of(rows, lambda r: (r.invoice.created_at, r.invoice.id), cursor, more)
    owes = bool(found[0].owes) if found else None
    return HistoryPage(page.items, page.newer, page.older, owes)


def _folded(account_id: str, ids: list[int]) -> list[tuple[Invoice, int | None]]:
    """The invoices the rows ``ids`` fold in, oldest first, each with the row a void one is
    declined under: a declined settlement under what now pays (or still owes) the first
    invoice it covered; a declined purchase under the account's next purchase; a declined
    change under the license's next change. One statement; none without rows."""
    if not ids:
        return []
    rows = get_state().session.execute(_FOLDED, {"account_id": account_id, "ids": ids})
    return [(invoice, owner) for invoice, owner in rows]


def _folded_query() -> Select[Any]:
    """The statement of :func:`_folded`, built once (building it cost more than running it):
    ``account_id`` and the rows' ``ids`` are its parameters."""
    ids: BindParameter[int] = bindparam("ids", expanding=True)
    later, covered = aliased(Invoice), aliased(Invoice)
    after_it = or_(
        later.created_at > Invoice.created_at,
        and_(later.created_at == Invoice.created_at, later.id > Invoice.id),
    )
    next_of_kind = (
        select(later.id)
        .where(
            later.account_id == Invoice.account_id,
            later.number.is_not(None),
            later.kind == Invoice.kind,
            later.status != "void",
            or_(Invoice.kind == "purchase", later.subscription_id == Invoice.subscription_id),
            after_it,
        )
        .order_by(later.created_at, later.id)
        .limit(1)
        .correlate(Invoice)
        .scalar_subquery()
    )
    first_covered = (
        select(func.coalesce(covered.paid_by_invoice_id, covered.id))
        .select_from(InvoiceLine)
        .join(covered, covered.id == InvoiceLine.settled_invoice_id)
        .where(InvoiceLine.invoice_id == Invoice.id, covered.number.is_not(None))
        .order_by(InvoiceLine.id)
        .limit(1)
        .correlate(Invoice)
        .scalar_subquery()
    )
    owner = case(
        (Invoice.kind == "settlement", first_covered),
        (Invoice.kind.in_(("purchase", "change")), next_of_kind),
        else_=None,
    )
    return (
        select(Invoice, owner)
        .where(
            Invoice.account_id == bindparam("account_id"),
            Invoice.number.is_not(None),
            or_(
                Invoice.paid_by_invoice_id.in_(ids),
                and_(Invoice.status == "void", owner.in_(ids)),
            ),
        )
        .order_by(Invoice.created_at, Invoice.id)
    )


#: The History page's statements, built once. The page's rows carry whether the account
#: owes anything, which the page's Pay all needs.
_SHOWN = select(Invoice, ANY_UNPAID).where(
    Invoice.account_id == bindparam("account_id"),
    Invoice.number.is_not(None),
    Invoice.status != "void",
    Invoice.paid_by_invoice_id.is_(None),
)
_FOLDED = _folded_query()
_SPANS = (
    select(InvoiceLine.invoice_id, func.min(InvoiceLine.start), func.max(InvoiceLine.end))
    .where(
        InvoiceLine.invoice_id.in_(bindparam("ids", expanding=True)),
        InvoiceLine.start.is_not(None),
    )
    .group_by(InvoiceLine.invoice_id)
)


def _period(
    invoice: Invoice, settles: Sequence[InvoiceRef], spans: dict[int, tuple[date, date]]
) -> tuple[date | None, date | None]:
    """What the row covers: its term; for a settlement, the terms it paid; for a change
    that kept the term, its lines' days (the change day to the term end)."""
    if invoice.period_start is not None:
        return invoice.period_start, invoice.period_end
    if settles:
        starts = [r.period_start for r in settles if r.period_start]
        ends = [r.period_end for r in settles if r.period_end]
        return (min(starts) if starts else None), (max(ends) if ends else None)
    span = spans.get(invoice.id)
    return span if span else (None, None)


def _change_spans(invoice_ids: list[int]) -> dict[int, tuple[date, date]]:
    if not invoice_ids:
        return {}
    rows = get_state().session.execute(_SPANS, {"ids": invoice_ids})
    return {invoice_id: (start, end) for invoice_id, start, end in rows if start and end}


def billing_date(moment: datetime) -> date:
    """A stored (naive UTC) instant as the billing date of the configured zone (R-TIME-1)."""
    zone = ZoneInfo(get_state().settings.timezone)
    return moment.replace(tzinfo=UTC).astimezone(zone).date()


def _card_paid(invoice: Invoice) -> int:
    """What the card paid for this invoice itself: nothing for one a settlement paid (the
    settlement's row shows that charge once), nothing for one never paid."""
    if invoice.status != "paid" or invoice.paid_by_invoice_id is not None:
        return 0
    return invoice.amount_due


def _related(invoice: Invoice, lines: Sequence[InvoiceLine]) -> dict[int, InvoiceRef]:
    """The invoices this one names, by id: what paid it, and what its lines settle."""
    ids = {line.settled_invoice_id for line in lines if line.settled_invoice_id is not None}
    if invoice.paid_by_invoice_id is not None:
        ids.add(invoice.paid_by_invoice_id)
    if not ids:
        return {}
    rows = get_state().session.scalars(
        select(Invoice).where(Invoice.account_id == invoice.account_id, Invoice.id.in_(ids))
    )
    return {row.id: _ref(row) for row in rows if row.number}


def _ref(invoice: Invoice) -> InvoiceRef:
    return InvoiceRef(
        id=invoice.id,
        number=invoice.number or "",
        kind=invoice.kind,
        status=invoice.status,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        amount_due=invoice.amount_due,
    )


def _item_names(codes: Iterable[str]) -> dict[str, str]:
    """Plans and add-ons by code, in one statement; a plan wins a shared code."""
    codes = sorted(codes)
    if not codes:
        return {}
    plans = select(Plan.code, Plan.name, literal(0).label("rank")).where(Plan.code.in_(codes))
    addons = select(AddOn.code, AddOn.name, literal(1).label("rank")).where(AddOn.code.in_(codes))
    rows = get_state().session.execute(plans.union_all(addons)).all()
    names: dict[str, str] = {}
    for code, name, _rank in sorted(rows, key=lambda row: -row[2]):
        names[code] = name
    return names


def _line(row: InvoiceLine, names: dict[str, str], related: dict[int, InvoiceRef]) -> LineDetail:
    settled = related.get(row.settled_invoice_id) if row.settled_invoice_id else None
    return LineDetail(
        kind=row.kind,
        item_code=row.item_code,
        name=names.get(row.item_code, row.item_code or row.description),
        description=row.description,
        start=row.start,
        last_day=_last_day(row.end),
        days=row.days,
        term_days=row.term_days,
        basis=row.basis,
        amount=row.amount,
        settled=settled,
    )


def _last_day(end: date | None) -> date | None:
    """Periods are stored half-open ``[start, end)``; people read the last day they cover."""
    return date.fromordinal(end.toordinal() - 1) if end else None


def _attempts(invoice: Invoice) -> tuple[Attempt, ...]:
    rows = get_state().session.execute(
        select(Payment, PaymentMethod)
        .outerjoin(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .where(Payment.invoice_id == invoice.id, Payment.purpose == "charge")
        .order_by(Payment.attempt, Payment.id)
    )
    return tuple(
        Attempt(
            id=payment.id,
            attempt=payment.attempt,
            status=payment.status,
            amount=payment.amount,
            currency=payment.currency,
            card=CardRef(method.brand, method.last4) if method else None,
            on=billing_date(payment.created_at),
            decline_kind=payment.decline_kind,
            message=payment.message,
            reference=payment.charge_id,
        )
        for payment, method in rows
    )
