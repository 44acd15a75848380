"""Every invoice has a page for its owners (R-INV-1), linked from Subscription History and from
every e-mail that names it; nobody else can find it (R-SEC-2, R-SEC-4)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.models import Invoice, PaymentMethod, Subscription
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.balance import append_entry
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.settlement import settle, settlement_for

from .conftest import Outbox, at_noon, sign_in, signed_in, snapshot
from .factories import add_card, new_user, subscribe
from .flows import FIRST_CHARGE_ONLY, VISA, local_path, text_of
from .hosts import Team, User, db
from .test_dunning import _bank_approves
from .test_page_queries import _statements


def _invoice(kind: str) -> Invoice:
    db.session.expire_all()
    invoice = db.session.scalars(
        select(Invoice).where(Invoice.kind == kind).order_by(Invoice.id.desc())
    ).first()
    assert invoice is not None and invoice.number
    return invoice


def _page(client: FlaskClient, invoice: Invoice) -> str:
    page = client.get(f"/billing/invoices/{invoice.number}")
    assert page.status_code == 200, page.text
    return text_of(page.text)


def _row(history: str, number: str) -> str:
    """The row of one invoice on Subscription History."""
    match = re.search(rf'<tr [^>]*data-invoice="{number}">(.*?)</tr>', history, re.S)
    assert match, number
    return match[1]


def _declined_renewal(user: User, clock: Any) -> Subscription:
    """Small bought on March 17 with a card that pays once; its April 17 renewal is declined."""
    subscription = subscribe(user, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    return subscription


def test_a_purchase_has_a_page_with_its_lines_card_and_payment_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    subscribe(alice)
    invoice = _invoice("purchase")
    sign_in(client, alice)
    text = _page(client, invoice)
    for shown in (
        f"Invoice {invoice.number}",
        "Date March 17, 2026",
        "For Purchase",
        "Period March 17, 2026 to April 16, 2026",
        "Status Paid on March 17, 2026",
        "Small March 17, 2026 to April 16, 2026 31 days $100.00",
        "Amount due $100.00",
        "Balance used $0.00",
        "Charged to card $100.00",
        "with your Visa ending in 4242",
        "Download receipt (PDF)",
    ):
        assert shown in text, shown
    assert "Attempts" not in text  # one attempt, and it paid: nothing more to tell
    by_id = client.get(f"/billing/invoices/{invoice.id}")
    assert by_id.status_code == 200 and f"Invoice {invoice.number}" in by_id.text


def test_a_change_shows_prorated_lines_their_basis_and_the_balance_used_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    """E3: the credit and the charge each show their days and the amount they came from; the
    balance pays 16.13 and the card 19.35."""
    subscription = subscribe(alice, "x_small", addons=("operation", "marketing"))
    at_noon(clock, date(2026, 4, 6))
    request = ChangeRequest("small", "month", ("operation", "marketing"))
    shown = quote_for(alice, subscription.id, request)
    card = db.session.scalar(select(PaymentMethod.id))
    apply_change(alice, subscription.id, request, shown.quote.fingerprint, card)
    sign_in(client, alice)
    text = _page(client, _invoice("change"))
    for expected in (
        "For Plan change",
        "Credit for X Small April 7, 2026 to April 16, 2026 10 of 31 days, from $50.00 -$16.13",
        "Small April 6, 2026 to April 16, 2026 11 of 31 days, from $100.00 $35.48",
        "Credited to your balance $16.13",
        "Amount due $35.48",
        "Balance used $16.13",
        "Charged to card $19.35",
    ):
        assert expected in text, expected


def test_a_renewal_has_its_own_page_and_history_links_to_it_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    subscribe(alice)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    renewal = _invoice("renewal")
    sign_in(client, alice)
    text = _page(client, renewal)
    assert "For Renewal" in text and "Period April 17, 2026 to May 16, 2026" in text
    assert "Charged to card $100.00" in text and "Visa ending in 4242" in text
    history = client.get("/billing/history").text
    for invoice in db.session.scalars(select(Invoice)):
        link = f'href="/billing/invoices/{invoice.number}">{invoice.number}</a>'
        assert link in history, invoice.number


def test_a_settlement_names_the_invoices_it_paid_and_they_name_it_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    _declined_renewal(alice, clock)
    at_noon(clock, date(2026, 5, 17))
    renew_due()
    visa = add_card(alice, VISA)
    offer = settlement_for(alice.billing_id)
    assert offer.quote is not None
    done = settle(alice, offer.quote.fingerprint, visa.id)
    renewals = db.session.scalars(
        select(Invoice).where(Invoice.kind == "renewal").order_by(Invoice.id)
    ).all()
    assert len(renewals) == 2
    sign_in(client, alice)
    page = client.get(f"/billing/invoices/{done.number}").text
    text = text_of(page)
    assert "This settlement paid" in text and "Charged to card $200.00" in text
    for renewal in renewals:
        assert f'href="/billing/invoices/{renewal.number}"' in page
        renewal_page = client.get(f"/billing/invoices/{renewal.number}").text
        assert "Paid by settlement" in text_of(renewal_page)
        assert f'href="/billing/invoices/{done.number}"' in renewal_page
        assert "Charged to card $0.00" in text_of(renewal_page)  # the settlement took it
    history = client.get("/billing/history").text
    row = _row(history, done.number)
    assert "Settlement" in row and "$200.00" in row
    for renewal in renewals:  # one payment, one row: the renewals are in the settlement's
        assert f'href="/billing/invoices/{renewal.number}"' in row
        assert f'data-invoice="{renewal.number}"' not in history


def test_a_declined_attempt_is_part_of_the_invoice_it_tried_to_pay_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, gateway: Any
) -> None:
    """A renewal declined on April 17 and paid by the retry on April 18: one invoice, two
    attempts, one charge."""
    _declined_renewal(alice, clock)
    _bank_approves(gateway, "1232")
    at_noon(clock, date(2026, 4, 18))
    run_dunning()
    renewal = _invoice("renewal")
    assert renewal.status == "paid"
    sign_in(client, alice)
    text = _page(client, renewal)
    assert "Attempts" in text
    assert "1 April 17, 2026 Visa ending in 1232 $100.00 Declined" in text
    assert "2 April 18, 2026 Visa ending in 1232 $100.00 Paid" in text
    assert "Charged to card $100.00" in text  # once, not once per attempt
    history = client.get("/billing/history").text
    assert history.count(f'data-invoice="{renewal.number}"') == 1
    assert history.count("subs-invoice-renewal") + history.count('data-invoice="') == 2


def test_another_accounts_invoice_is_not_found_R_SEC_2_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: Any
) -> None:
    bob = new_user("bob")
    subscribe(bob)
    invoice = _invoice("purchase")
    sign_in(client, alice)
    before = snapshot(gateway)
    for path in (
        f"/billing/invoices/{invoice.number}",
        f"/billing/invoices/{invoice.id}",
        f"/billing/invoices/{invoice.number}/receipt.pdf",
        f"/billing/invoices/{invoice.id}/receipt.pdf",
    ):
        refused = client.get(path)
        assert refused.status_code == 404, path
        assert invoice.number not in refused.text and "$100.00" not in refused.text
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    "ident",
    [
        "0",
        "-1",
        "2147483648",
        "99999999999999999999999",
        "1.0",
        "1e3",
        "INV-",
        "INV-" + "9" * 40,
        "%E2%80%8B1",
        "%D9%A1",  # an Arabic-Indic digit one: not an ASCII id
        "'%20OR%201=1",
        "..%2F1",
    ],
)
def test_a_malformed_or_huge_invoice_id_is_not_found_R_SEC_4_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: Any, ident: str
) -> None:
    subscribe(alice)
    sign_in(client, alice)
    before = snapshot(gateway)
    assert client.get(f"/billing/invoices/{ident}").status_code == 404
    assert client.get(f"/billing/invoices/{ident}/receipt.pdf").status_code == 404
    assert snapshot(gateway) == before


def test_an_anonymous_visitor_is_sent_to_sign_in_R_SEC_2_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    subscribe(alice)
    invoice = _invoice("purchase")
    for path in (
        f"/billing/invoices/{invoice.number}",
        f"/billing/invoices/{invoice.number}/receipt.pdf",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]


def test_only_a_teams_owners_see_its_invoices_R_SEC_2_R_INV_1(
    team_app: Flask, acme: Team, catalog: None
) -> None:
    olivia, oscar, mike = acme.members
    subscribe(acme)  # type: ignore[arg-type]
    invoice = _invoice("purchase")
    for owner in (olivia, oscar):
        page = signed_in(team_app, owner).get(f"/billing/invoices/{invoice.number}")
        assert page.status_code == 200 and "$100.00" in page.text
    member = signed_in(team_app, mike)
    assert member.get(f"/billing/invoices/{invoice.number}").status_code == 403
    assert member.get(f"/billing/invoices/{invoice.number}/receipt.pdf").status_code == 403


def test_every_email_that_names_an_invoice_links_to_its_page_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """The purchase mail (text and HTML), the renewal receipt, payment failed and settled."""
    subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    visa = add_card(alice, VISA)
    offer = settlement_for(alice.billing_id)
    assert offer.quote is not None
    settle(alice, offer.quote.fingerprint, visa.id)
    payment_methods.set_default(alice, visa.id)
    at_noon(clock, date(2026, 5, 17))
    renew_due()
    sign_in(client, alice)
    invoices = {i.id: i for i in db.session.scalars(select(Invoice))}
    checked = 0
    for kind in ("purchase_completed", "payment_failed", "settled", "renewal_receipt"):
        mails = outbox.of_kind(kind)
        assert mails, kind
        for mail in mails:
            bodies = [mail.text_body] + ([mail.html_body] if mail.html_body else [])
            named = [i for i in invoices.values() if i.number in mail.text_body]
            assert named, kind
            for body in bodies:
                for invoice in named:
                    by = (invoice.number, str(invoice.id))  # a settlement's lines link by id
                    urls = [f"http://host.test/billing/invoices/{ident}" for ident in by]
                    [url] = [u for u in urls if re.search(re.escape(u) + r"\b", body)]
                    page = client.get(local_path(url))
                    assert page.status_code == 200 and invoice.number in page.text
                    checked += 1
    assert checked >= 5


def test_the_invoice_page_issues_the_same_statements_whatever_the_history_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    subscribe(alice)
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    first_renewal = _invoice("renewal")
    path = f"/billing/invoices/{first_renewal.number}"
    sign_in(client, alice)
    first = _statements(client, path)
    for month in range(5, 9):
        at_noon(clock, date(2026, month, 17))
        renew_due()
    append_entry(alice.billing_id, "credit", 500, "USD", "Goodwill credit")
    add_card(alice)
    add_card(alice)
    db.session.commit()
    later = _statements(client, path)
    latest = _statements(client, f"/billing/invoices/{_invoice('renewal').number}")
    assert first == later == latest
    assert later <= 7, later
