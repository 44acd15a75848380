"""A renewal charge the bank wants confirmed (3-D Secure), with Sandbox Pay (R-REN, R-DUN, #11).

The license's April 17 renewal is charged off session to a card whose bank asks for 3-D
Secure: the owners get an e-mail with a link to our page; until they confirm, the renewal
is unpaid (dunning); the dunning job makes no second attempt meanwhile; confirming pays it,
failing it is a decline. The Stripe version of the same story is in tests/stripe.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.models import Invoice, Payment, Subscription
from flask_subscriptions.services import payment_methods
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, at_noon, csrf_token, sign_in
from .factories import add_card, new_user, renewal_attempts, subscribe
from .flows import THREE_D_SECURE, local_path
from .hosts import Team, User, db


def _subscription() -> Subscription:
    db.session.expire_all()
    found = db.session.scalar(select(Subscription))
    assert found is not None
    return found


def renewal_waiting_for_the_bank(account: Any, clock: Any) -> Payment:
    """Small bought on March 17 with a Visa; then a card whose bank asks for 3-D Secure
    becomes the default, and the April 17 renewal is charged to it."""
    subscribe(account)
    secure = add_card(account, THREE_D_SECURE)
    payment_methods.set_default(account, secure.id)
    at_noon(clock, date(2026, 4, 17))
    report = renew_due()
    assert (report.renewed, report.failed, report.pending) == (0, 0, 1)
    [payment] = renewal_attempts()
    assert payment.status == "requires_action"
    return payment


def _link_in(body: str) -> str:
    match = re.search(r"Confirm the payment: (\S+)", body)
    assert match, body
    return local_path(match[1])


def _bank_page(client: FlaskClient, our_page: str) -> str:
    """Our page → its button → Sandbox Pay's 3-D Secure page (what the person clicks)."""
    page = client.get(our_page)
    assert page.status_code == 200, page.text
    assert "Confirm the payment with your bank" in page.text
    button = re.search(r'href="([^"]*/sandbox-pay/authenticate/[^"]+)"', page.text)
    assert button, page.text
    return local_path(button[1].replace("&amp;", "&"))


def _answer_the_bank(client: FlaskClient, bank_page: str, *, approve: bool) -> str:
    form = client.get(bank_page)
    assert form.status_code == 200, form.text
    choice = {"complete": "1"} if approve else {"fail": "1"}
    sent = client.post(bank_page, data={"csrf_token": csrf_token(form.text), **choice})
    assert sent.status_code == 302, sent.text
    return local_path(sent.headers["Location"])


