"""Invoices read back as quotes, and the states an outcome moves them to.

The pipeline (``pipeline.py``) writes an invoice from the core's quote, line for line
(signed amounts, days, bases), so what a person was shown, what they paid and what the
history page lists are the same numbers (R-PRO-7).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import select

from ..core.proration import LineKind, Price, QuoteLine
from ..core.quotes import Quote, QuoteKind, make_quote
from ..core.terms import Term
from ..models import AddOn, Invoice, InvoiceLine, Plan
from ..models import Price as PriceRow
from ..state import get_state
from .balance import append_entry
from .pricing import core_price


def mark_paid(invoice: Invoice, *, subscription_id: int | None = None) -> None:
    invoice.status = "paid"
    invoice.paid_at = get_state().now()
    if subscription_id is not None:
        invoice.subscription_id = subscription_id


def mark_void(invoice: Invoice) -> None:
    invoice.status = "void"
    invoice.voided_at = get_state().now()


def void_and_return_balance(invoice: Invoice, reason: str) -> None:
    """An invoice that will not be paid: void, and the balance it used comes back (R-BAL-1)."""
    mark_void(invoice)
    if invoice.balance_applied:
        append_entry(
            invoice.account_id,
            "restore",
            invoice.balance_applied,
            invoice.currency,
            reason,
            invoice_id=invoice.id,
        )


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    return list(
        get_state().session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)
        )
    )


def named_lines(invoice: Invoice) -> list[QuoteLine]:
    """The invoice's lines as the core's structured lines, named as the catalog names their
    items (one statement per kind), for an e-mail to word in the reader's language
    (R-I18N-1). A line of no catalog item (a coupon, a settled invoice) keeps the name it
    was stored with."""
    rows = invoice_lines(invoice)
    codes = sorted({r.item_code for r in rows if r.item_code})
    names: dict[str, str] = {}
    if codes:
        session = get_state().session
        for model in (AddOn, Plan):  # a plan wins a code both use
            found = select(model.code, model.name).where(model.code.in_(codes))
            names.update((code, name) for code, name in session.execute(found))
    return [_quote_line(r, names.get(r.item_code) or r.description) for r in rows]


def _quote_line(row: InvoiceLine, name: str) -> QuoteLine:
    """A stored line as the core's line, under ``name``."""
    return QuoteLine(
        LineKind(row.kind),
        row.item_code or None,
        name,
        row.amount,
        start=row.start,
        end=row.end,
        days=row.days,
        term_days=row.term_days,
        basis=row.basis,
        price_id=row.price_id,
        invoice_id=row.settled_invoice_id,
    )


def invoice_quote(invoice: Invoice) -> tuple[Quote, tuple[Price, ...]]:
    """The invoice's lines as the core's quote, and the catalog prices its charges used.

    Prices are read by id, active or not: a price changed since is not this invoice's price.
    The quote is for reading amounts (what was paid per item), not for showing again.
    """
    rows = invoice_lines(invoice)
    lines = [_quote_line(r, r.item_code or r.description) for r in rows]
    term = (
        Term(invoice.period_start, invoice.period_end)
        if invoice.period_start and invoice.period_end
        else None
    )
    quote = make_quote(
        cast(QuoteKind, invoice.kind),
        invoice.currency,
        lines,
        invoice.balance_applied,
        term,
    )
    price_ids = [r.price_id for r in rows if r.kind == LineKind.CHARGE.value and r.price_id]
    return quote, _core_prices(price_ids)


def _core_prices(price_ids: list[int]) -> tuple[Price, ...]:
    session = get_state().session
    rows = {r.id: r for r in session.scalars(select(PriceRow).where(PriceRow.id.in_(price_ids)))}
    plans = {
        p.id: p
        for p in session.scalars(
            select(Plan).where(Plan.id.in_([r.plan_id for r in rows.values() if r.plan_id]))
        )
    }
    addons = {
        a.id: a
        for a in session.scalars(
            select(AddOn).where(AddOn.id.in_([r.addon_id for r in rows.values() if r.addon_id]))
        )
    }
    prices = []
    for price_id in price_ids:
        row = rows[price_id]
        item: Plan | AddOn = plans[row.plan_id] if row.plan_id else addons[row.addon_id]  # type: ignore[index]
        prices.append(core_price(row, item.code, "plan" if row.plan_id else "addon", item.name))
    return tuple(prices)
