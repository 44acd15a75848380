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
from flask_subscriptions.models import Invoice, PaymentMethod, Subscription
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, at_noon, sign_in
from .factories import add_card, subscribe
from .flows import (
    DECLINES_EVERY_CHARGE,
    THREE_D_SECURE,
    VISA,
    choose_card,
    local_path,
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


# --- R-DUN-6: a settlement that waits for the bank is never reported as paid ------------------


def _restricted_with_a_3ds_card(alice: User, client: FlaskClient, clock: Any) -> FlaskClient:
    """Small's April 17 renewal is never paid; restricted on April 24; the owner then
    registers a card whose bank asks for 3-D Secure, and pays everything unpaid with it."""
    _failing_license(alice, clock)
    _days(clock, date(2026, 4, 17), 8)
    sign_in(client, alice)
    register_card(client, THREE_D_SECURE)
    page = client.get("/billing/history")
    assert "Pay all unpaid" in page.text
    return client


def _pay_all_unpaid(client: FlaskClient, last4: str) -> Any:
    method = _card(last4)
    page = client.get("/billing/history")
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.text)
    assert fingerprint
    return post_form(
        client,
        "/billing/history",
        "/billing/history/settle",
        {"fingerprint": fingerprint[1], "payment_method": method.id},
        follow_redirects=True,
    )


def _confirm_link(html: str) -> str:
    match = re.search(r'href="(/billing/payments/(\d+)/authenticate)"', html)
    assert match, text_of(html)
    return match[1]


def _bank(client: FlaskClient, our_page: str, *, approve: bool) -> str:
    """Our confirmation page → the bank's page → the bank's answer; where it sends us."""
    page = client.get(our_page)
    button = re.search(r'href="([^"]*/sandbox-pay/authenticate/[^"]+)"', page.text)
    assert button, text_of(page.text)
    bank_page = local_path(button[1].replace("&amp;", "&"))
    form = client.get(bank_page)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    assert token
    choice = {"complete": "1"} if approve else {"fail": "1"}
    sent = client.post(bank_page, data={"csrf_token": token[1], **choice})
    assert sent.status_code == 302, sent.text
    return local_path(sent.headers["Location"])


def _renewal_statuses() -> list[str]:
    db.session.expire_all()
    return [
        i.status
        for i in db.session.scalars(
            select(Invoice).where(Invoice.kind == "renewal").order_by(Invoice.id)
        )
    ]


