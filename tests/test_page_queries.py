"""The SQL each billing page issues is fixed: it grows neither with an
account's history (terms, invoices, payments, ledger entries) nor with its cards.

Each page is counted once with a month of history and one card, then again after four more
renewals, a credit and two more cards; both counts must be equal and within the bound
measured on SQLite when this test was written (a regression fails); SQLite's BEGIN
counts, PostgreSQL's is not a statement. A page is counted warm (viewed once before): the
plans page reads the catalog once per process, then only its version.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_subscriptions.services.balance import append_entry
from flask_subscriptions.services.renewals import renew_due

from .conftest import at_noon, sign_in, statements
from .factories import add_card, subscribe
from .hosts import User, db

#: Statements per page, measured: a page that starts issuing more fails here.
PAGES = {
    "/billing/plans": 3,  # the catalog copy's version, the currency and the license: one
    "/billing/licenses": 3,  # each license with its plans and add-ons in one statement
    "/billing/licenses/{license}": 3,  # with the catalog version and the renewal card
    "/billing/licenses/{license}/change": 10,
    "/billing/history": 4,  # rows and whether anything is unpaid, what they fold in
    "/billing/payment-methods": 3,  # the default card (R-DUN-5) and the address with the cards
    "/billing/balance": 3,  # the newest entry of the first page holds the balance
}


def _statements(client: FlaskClient, path: str) -> int:
    db.session.commit()  # the request starts with nothing open
    with statements() as sent:
        page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return len(sent)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_billing_page_issues_the_same_statements_whatever_the_history(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, page: str
) -> None:
    subscription = subscribe(alice)
    path = page.format(license=subscription.id)
    sign_in(client, alice)
    assert client.get(path).status_code == 200  # warm: this process's copy of the catalog
    first = _statements(client, path)
    for month in range(4, 8):
        at_noon(clock, date(2026, month, 17))
        renew_due()
    append_entry(alice.billing_id, "credit", 500, "USD", "Goodwill credit")
    add_card(alice)
    add_card(alice)
    db.session.commit()
    later = _statements(client, path)
    assert first == later, (page, first, later)
    assert later <= PAGES[page], (page, later)
