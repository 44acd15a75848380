"""What a receipt says (R-INV-2): an invoice's details worded by the invoice templates.

The words come from ``subscriptions/invoices/_words.txt``, the same macros the invoice page
uses, so the page and the PDF say the same thing and are translated together; amounts go
through the same formatting as every page (R-MON-4). The layout is :mod:`.receipts`' job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from flask import current_app

from .accounts import BillingAccount
from .i18n import current_locale, money, rendering_locale
from .receipts import Receipt, ReceiptFontMissing, ReceiptLine, ReceiptRow, build_receipt
from .services.invoice_details import InvoiceDetail
from .services.profiles import account_locale
from .state import get_state

#: Where ``init_app`` keeps the fonts it found for receipts (``receipts.find_fonts``).
FONTS_KEY = "pdf_fonts"

WORDS = "subscriptions/invoices/_words.txt"


def receipt_pdf(invoice: InvoiceDetail, account: BillingAccount) -> bytes:
    """The receipt of a paid invoice as PDF bytes, dated the day it was paid, in the
    account's preferred language (else the page's). Japanese and Korean need a Unicode
    font (``SUBSCRIPTIONS_PDF_FONT`` or a Debian CJK font): without one the receipt is
    printed in English, with a warning in the log, rather than with missing glyphs."""
    created_at = datetime.combine(invoice.paid_on or invoice.issued_on, time(12), tzinfo=UTC)
    fonts: tuple[Path, ...] = get_state().extras.get(FONTS_KEY, ())
    with rendering_locale(account_locale(account)):
        content = receipt_for(invoice, account.billing_name)
        locale = current_locale()
    try:
        return build_receipt(content, created_at=created_at)
    except ReceiptFontMissing as missing:
        if fonts:
            return build_receipt(
                content, font=fonts[0], fallback_fonts=fonts[1:], created_at=created_at
            )
        current_app.logger.warning(
            "A %s receipt needs a Unicode font for %r: printed in English instead. Install "
            "fonts-wqy-microhei (Debian) or set SUBSCRIPTIONS_PDF_FONT.",
            locale,
            missing.characters,
        )
    with rendering_locale("en"):
        return build_receipt(receipt_for(invoice, account.billing_name), created_at=created_at)


def receipt_for(invoice: InvoiceDetail, billed_to: str) -> Receipt:
    """The receipt's words and values, for an invoice that was paid."""
    words: Any = current_app.jinja_env.get_template(WORDS).module  # its macros, as callables
    settings = get_state().settings

    def label(key: str) -> str:
        return _text(words.label(key))

    def amount(value: int) -> str:
        return money(value, invoice.currency)

    seller = [settings.seller_name or "", *(settings.seller_address or "").splitlines()]
    if settings.seller_tax_id:
        seller.append(_text(words.tax_id(settings.seller_tax_id)))
    details = [
        ReceiptRow(label("invoice"), invoice.number),
        ReceiptRow(label("issued_on"), _date(invoice.issued_on)),
        ReceiptRow(label("paid_on"), _date(invoice.paid_on)),
        ReceiptRow(label("billed_to"), billed_to),
        ReceiptRow(label("for"), _text(words.kind(invoice.kind))),
    ]
    if invoice.period_start:
        period = words.period(invoice.period_start, invoice.period_last_day)
        details.append(ReceiptRow(label("period"), _text(period)))
    lines = tuple(
        ReceiptLine(
            _text(words.line_item(line)),
            _text(words.line_span(line, invoice.currency)),
            amount(line.amount),
        )
        for line in invoice.lines
    )
    totals = []
    if invoice.discount:
        totals.append(ReceiptRow(label("discount"), amount(invoice.discount)))
    if invoice.credited:
        totals.append(ReceiptRow(label("credited"), amount(-invoice.credited)))
    totals += [
        ReceiptRow(label("amount_owed"), amount(invoice.amount_owed)),
        ReceiptRow(label("balance_used"), amount(invoice.balance_used)),
        ReceiptRow(label("card_charged"), amount(invoice.card_charged)),
    ]
    notes = [_text(words.paid_note(invoice))]
    if invoice.settles:
        notes.append(_text(words.settles_note(invoice)))
    return Receipt(
        title=label("receipt"),
        number=invoice.number,
        seller=tuple(text for text in seller if text),
        details=tuple(details),
        headings=(label("item"), label("period"), label("amount")),
        lines=lines,
        totals=tuple(totals),
        notes=tuple(notes),
        language=current_locale().split("_")[0],
    )


def receipt_filename(invoice: InvoiceDetail) -> str:
    """``receipt-INV-000042.pdf``; only safe characters reach the header."""
    return "receipt-" + re.sub(r"[^A-Za-z0-9-]", "", invoice.number) + ".pdf"


def _date(day: Any) -> str:
    filters = current_app.jinja_env.filters
    return str(filters["subs_date"](day))


def _text(value: Any) -> str:
    """A macro's output as one line of plain text."""
    return " ".join(str(value).split())