def test_a_3ds_settlement_says_it_waits_and_links_to_the_bank_R_DUN_6(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    _restricted_with_a_3ds_card(alice, client, clock)
    done = _pay_all_unpaid(client, "3184")
    assert done.status_code == 200
    seen = text_of(done.text)
    assert "everything unpaid is settled" not in seen and "Thank you" not in seen
    assert "Your bank asks you to confirm this payment" in seen
    assert "Nothing has been charged yet" in seen
    assert "settled" not in outbox.kinds()
    assert _renewal_statuses() == ["open"]
    assert _sub().restricted_on is not None
    # opened again later, the page still says so
    assert "Your bank asks you to confirm this payment" in text_of(
        client.get("/billing/history").text
    )
    [renewal] = _numbers("renewal")
    renewal_page = text_of(client.get(f"/billing/invoices/{renewal}").text)
    assert "Paid" not in renewal_page.replace("Paid features", "")
    assert "is waiting for its payment to be confirmed" in renewal_page

    back = _bank(client, _confirm_link(done.text), approve=True)
    finished = client.get(back)
    assert "Thank you: the payment is complete." in finished.text
    assert "Subscription History" in text_of(finished.text)
    assert _renewal_statuses() == ["paid"]
    assert _sub().restricted_on is None
    assert outbox.kinds().count("settled") == 1
    history = text_of(client.get("/billing/history").text)
    assert "Pay all unpaid" not in history and "confirm this payment" not in history


def test_a_3ds_settlement_the_bank_refuses_leaves_everything_payable_R_DUN_6(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    _restricted_with_a_3ds_card(alice, client, clock)
    done = _pay_all_unpaid(client, "3184")
    back = _bank(client, _confirm_link(done.text), approve=False)
    assert "The payment was not completed" in client.get(back).text
    assert _renewal_statuses() == ["open"]
    history = client.get("/billing/history")
    assert "Pay all unpaid" in history.text and "confirm this payment" not in history.text
    register_card(client, VISA)
    paid = _pay_all_unpaid(client, "4242")
    assert "Thank you: everything unpaid is settled" in text_of(paid.text)
    assert _renewal_statuses() == ["paid"]
    assert outbox.kinds().count("settled") == 1


# --- R-INV-1: History shows one row per payment that took money ---------------------------------


def _history_rows(client: FlaskClient) -> dict[str, str]:
    """Subscription History's rows: invoice number → the row as a person reads it."""
    page = client.get("/billing/history")
    assert page.status_code == 200, page.text
    rows = re.findall(r'<tr [^>]*data-invoice="([^"]+)"[^>]*>(.*?)</tr>', page.text, re.S)
    return {number: text_of(body) for number, body in rows}


def _numbers(kind: str, status: str | None = None) -> list[str]:
    db.session.expire_all()
    query = select(Invoice.number).where(Invoice.kind == kind).order_by(Invoice.id)
    if status:
        query = query.where(Invoice.status == status)
    return [n for n in db.session.scalars(query) if n]


def test_history_shows_one_settlement_row_for_one_payment_and_folds_declined_ones_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    """The April 17 renewal is declined; a settlement with a card that declines fails; one
    with a Visa pays $100: History shows the purchase and one $100 settlement, which names
    the renewal it paid and the declined attempt; no "Renewal $100 Paid", no Void row."""
    _failing_license(alice, clock)
    sign_in(client, alice)
    register_card(client, DECLINES_EVERY_CHARGE)
    _pay_all_unpaid(client, "0341")
    register_card(client, VISA)
    paid = _pay_all_unpaid(client, "4242")
    assert "Thank you: everything unpaid is settled" in text_of(paid.text)
    [renewal] = _numbers("renewal")
    [declined] = _numbers("settlement", "void")
    [settlement] = _numbers("settlement", "paid")
    [purchase] = _numbers("purchase")
    rows = _history_rows(client)
    assert list(rows) == [settlement, purchase]
    row = rows[settlement]
    assert "Settlement" in row and renewal in row and "Paid" in row
    assert row.count("$100.00") == 1  # what the card paid, once
    assert f"1 declined attempt: {declined}" in row
    assert "Void" not in " ".join(rows.values())
    page = client.get("/billing/history").text
    assert f'href="/billing/invoices/{renewal}"' in page
    assert f'href="/billing/invoices/{declined}"' in page


def test_history_folds_a_declined_purchase_into_the_purchase_that_paid_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    sign_in(client, alice)
    register_card(client, DECLINES_EVERY_CHARGE)
    key = start_order(client, "small")
    choose_card(client, key, _card("0341").id)
    place(client, key)
    register_card(client, VISA)
    choose_card(client, key, _card("4242").id)
    place(client, key)
    [declined] = _numbers("purchase", "void")
    [purchase] = _numbers("purchase", "paid")
    rows = _history_rows(client)
    assert list(rows) == [purchase]
    assert f"1 declined attempt: {declined}" in rows[purchase]
    assert "Purchase" in rows[purchase] and rows[purchase].count("$100.00") == 1


def test_history_shows_what_the_card_paid_for_a_change_and_its_period_R_INV_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    """E3: a change of $35.48 paid $16.13 from the balance and $19.35 by card: the row says
    those two, not a gross amount, and the period the change covers."""
    subscription = subscribe(alice, "x_small", addons=("operation", "marketing"))
    at_noon(clock, date(2026, 4, 6))
    request = ChangeRequest("small", "month", ("operation", "marketing"))
    shown = quote_for(alice, subscription.id, request)
    card = db.session.scalar(select(PaymentMethod.id))
    apply_change(alice, subscription.id, request, shown.quote.fingerprint, card)
    sign_in(client, alice)
    [change] = _numbers("change")
    row = _history_rows(client)[change]
    assert "$19.35" in row and "$16.13" in row and "$35.48" not in row
    assert "April 6, 2026 to April 16, 2026" in row


# --- R-LIC-5, R-PRO-7: an immediate change says it cancels the change scheduled for renewal ----


def test_an_immediate_change_says_it_cancels_the_scheduled_change_R_LIC_5_R_PRO_7(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """Small, scheduled to renew as Medium on April 17; on April 6 the owner upgrades to Large
    now. The quote says the Medium renewal is cancelled before confirming, the e-mail says
    it happened, and the license renews as Large."""
    subscription = subscribe(alice, "small")
    sign_in(client, alice)
    detail = f"/billing/licenses/{subscription.id}"
    saved = post_form(client, detail, detail, {"auto_renewal": "enabled", "renew_with": "medium"})
    assert saved.status_code == 302, saved.text
    at_noon(clock, date(2026, 4, 6))
    url = f"/billing/licenses/{subscription.id}/change?plan=large&interval=month"
    page = client.get(url)
    quote = text_of(page.text)
    assert (
        "Your license is scheduled to change to Medium at the next renewal on April 17, 2026."
        " This change cancels that: it will renew as Large." in quote
    )
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.text)
    assert fingerprint
    done = post_form(
        client,
        url,
        f"/billing/licenses/{subscription.id}/change",
        {
            "plan": "large",
            "interval": "month",
            "fingerprint": fingerprint[1],
            "payment_method": _card("4242").id,
        },
    )
    assert done.status_code == 302, done.text
    [mail] = outbox.of_kind("plan_change_applied")
    assert (
        "Your license was scheduled to change to Medium at the next renewal; this change"
        " cancelled that, and it renews as Large." in " ".join(mail.text_body.split())
    )
    assert _sub().next_plan_id is None
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    renewal = db.session.scalars(
        select(Invoice).where(Invoice.kind == "renewal").order_by(Invoice.id.desc())
    ).first()
    assert renewal is not None
    assert "Large" in text_of(client.get(f"/billing/invoices/{renewal.number}").text)


def test_a_change_to_the_scheduled_plan_cancels_nothing_R_LIC_5(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    subscription = subscribe(alice, "small")
    sign_in(client, alice)
    detail = f"/billing/licenses/{subscription.id}"
    post_form(client, detail, detail, {"auto_renewal": "enabled", "renew_with": "medium"})
    page = client.get(f"/billing/licenses/{subscription.id}/change?plan=medium&interval=month")
    assert "cancels that" not in text_of(page.text)


# --- item 8: removing the card renewals need warns first, and the license page says so ---------


def _remove(client: FlaskClient, last4: str, **extra: str) -> Any:
    method = _card(last4)
    return post_form(
        client,
        "/billing/payment-methods",
        f"/billing/payment-methods/{method.id}/remove",
        extra,
    )


def test_removing_the_last_card_of_an_auto_renewing_license_warns_first_R_DUN_5(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: SandboxGateway
) -> None:
    subscription = subscribe(alice, "small")
    sign_in(client, alice)
    asked = _remove(client, "4242")
    assert asked.status_code == 200, asked.text
    warning = text_of(asked.text)
    assert (
        "Without Visa •••• 4242 no card can pay the renewal of your Small license on"
        " April 17, 2026: that renewal will fail." in warning
    )
    assert _card("4242").removed_at is None  # nothing removed yet
    assert "Remove anyway" in warning and "Keep the card" in warning
    license_page = text_of(client.get(f"/billing/licenses/{subscription.id}").text)
    assert "no card can pay" not in license_page

    done = _remove(client, "4242", confirm="1")
    assert done.status_code == 302
    assert _card("4242").removed_at is not None
    license_page = text_of(client.get(f"/billing/licenses/{subscription.id}").text)
    assert (
        "No card can pay the renewal on April 17, 2026: it will fail unless you register a card."
        in license_page
    )


def test_removing_a_card_renewals_do_not_need_asks_nothing_R_DUN_5(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    subscribe(alice, "small")
    sign_in(client, alice)
    register_card(client, "5555 5555 5555 4444")
    done = _remove(client, "4444")
    assert done.status_code == 302 and _card("4444").removed_at is not None
    register_card(client, "5555 5555 5555 4444")  # a second card the owner sets as default
    newer = db.session.scalars(
        select(PaymentMethod).where(
            PaymentMethod.last4 == "4444", PaymentMethod.removed_at.is_(None)
        )
    ).one()
    post_form(client, "/billing/payment-methods", f"/billing/payment-methods/{newer.id}/default")
    done = _remove(client, "4242")  # the card that paid: the default card still pays
    assert done.status_code == 302
