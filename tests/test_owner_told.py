"""What the owner is told: right, once, on every screen (issue #17, items 1-5, 7, 8).

Each test walks a story through the pages, the outbox and Sandbox Pay's own records, and
names the rule it proves (R-DUN-4..6, R-INV-1, R-LIC-5, R-PRO-7).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.models import PaymentMethod, Subscription

from .conftest import Outbox, sign_in
from .factories import add_card
from .flows import VISA, text_of
from .hosts import User, db
from .test_dunning import _days, _failing_license


def _sub() -> Subscription:
    db.session.expire_all()
    found = db.session.scalar(select(Subscription))
    assert found is not None
    return found


def _license_page(client: FlaskClient) -> str:
    page = client.get(f"/billing/licenses/{_sub().id}")
    assert page.status_code == 200, page.text
    return text_of(page.text)


# --- R-DUN-4: one e-mail per event, and dates that agree with what happens ---------------


def test_one_payment_failed_mail_per_unpaid_renewal_then_each_step_once_R_DUN_4(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """Seven declined attempts in the grace week: one "payment failed", one warning, one
    "restricted"; then the settlement: one "settled"."""
    _failing_license(alice, clock)
    _days(clock, date(2026, 4, 17), 8)  # April 17 .. 24: seven attempts, then restricted
    assert _sub().restricted_on == date(2026, 4, 24)
    assert outbox.kinds().count("payment_failed") == 1
    assert [k for k in outbox.kinds() if k != "purchase_completed"] == [
        "payment_failed",
        "grace_ending",
        "restricted",
    ]
    sign_in(client, alice)
    add_card(alice, VISA)
    _settle_with(client, "4242")
    assert [k for k in outbox.kinds() if k != "purchase_completed"][3:] == ["settled"]


def test_the_grace_dates_in_mails_and_pages_agree_with_the_restriction_R_DUN_4(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """The renewal fails on April 17; the grace (7 days) runs through April 23; paid features
    are restricted on April 24. Every e-mail and page says exactly that."""
    _failing_license(alice, clock)
    sign_in(client, alice)
    during = _license_page(client)
    assert "We try again once a day through April 23, 2026" in during
    assert "If it is still unpaid on April 24, 2026, paid features are restricted" in during
    assert "until April 24" not in during
    _days(clock, date(2026, 4, 17), 8)
    [failed] = outbox.of_kind("payment_failed")
    assert "We try the card again once a day through April 23, 2026" in failed.text_body
    assert "If it is still unpaid on April 24, 2026, paid features are restricted" in (
        failed.text_body
    )
    [warning] = outbox.of_kind("grace_ending")
    assert "April 23, 2026 is the last day" in warning.subject
    assert "If it is still unpaid on April 24, 2026, paid features will be restricted" in (
        warning.text_body
    )
    for mail in (failed, warning):
        assert "by April 24" not in mail.text_body and "until April 24" not in mail.text_body
    [restricted] = outbox.of_kind("restricted")
    assert "April 24, 2026" in restricted.text_body
    assert "restricted since April 24, 2026" in _license_page(client)


def _settle_with(client: FlaskClient, last4: str) -> FlaskClient:
    """Subscription History → Pay all unpaid with the card ending in ``last4``."""
    method = db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == last4))
    assert method is not None
    page = client.get("/billing/history")
    assert "Pay all unpaid" in page.text, page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.text)
    assert token and fingerprint
    client.post(
        "/billing/history/settle",
        data={"csrf_token": token[1], "fingerprint": fingerprint[1], "payment_method": method.id},
    )
    return client