def test_a_renewal_waiting_for_3ds_mails_the_owner_and_enters_dunning_R_REN_1_R_DUN_1(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    payment = renewal_waiting_for_the_bank(alice, clock)
    invoice = db.session.get(Invoice, payment.invoice_id)
    assert invoice is not None and invoice.status == "open"
    subscription = _subscription()
    assert subscription.payment_failed_on == date(2026, 4, 17)
    assert subscription.grace_ends_on == date(2026, 4, 24)
    assert status_of(subscription) == "Payment failed"

    [mail] = outbox.of_kind("payment_action_required")
    assert mail.recipients == ["alice@example.com"]
    assert mail.subject == "Action needed: please confirm the payment for your Small license"
    assert "confirm the payment of $100.00 for invoice " + str(invoice.number) in mail.text_body
    assert "Visa ending in 3184" in mail.text_body
    assert "Nothing has been charged yet." in mail.text_body
    assert _link_in(mail.text_body) == f"/billing/payments/{payment.id}/authenticate"
    assert "payment_failed" not in outbox.kinds()


def test_dunning_makes_no_second_attempt_while_one_waits_for_the_bank_R_DUN_1(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: SandboxGateway, outbox: Outbox
) -> None:
    """Another attempt could be confirmed too, and take the money twice."""
    renewal_waiting_for_the_bank(alice, clock)
    for day in (18, 19, 20):
        at_noon(clock, date(2026, 4, day))
        renew_due()
        run_dunning()
    assert [p.status for p in renewal_attempts()] == ["requires_action"]
    assert gateway.charge_count() == 2  # the purchase, and the one renewal attempt
    assert len(outbox.of_kind("payment_action_required")) == 1


def test_confirming_at_the_bank_pays_the_renewal_and_ends_dunning_R_REN_3(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    payment = renewal_waiting_for_the_bank(alice, clock)
    at_noon(clock, date(2026, 4, 18))
    sign_in(client, alice)
    our_page = _link_in(outbox.of_kind("payment_action_required")[0].text_body)
    bank_page = _bank_page(client, our_page)
    assert unquote(bank_page).endswith(f"next=http://host.test{our_page}")
    back = _answer_the_bank(client, bank_page, approve=True)
    assert urlsplit(back).path == our_page

    done = client.get(back)
    assert done.status_code == 200, done.text
    assert "Thank you: the payment is complete." in done.text and "$100.00" in done.text
    [paid] = renewal_attempts()
    assert paid.id == payment.id and paid.status == "succeeded"
    assert db.session.get(Invoice, payment.invoice_id).status == "paid"  # type: ignore[union-attr]
    subscription = _subscription()
    assert (subscription.payment_failed_on, subscription.grace_ends_on) == (None, None)
    assert status_of(subscription) == "Enabled"
    assert "renewal_receipt" in outbox.kinds()
    again = client.get(our_page)  # opened again from the e-mail: nothing more happens
    assert "Thank you: the payment is complete." in again.text
    assert "Confirm the payment with your bank" not in again.text
    assert len(renewal_attempts()) == 1


def test_failing_at_the_bank_is_a_declined_renewal_and_dunning_goes_on_R_DUN_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    payment = renewal_waiting_for_the_bank(alice, clock)
    sign_in(client, alice)
    our_page = f"/billing/payments/{payment.id}/authenticate"
    back = _answer_the_bank(client, _bank_page(client, our_page), approve=False)
    page = client.get(back)
    assert "The payment was not completed: The payment was not authenticated." in page.text
    [declined] = renewal_attempts()
    assert declined.status == "declined"
    assert status_of(_subscription()) == "Payment failed"
    [failed_mail] = outbox.of_kind("payment_failed")
    assert "The payment was not authenticated." in failed_mail.text_body
    # The next day's retry is a new attempt (nothing waits any more); the bank asks again.
    at_noon(clock, date(2026, 4, 18))
    run_dunning()
    assert [p.status for p in renewal_attempts()] == ["declined", "requires_action"]
    assert len(outbox.of_kind("payment_action_required")) == 2


def test_the_license_page_links_to_the_confirmation_R_LIC_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    payment = renewal_waiting_for_the_bank(alice, clock)
    sign_in(client, alice)
    page = client.get(f"/billing/licenses/{_subscription().id}")
    assert page.status_code == 200
    assert "Payment failed" in page.text
    assert "Your bank asks you to confirm the payment for this license." in page.text
    assert f"/billing/payments/{payment.id}/authenticate" in page.text


def test_only_the_accounts_owners_may_open_the_confirmation_page_R_SEC_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    payment = renewal_waiting_for_the_bank(alice, clock)
    our_page = f"/billing/payments/{payment.id}/authenticate"
    mallory = new_user("mallory")
    other = app.test_client()
    sign_in(other, mallory)
    refused = other.get(our_page)
    assert refused.status_code == 404 and "$100.00" not in refused.text
    assert app.test_client().get(our_page).status_code == 302  # signed out: to sign-in
    sign_in(client, alice)
    assert client.get("/billing/payments/999999/authenticate").status_code == 404
    assert client.get("/billing/payments/abc/authenticate").status_code == 404
    assert [p.status for p in renewal_attempts()] == ["requires_action"]


@pytest.mark.parametrize("who", ["olivia", "oscar"])
def test_every_owner_of_a_team_is_mailed_and_a_member_is_refused_R_NOTE_2_R_SEC_2(
    team_app: Flask, acme: Team, catalog: None, clock: Any, outbox: Outbox, who: str
) -> None:
    payment = renewal_waiting_for_the_bank(acme, clock)
    [mail] = outbox.of_kind("payment_action_required")
    assert sorted(mail.recipients) == ["olivia@acme.example", "oscar@acme.example"]
    people = {person.name: person for person in acme.members}
    owner, member = team_app.test_client(), team_app.test_client()
    sign_in(owner, people[who])
    sign_in(member, people["mike"])
    our_page = f"/billing/payments/{payment.id}/authenticate"
    assert owner.get(our_page).status_code == 200
    assert member.get(our_page).status_code == 403


def test_pay_all_unpaid_leaves_out_a_renewal_waiting_for_3ds_R_DUN_3(
    app: Flask, client: FlaskClient, alice: User, catalog: None, clock: Any
) -> None:
    """An attempt waiting for the bank can still take the money: "Pay all unpaid" must not
    pay its invoice too, or confirming the attempt later would charge the term twice."""
    from flask_subscriptions.services.settlement import settlement_for

    payment = renewal_waiting_for_the_bank(alice, clock)
    assert settlement_for(alice.billing_id).invoices == ()
    sign_in(client, alice)
    our_page = f"/billing/payments/{payment.id}/authenticate"
    client.get(_answer_the_bank(client, _bank_page(client, our_page), approve=False))
    [declined] = renewal_attempts()
    assert declined.status == "declined"
    [unpaid] = settlement_for(alice.billing_id).invoices  # now it can be paid in one go
    assert unpaid.id == payment.invoice_id
