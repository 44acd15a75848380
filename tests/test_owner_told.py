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

from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.models import PaymentMethod, Subscription
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, at_noon, sign_in
from .factories import add_card
from .flows import (
    DECLINES_EVERY_CHARGE,
    VISA,
    choose_card,
    place,
    post_form,
    register_card,
    start_order,
    text_of,
)
from .hosts import Team, User, db
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


# --- R-DUN-5: renewals charge the card that paid, never one that was declined ----------------


def _card(last4: str) -> PaymentMethod:
    db.session.expire_all()
    found = db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == last4))
    assert found is not None
    return found


def _cards_page(client: FlaskClient) -> dict[str, str]:
    """The payment methods page: last 4 → the row as a person reads it."""
    page = client.get("/billing/payment-methods")
    rows = re.findall(r'<tr data-card="\d+">(.*?)</tr>', page.text, re.S)
    return {re.search(r"•••• (\d{4})", text_of(r))[1]: text_of(r) for r in rows}  # type: ignore[index]


def _charged_cards(gateway: SandboxGateway) -> list[tuple[str, str]]:
    """(description, card token) of every charge Sandbox Pay received, oldest first."""
    return [(c.description, c.payment_method) for c in gateway.charges()]


def test_renewals_charge_the_card_that_paid_not_the_declined_first_card_R_DUN_5(
    team_app: Flask, acme: Team, catalog: None, clock: Any, gateway: SandboxGateway
) -> None:
    """Acme registers 0341 first, is declined with it at Place Order, pays with a Visa:
    the Visa is the default and pays the renewal; 0341 never becomes the default."""
    olivia = acme.members[0]
    client = team_app.test_client()
    sign_in(client, olivia)
    register_card(client, DECLINES_EVERY_CHARGE)
    assert "Default" not in _cards_page(client)["0341"]
    key = start_order(client, "small")
    choose_card(client, key, _card("0341").id)
    declined = place(client, key)
    assert declined.headers["Location"].endswith("/payment")
    assert "Default" not in _cards_page(client)["0341"]
    register_card(client, VISA)
    choose_card(client, key, _card("4242").id)
    assert "Thank you for your order" in client.get(place(client, key).headers["Location"]).text
    rows = _cards_page(client)
    assert "Default" in rows["4242"] and "Default" not in rows["0341"]

    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    renewal = _charged_cards(gateway)[-1]
    assert renewal[0].startswith("Renewal") and renewal[1] == _card("4242").token


def test_the_card_the_owner_sets_as_default_pays_renewals_R_DUN_5(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, gateway: SandboxGateway
) -> None:
    """A card registered in advance pays renewals once the owner sets it as the default;
    until then the card that paid does."""
    sign_in(client, alice)
    register_card(client, VISA)
    key = start_order(client, "small")
    choose_card(client, key, _card("4242").id)
    place(client, key)
    register_card(client, "5555 5555 5555 4444")
    rows = _cards_page(client)
    assert "Default" in rows["4242"] and "Default" not in rows["4444"]
    post_form(
        client, "/billing/payment-methods", f"/billing/payment-methods/{_card('4444').id}/default"
    )
    assert "Default" in _cards_page(client)["4444"]
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    assert _charged_cards(gateway)[-1][1] == _card("4444").token
