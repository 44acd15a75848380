"""Every paid invoice downloads as a PDF receipt with the seller's details (R-INV-2), read back
here as text; the purchase and renewal e-mails link to it."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select

from flask_subscriptions.config import ConfigurationError
from flask_subscriptions.models import Invoice
from flask_subscriptions.receipts import (
    Receipt,
    ReceiptFontMissing,
    ReceiptLine,
    ReceiptRow,
    build_receipt,
)
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, at_noon, sign_in, snapshot
from .factories import subscribe
from .flows import FIRST_CHARGE_ONLY, local_path
from .hosts import User, create_host, db

SELLER = {
    "SUBSCRIPTIONS_SELLER_NAME": "Example Software, Inc.",
    "SUBSCRIPTIONS_SELLER_ADDRESS": "100 Market Street\nSan Francisco, CA 94105",
    "SUBSCRIPTIONS_SELLER_TAX_ID": "US 12-3456789",
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(SELLER)


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def _receipt(client: FlaskClient, invoice: Invoice) -> str:
    response = client.get(f"/billing/invoices/{invoice.number}/receipt.pdf")
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/pdf"
    assert f'filename="receipt-{invoice.number}.pdf"' in response.headers["Content-Disposition"]
    return pdf_text(response.data)


def latest_invoice(kind: str) -> Invoice:
    db.session.expire_all()
    invoice = db.session.scalars(
        select(Invoice).where(Invoice.kind == kind).order_by(Invoice.id.desc())
    ).first()
    assert invoice is not None
    return invoice


def test_a_purchase_receipt_has_the_number_lines_amounts_card_and_seller_R_INV_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    subscribe(alice, addons=("operation",))
    invoice = latest_invoice("purchase")
    sign_in(client, alice)
    text = _receipt(client, invoice)
    for expected in (
        "Receipt",
        "Example Software, Inc.",
        "100 Market Street",
        "San Francisco, CA 94105",
        "Tax ID: US 12-3456789",
        f"Invoice {invoice.number}",
        "Paid on March 17, 2026",
        "Billed to alice",
        "Small",
        "Operation",
        "$100.00",
        "$30.00",
        "Amount due $130.00",
        "Charged to card $130.00",
        "Visa ending in 4242",
    ):
        assert expected in text, expected


def test_a_renewal_receipt_is_linked_from_its_email_R_INV_2_R_REN_3(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    subscribe(alice)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    renewal = latest_invoice("renewal")
    sign_in(client, alice)
    for kind, invoice in (
        ("purchase_completed", latest_invoice("purchase")),
        ("renewal_receipt", renewal),
    ):
        [mail] = outbox.of_kind(kind)
        url = f"http://host.test/billing/invoices/{invoice.number}/receipt.pdf"
        assert url in mail.text_body, kind
        if mail.html_body:
            assert f'href="{url}"' in mail.html_body
        pdf = client.get(local_path(url))
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert invoice.number in pdf_text(pdf.data)
    assert "April 17, 2026 to May 16, 2026 (30 days)" in pdf_text(
        client.get(f"/billing/invoices/{renewal.number}/receipt.pdf").data
    )


def test_an_unpaid_invoice_has_no_receipt_R_INV_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, gateway: Any
) -> None:
    """An open renewal (declined) and a void one get 404, and asking writes nothing."""
    subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    unpaid = latest_invoice("renewal")
    assert unpaid.status == "open"
    sign_in(client, alice)
    assert client.get(f"/billing/invoices/{unpaid.number}").status_code == 200
    before = snapshot(gateway)
    assert client.get(f"/billing/invoices/{unpaid.number}/receipt.pdf").status_code == 404
    assert client.get(f"/billing/invoices/{unpaid.id}/receipt.pdf").status_code == 404
    assert snapshot(gateway) == before


def test_a_receipt_is_built_from_plain_data_without_a_request_R_INV_2() -> None:
    receipt = Receipt(
        title="Receipt",
        number="INV-000042",
        seller=("Example Software, Inc.", "Tax ID: DE123456789"),
        details=(ReceiptRow("Invoice", "INV-000042"), ReceiptRow("Paid on", "April 6, 2026")),
        headings=("Item", "Period", "Amount"),
        lines=(
            ReceiptLine("Credit for X Small", "Apr 7 to Apr 16 (10 of 31 days)", "-€16.13"),
            ReceiptLine("Small", "Apr 6 to Apr 16 (11 of 31 days)", "€35.48"),
        ),
        totals=(ReceiptRow("Charged to card", "€19.35"),),
        notes=("Paid in full – thank you.",),
    )
    moment = datetime(2026, 4, 6, 12, tzinfo=UTC)
    pdf = build_receipt(receipt, created_at=moment)
    assert pdf.startswith(b"%PDF-")
    assert pdf == build_receipt(receipt, created_at=moment)  # the same receipt, the same file
    text = pdf_text(pdf)
    for expected in ("INV-000042", "Credit for X Small", "-€16.13", "€35.48", "€19.35", "–"):
        assert expected in text, expected


def test_text_the_built_in_font_cannot_draw_asks_for_a_font_R_INV_2() -> None:
    """Korean won or a Japanese name needs a Unicode font: never a receipt missing them."""
    receipt = Receipt(
        title="Receipt",
        number="INV-000001",
        seller=("株式会社サンプル",),
        details=(),
        headings=("Item", "Period", "Amount"),
        lines=(ReceiptLine("Small", "", "₩150,000"),),
        totals=(),
    )
    with pytest.raises(ReceiptFontMissing) as refused:
        build_receipt(receipt)
    assert "₩" in refused.value.characters and "株" in refused.value.characters


@pytest.mark.parametrize("key", ["SELLER_NAME", "SELLER_ADDRESS", "SELLER_TAX_ID"])
def test_seller_settings_must_be_text_R_INV_2(
    database_url: str, clock: Any, gateway: Any, key: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"SUBSCRIPTIONS_{key}"):
        create_host(database_url, clock, gateway, payer="user", **{f"SUBSCRIPTIONS_{key}": 42})
