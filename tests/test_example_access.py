"""Who may do what in the example app (issue #17, items 10, 17, 18): refusals inside the
example's own layout, a member who cannot start the team's order, and the Mail page and
test clock for signed-in demo people only, each seeing their own accounts' e-mails (R-EX-3).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from example_app.models import Team, User, db
from flask_subscriptions.models import Order, OutboxMessage

from .conftest import csrf_token
from .flows import text_of
from .test_example_app import _create, _dispose, header, sign_in_as

ASK_AN_OWNER = "Only the account's owners manage billing; ask an owner."


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Flask]:
    app = _create(tmp_path)
    yield app
    _dispose(app)


@pytest.fixture
def client(example: Flask) -> FlaskClient:
    return example.test_client()


def orders(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Order)) or 0


def record_mail(app: Flask, account_id: str, subject: str) -> None:
    with app.app_context():
        db.session.add(
            OutboxMessage(
                kind="note",
                account_id=account_id,
                recipients=["someone@example.com"],
                subject=subject,
                text_body=f"Body of {subject}",
                status="pending",
                next_attempt_at=datetime(2099, 1, 1),
                created_at=datetime(2026, 1, 1),
            )
        )
        db.session.commit()


def account_ids(app: Flask) -> tuple[str, str]:
    """alice's own account, and Acme's."""
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.name == "alice"))
        acme = db.session.scalar(select(Team).where(Team.name == "Acme"))
        assert alice is not None and acme is not None
        return alice.billing_id, acme.billing_id


# --- items 10 and 17: refusals in the layout, nothing written -------------------------------


def test_a_member_posting_step_1_is_refused_before_anything_is_written_R_SEC_2(
    example: Flask, client: FlaskClient
) -> None:
    """R-SEC-2 (issue #17 item 17): Mike, a member of Acme, posts **To Payment Methods** for
    Medium with a valid CSRF token: a 403 inside the example's layout that tells him to ask
    an owner, and no order row is written."""
    sign_in_as(client, "mike")
    token = csrf_token(client.get("/usage").text)
    before = orders(example)
    for plan in ("medium", "small"):
        response = client.post(
            f"/billing/checkout/{plan}",
            data={"csrf_token": token, "interval": "month", "currency": "USD"},
        )
        assert response.status_code == 403, plan
        assert "Example SaaS" in header(response.text)
        assert ASK_AN_OWNER in text_of(response.text)
    assert orders(example) == before == 0
    refused = client.get("/billing/licenses")
    assert refused.status_code == 403 and "Example SaaS" in header(refused.text)
    assert ASK_AN_OWNER in text_of(refused.text)


def test_a_billing_url_that_matches_nothing_is_404_in_the_layout_R_SEC_4(
    client: FlaskClient,
) -> None:
    """R-SEC-4 (issue #17 item 10): not Werkzeug's bare page, the example's own."""
    sign_in_as(client, "alice")
    for url in ("/billing/licenses/abc", "/billing/payments/2147483648/authenticate"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Example SaaS" in header(response.text)
        assert "That does not exist, or is not yours." in text_of(response.text)


# --- item 18: Mail and Test clock ------------------------------------------------------------


def test_mail_and_test_clock_need_a_signed_in_demo_person_R_EX_3(
    example: Flask, client: FlaskClient
) -> None:
    """R-EX-3, R-EX-2 (issue #17 item 18): signed out, the Mail page and the test clock send
    to sign-in; nothing moves and no e-mail is shown; the header does not offer them."""
    alice_id, _ = account_ids(example)
    record_mail(example, alice_id, "Alice's receipt INV-000001")
    for url in ("/mail", "/test-clock"):
        response = client.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    moved = client.post("/test-clock", data={"days": "30"})
    assert moved.status_code in (302, 400)
    assert moved.status_code == 400 or "/sign-in" in moved.headers["Location"]
    reset = client.post("/test-clock/reset")
    assert reset.status_code in (302, 400)
    assert reset.status_code == 400 or "/sign-in" in reset.headers["Location"]
    home = client.get("/")
    assert "Alice's receipt" not in home.text
    assert ">Mail</a>" not in header(home.text) and ">Test clock</a>" not in header(home.text)
    sign_in_as(client, "alice")
    page = client.get("/test-clock")
    assert page.status_code == 200 and ">Test clock</a>" in header(page.text)


def test_mail_shows_only_the_accounts_the_person_belongs_to_R_EX_3(
    example: Flask, client: FlaskClient
) -> None:
    """R-EX-3 (issue #17 item 18): alice reads her own e-mails, not Acme's; olivia and mike
    (Acme) read Acme's, not alice's. The page says no rule ids."""
    alice_id, acme_id = account_ids(example)
    record_mail(example, alice_id, "Alice's receipt INV-000001")
    record_mail(example, acme_id, "Acme's receipt INV-000002")
    record_mail(example, "user-999", "Someone else's receipt INV-000003")
    sign_in_as(client, "alice")
    page = text_of(client.get("/mail").text)
    assert "Alice's receipt" in page
    assert "Acme's receipt" not in page and "Someone else's" not in page
    assert "R-EX" not in page and "1 in all" in page
    for name in ("olivia", "mike"):
        other = example.test_client()
        sign_in_as(other, name)
        page = text_of(other.get("/mail").text)
        assert "Acme's receipt" in page, name
        assert "Alice's receipt" not in page and "Someone else's" not in page, name
