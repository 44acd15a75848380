"""An invoice's page and its PDF receipt (R-INV-1, R-INV-2), for the account's owners only."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from ..access import owner_required
from ..accounts import BillingAccount
from ..errors import NotFound
from ..receipt_content import receipt_filename, receipt_pdf
from ..services.invoice_details import invoice_detail
from ._errors import refuse

bp = Blueprint("invoices", __name__, url_prefix="/invoices")


@bp.get("/<ident>")
@owner_required
def show(account: BillingAccount, ident: str) -> str | tuple[str, int]:
    """By number (``INV-000042``) or id; another account's, or no such invoice, is a 404."""
    invoice = invoice_detail(account.billing_id, ident)
    if invoice is None:
        return refuse(NotFound(code="invoice_not_found"))
    return render_template("subscriptions/invoice.html", invoice=invoice)


@bp.get("/<ident>/receipt.pdf")
@owner_required
def receipt(account: BillingAccount, ident: str) -> Response | tuple[str, int]:
    """Only money received has a receipt: an unpaid invoice, or one a settlement paid (its
    receipt is the settlement's), is a 404 like one that does not exist."""
    invoice = invoice_detail(account.billing_id, ident)
    if invoice is None or not invoice.receipt_available:
        return refuse(NotFound(code="invoice_not_found"))
    return Response(
        receipt_pdf(invoice, account),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{receipt_filename(invoice)}"',
            "Cache-Control": "private, no-store",
        },
    )
