"""Long lists show pages of a fixed size (#22): Subscription History, the balance ledger, the
support console's lists and the example app's Mail page. A page's statements and size are
the same with 1 row or 1,000 before it; following Older then Newer visits every row once, in
order; a link no page wrote is a 400 that says so (R-SEC-4).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from example_app.models import User as ExampleUser
from example_app.models import db as example_db
from flask_subscriptions.models import BalanceEntry, Invoice, OutboxMessage, Subscription

from .conftest import signed_in, statements
from .factories import new_user, subscribe
from .hosts import User, db
from .test_example_app import _create, _dispose, sign_in_as

SIZE = 20
MANY = 1000


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SUBSCRIPTIONS_PAGE_SIZE": SIZE}


def get(client: FlaskClient, path: str) -> tuple[str, int]:
    """The page's HTML and its statements (it must answer 200)."""
    db.session.commit()
    with statements() as sent:
        page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return page.text, len(sent)


def numbers(html: str) -> list[str]:
    return re.findall(r'data-invoice="([^"]+)"', html)


def link(html: str, which: str) -> str | None:
    found = re.search(rf'class="subs-pager-{which}" rel="\w+" href="([^"]+)"', html)
    return found[1].replace("&amp;", "&") if found else None


def older_pages(client: FlaskClient, first: str, statements: int) -> list[str]:
    """Every page after ``first``, following its Older links to the end; each must cost
    ``statements``."""
    pages, path = [], link(first, "older")
    while path is not None:
        html, sent = get(client, path)
        assert sent == statements, path
        pages.append(html)
        path = link(html, "older")
    return pages


def add_renewal_invoices(subscription: Subscription, count: int, first: int = 1) -> None:
    """``count`` paid renewal invoices (the ``first``-th on), one a month after the
    purchase, written at once."""
    start = subscription.current_term_start
    rows = []
    for n in range(first, first + count):
        day = start + timedelta(days=31 * n)
        rows.append(
            {
                "number": f"T-{n:05d}",
                "account_id": subscription.account_id,
                "subscription_id": subscription.id,
                "kind": "renewal",
                "status": "paid",
                "currency": "USD",
                "total": 10000,
                "balance_applied": 0,
                "amount_due": 10000,
                "period_start": day,
                "period_end": day + timedelta(days=30),
                "created_at": datetime(day.year, day.month, day.day, 12),
                "paid_at": datetime(day.year, day.month, day.day, 12),
            }
        )
    db.session.execute(insert(Invoice), rows)
    db.session.commit()


# --- Subscription History -------------------------------------------------------------------


def test_history_costs_the_same_with_1_or_1000_invoices_and_pages_through_them_R_INV_1(
    app: Flask, alice: User, catalog: None
) -> None:
    subscription = subscribe(alice)
    client = signed_in(app, alice)
    one, statements_one = get(client, "/billing/history")
    assert len(numbers(one)) == 1 and link(one, "older") is None and link(one, "newer") is None

    add_renewal_invoices(subscription, MANY - 1)
    first, statements_first = get(client, "/billing/history")
    assert statements_first == statements_one
    assert numbers(first)[:2] == ["T-00999", "T-00998"] and len(numbers(first)) == SIZE
    assert link(first, "newer") is None
    assert len(first) < 2 * len(one) + SIZE * 1000  # a page, not the history

    pages = older_pages(client, first, statements_one)
    seen = [number for html in (first, *pages) for number in numbers(html)]
    assert len(seen) == MANY and len(set(seen)) == MANY
    assert seen == [f"T-{n:05d}" for n in range(MANY - 1, 0, -1)] + [seen[-1]]
    assert len(pages) == MANY // SIZE - 1

    # Newer from the second page is the first page again, with nothing newer above it.
    second = pages[0]
    back, _ = get(client, link(second, "newer") or "")
    assert numbers(back) == numbers(first) and link(back, "newer") is None
    assert link(back, "older") is not None


def test_a_page_is_as_large_with_1000_invoices_as_with_a_page_of_them_R_INV_1(
    app: Flask, alice: User, catalog: None
) -> None:
    subscription = subscribe(alice)
    add_renewal_invoices(subscription, SIZE)
    client = signed_in(app, alice)
    few, _ = get(client, "/billing/history")
    add_renewal_invoices(subscription, MANY - SIZE, first=SIZE + 1)
    many, _ = get(client, "/billing/history")
    assert len(numbers(few)) == len(numbers(many)) == SIZE
    assert abs(len(many) - len(few)) < 100, (len(few), len(many))  # the Newer/Older links


@pytest.mark.parametrize(
    "query",
    [
        "before=abc",
        "after=-1",
        "before=1&after=1",
        "before=20261399120000000000-5",  # month 13
        "before=2026031712000000000-5",  # one digit short
        "before=20260317120000000000-99999999999999999999",
        "before=20260317120000000000",
    ],
)
def test_a_page_link_no_page_wrote_is_refused_with_a_message_R_SEC_4(
    app: Flask, alice: User, catalog: None, query: str
) -> None:
    subscribe(alice)
    client = signed_in(app, alice)
    page = client.get(f"/billing/history?{query}")
    assert page.status_code == 400
    assert "That page link is not valid" in page.text


def test_a_cursor_from_another_account_shows_nothing_of_it_R_SEC_2(
    app: Flask, alice: User, catalog: None
) -> None:
    """A cursor is a position, not a row: any position shows only the account's own rows."""
    subscribe(alice)
    bob = new_user("bob")
    subscribe(bob)
    client = signed_in(app, alice)
    html, _ = get(client, "/billing/history?before=29991231000000000000-999999")
    shown = numbers(html)
    mine = db.session.scalars(
        select(Invoice.number).where(Invoice.account_id == alice.billing_id)
    ).all()
    assert shown and set(shown) <= set(mine)


# --- the balance ledger -----------------------------------------------------------------------


def add_ledger_entries(account_id: str, count: int) -> None:
    now = datetime(2026, 3, 17, 12)
    rows = [
        {
            "account_id": account_id,
            "seq": n,
            "kind": "credit",
            "amount": 100,
            "balance_after": 100 * n,
            "currency": "USD",
            "reason": f"Credit {n}",
            "created_at": now,
        }
        for n in range(1, count + 1)
    ]
    db.session.execute(insert(BalanceEntry), rows)
    db.session.commit()


def test_the_ledger_costs_the_same_with_1_or_1000_entries_and_pages_through_them_R_BAL_3(
    app: Flask, alice: User, catalog: None
) -> None:
    client = signed_in(app, alice)
    add_ledger_entries(alice.billing_id, 1)
    _, statements_one = get(client, "/billing/balance")
    db.session.execute(BalanceEntry.__table__.delete())
    add_ledger_entries(alice.billing_id, MANY)
    html, statements = get(client, "/billing/balance")
    assert statements == statements_one
    assert "$1,000.00" in html  # the balance is the latest entry's, whatever the page
    # The first page's newest entry holds the balance; an older page reads it too.
    pages = [html, *older_pages(client, html, statements_one + 1)]
    seen = [credit for page in pages for credit in re.findall(r"Credit (\d+)</td>", page)]
    assert seen == [str(n) for n in range(MANY, 0, -1)]
    shown = {re.findall(r'class="subs-balance-amount">([^<]+)<', page)[0] for page in pages}
    assert shown == {"$1,000.00"}  # older pages show the balance too, not their newest row's


# --- the support console ------------------------------------------------------------------------


def add_emails(account_id: str, count: int) -> None:
    now = datetime(2026, 3, 17, 12)
    rows = [
        {
            "account_id": account_id,
            "kind": "renewal_receipt",
            "recipients": ["alice@example.com"],
            "subject": f"Receipt {n}",
            "text_body": "Paid.",
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(1, count + 1)
    ]
    db.session.execute(insert(OutboxMessage), rows)
    db.session.commit()


def test_the_console_account_page_costs_the_same_with_1000_invoices_and_emails_R_OPS_1(
    app: Flask, alice: User, catalog: None
) -> None:
    subscription = subscribe(alice)
    sam = User(name="sam", email="sam@support.example", role="support")
    db.session.add(sam)
    db.session.commit()
    client = signed_in(app, sam)
    path = f"/billing/admin/accounts/{alice.billing_id}"
    _, statements_few = get(client, path)
    add_renewal_invoices(subscription, MANY)
    add_emails(alice.billing_id, MANY)
    html, statements = get(client, path)
    assert statements == statements_few
    assert len(re.findall(r'class="subs-admin-email"', html)) == SIZE
    older = re.search(
        r'class="subs-pager-older" rel="next" href="([^"]*emails_before=[^"]+)"', html
    )
    assert older, "no Older link under the e-mails"
    second, statements = get(client, older[1].replace("&amp;", "&"))
    assert statements == statements_few
    subjects = re.findall(r"<td>Receipt (\d+)</td>", second)
    assert subjects[0] == str(MANY - SIZE)  # the e-mails moved a page; the rest did not
    assert client.get(f"{path}?emails_before=x").status_code == 400


# --- the example app's Mail page (R-EX-3) ---------------------------------------------------------


def test_the_example_mail_page_shows_a_page_of_emails_R_EX_3(tmp_path: Path) -> None:
    example = _create(tmp_path)
    try:
        client = example.test_client()
        sign_in_as(client, "alice")
        with example.app_context():
            alice = example_db.session.scalar(
                select(ExampleUser).where(ExampleUser.name == "alice")
            )
            account_id = alice.billing_id
            now = datetime(2026, 3, 17, 12)
            example_db.session.execute(
                insert(OutboxMessage),
                [
                    {
                        "account_id": account_id,
                        "kind": "renewal_receipt",
                        "recipients": ["alice@example.com"],
                        "subject": f"Receipt {n}",
                        "text_body": "Paid.",
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for n in range(1, 61)
                ],
            )
            example_db.session.commit()
            size = example.config["SUBSCRIPTIONS_PAGE_SIZE"]
        page = client.get("/mail")
        assert page.status_code == 200
        assert "60 in all: 60 sent" in page.text
        assert page.text.count('class="ex-card ex-mail"') == size
        older = link(page.text, "older")
        assert older is not None
        second = client.get(older)
        assert f"Receipt {60 - size}<" in second.text
        assert client.get("/mail?before=nope").status_code == 400
    finally:
        _dispose(example)
