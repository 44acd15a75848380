"""Billing through the services and pages with Stripe as the gateway (localstripe).

The services are the same as with the sandbox; only the gateway differs. A card is
registered the way Stripe Elements does it (the number goes to localstripe only).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.models import (
    BillingProfile,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Subscription,
    Withdrawal,
)
from flask_subscriptions.services import checkout, payment_methods
from flask_subscriptions.services.balance import append_entry, current_balance
from flask_subscriptions.services.reconciliation import reconcile_unknown_payments
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.withdrawals import withdraw, withdrawal_quote

from ..card_numbers import luhn_valid_numbers
from ..conftest import at_noon, sign_in
from ..factories import add_card, subscribe
from ..flows import THREE_D_SECURE, choose_card, local_path, place, post_form, start_order
from ..hosts import User, db
from . import driver as faults
from .driver import LocalStripeGateway

DECLINES_EVERY_CHARGE = "4000 0000 0000 0341"


def _payments(invoice_kind: str) -> list[Payment]:
    return list(
        db.session.scalars(
            select(Payment)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.kind == invoice_kind)
            .order_by(Payment.id)
        )
    )


def test_checkout_charges_a_stripe_customer_created_once_R_BUY_6(
    app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    """One Stripe customer per account, however many cards; the purchase is one
    PaymentIntent, confirmed once, carrying the payment's idempotency key."""
    add_card(alice)
    subscription = subscribe(alice)
    assert subscription.state == "active"
    [payment] = _payments("purchase")
    assert payment.status == "succeeded" and (payment.charge_id or "").startswith("pi_")
    intent = gateway.client.v1.payment_intents.retrieve(payment.charge_id or "")
    assert intent.metadata["idempotency_key"] == payment.idempotency_key
    assert (intent.amount, intent.currency, intent.status) == (10000, "usd", "succeeded")
    assert payment.amount == intent.amount
    profile = db.session.scalar(select(BillingProfile).where(BillingProfile.account_id == "1"))
    assert profile is not None and (profile.gateway_customer or "").startswith("cus_")
    assert len(gateway.client.v1.customers.list(params={"limit": 100}).data) == 1
    assert gateway.charge_count() == 1
    cards = db.session.scalars(select(PaymentMethod)).all()
    assert {(c.gateway, c.brand, c.last4) for c in cards} == {("stripe", "visa", "4242")}


def test_renewal_is_an_off_session_charge_R_REN_2(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: LocalStripeGateway
) -> None:
    """R-REN-2: the term is charged once, off session, however often renewal runs."""
    at_noon(clock, date(2026, 1, 31))
    subscription = subscribe(alice)
    at_noon(clock, subscription.current_term_end)
    gateway.faults.sent.clear()
    assert (renew_due().renewed, renew_due().renewed) == (1, 0)
    [renewal] = _payments("renewal")
    assert renewal.status == "succeeded"
    confirmations = [data for method, url, data in gateway.faults.sent if url.endswith("/confirm")]
    assert len(confirmations) == 1 and "off_session=true" in confirmations[0]
    assert gateway.charge_count() == 2


def test_a_declined_renewal_is_a_hard_decline_with_stripes_code(
    app: Flask, alice: User, catalog: None, clock: Any, gateway: LocalStripeGateway
) -> None:
    subscription = subscribe(alice)
    bad = add_card(alice, DECLINES_EVERY_CHARGE)
    payment_methods.set_default(alice, bad.id)
    at_noon(clock, subscription.current_term_end)
    report = renew_due()
    assert (report.renewed, report.failed) == (0, 1)
    [renewal] = _payments("renewal")
    assert (renewal.status, renewal.decline_kind, renewal.decline_code) == (
        "declined",
        "hard",
        "card_declined",
    )
    assert db.session.get(Subscription, subscription.id).payment_failed_on is not None


def test_an_unknown_outcome_is_settled_by_lookup_not_a_second_charge_R_BUY_6(
    app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    """The answer to the confirmation is lost: the order waits as "charging", the payment
    as "unknown"; reconciliation asks Stripe and completes the order, charging nothing more."""
    card = add_card(alice)
    order = checkout.start_order("small", "month", "USD", [], alice)
    checkout.choose_payment_method(order, alice, card.id)
    view = checkout.view_order(order, alice)
    gateway.faults.timeout_after = faults.confirming
    placed = checkout.place_order(order.key, alice, view.quote.fingerprint)
    gateway.faults.timeout_after = None
    [payment] = _payments("purchase")
    assert (placed.state, payment.status) == ("charging", "unknown")
    assert gateway.charge_count() == 1  # the money moved; only the answer was lost

    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (1, 0)
    db.session.expire_all()
    assert db.session.get(Order, order.id).state == "paid"
    assert db.session.get(Payment, payment.id).status == "succeeded"
    assert gateway.charge_count() == 1


def test_a_refund_of_a_purchase_is_made_once(
    app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    subscribe(alice)
    [payment] = _payments("purchase")
    charge_id, key = payment.charge_id or "", f"refund:{payment.id}"
    db.session.commit()  # the gateway is called with nothing of ours open, as services do
    first = gateway.refund(charge_id, 500, key)
    assert first.status == "succeeded" and (first.refund_id or "").startswith("re_")
    assert gateway.refund(charge_id, 500, key) == first
    refunds = gateway.client.v1.refunds.list(params={"payment_intent": charge_id})
    assert [(r.id, r.amount) for r in refunds.data] == [(first.refund_id, 500)]


def test_a_withdrawal_is_paid_back_to_the_card_R_BAL_2(
    app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    """R-BAL-2 with Stripe: the net of the balance is refunded to the latest payment."""
    subscribe(alice)
    [payment] = _payments("purchase")
    append_entry(alice.billing_id, "credit", 4000, "USD", "Credit from a plan change")
    db.session.commit()
    done = withdraw(alice, withdrawal_quote(alice.billing_id).seq)
    assert (done.status, done.net) == ("paid", 3600)
    assert (done.payout_reference or "").startswith("re_")
    refund = gateway.client.v1.refunds.retrieve(done.payout_reference or "")
    assert (refund.amount, refund.payment_intent) == (3600, payment.charge_id)
    assert current_balance(alice.billing_id).amount == 0


def test_a_withdrawal_larger_than_any_payment_fails_and_keeps_the_balance_R_BAL_2(
    app: Flask, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    subscribe(alice)
    append_entry(alice.billing_id, "credit", 10**6, "USD", "Credit from a plan change")
    db.session.commit()
    try:
        withdraw(alice, withdrawal_quote(alice.billing_id).seq)
    except Exception as exc:  # WithdrawalFailed
        assert "bank transfer" in str(exc)
    else:
        raise AssertionError("the withdrawal should have failed")
    assert db.session.scalar(select(Withdrawal.status)) == "failed"
    assert current_balance(alice.billing_id).amount == 10**6


# -- the pages --------------------------------------------------------------------------


def _register_through_the_page(
    client: FlaskClient, gateway: LocalStripeGateway, number: str, next_url: str | None = None
) -> str:
    """Payment methods → Register a card → Stripe's embedded form → back to our page."""
    data = {"next": next_url} if next_url else {}
    page = post_form(client, "/billing/payment-methods", "/billing/payment-methods/register", data)
    assert page.status_code == 200, page.text
    assert 'id="subs-card-element"' in page.text and "pk_test_localstripe" in page.text
    secret = re.search(r'"(seti_\w+_secret_\w+)"', page.text)
    back = re.search(r'returnUrl: "([^"]+)"', page.text)
    assert secret and back
    assert "/js.stripe.com/v3/" in page.text  # localstripe's Stripe.js
    assert 'name="number"' not in page.text and 'name="cvc"' not in page.text  # R-SEC-1
    reference = secret[1].split("_secret_")[0]
    gateway.register_card(reference, number.replace(" ", ""), 12, 2030)
    return_url = json.loads(f'"{back[1]}"')  # as the page's script reads it
    joiner = "&" if "?" in return_url else "?"
    answer = client.get(f"{local_path(return_url)}{joiner}setup_reference={reference}")
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def test_a_card_registered_on_the_embedded_form_R_BUY_4_R_SEC_1(
    app: Flask, client: FlaskClient, alice: User, gateway: LocalStripeGateway
) -> None:
    sign_in(client, alice)
    landed = _register_through_the_page(client, gateway, "4242 4242 4242 4242")
    assert local_path(landed).startswith("/billing/payment-methods?card=")
    [card] = db.session.scalars(select(PaymentMethod)).all()
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2030)
    assert card.token.startswith("pm_")


def test_a_checkout_the_bank_wants_confirmed_completes_on_our_page(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    """3-D Secure at checkout: Place Order → our authentication page (Stripe.js) → the
    person approves → the completion page finds the payment succeeded; the order is paid."""
    sign_in(client, alice)
    _register_through_the_page(client, gateway, THREE_D_SECURE)
    card = db.session.scalars(select(PaymentMethod)).one()
    key = start_order(client)
    assert choose_card(client, key, card.id).status_code == 302
    placed = place(client, key)
    assert placed.status_code == 302, placed.text
    action = local_path(placed.headers["Location"])
    assert action.startswith("/billing/stripe/authenticate/")
    [payment] = _payments("purchase")
    assert payment.status == "requires_action"

    page = client.get(action)
    assert page.status_code == 200, page.text
    assert "confirmCardPayment" in page.text and payment.charge_id in page.text
    assert f"/billing/orders/{key}/complete" in page.text  # where the browser goes next

    gateway.complete_authentication(payment.charge_id or "", succeeded=True)
    done = client.get(f"/billing/orders/{key}/complete")
    assert done.status_code == 200, done.text
    db.session.expire_all()
    assert db.session.scalar(select(Order.state).where(Order.key == key)) == "paid"
    assert db.session.get(Payment, payment.id).status == "succeeded"
    assert gateway.charge_count() == 1


def test_the_authentication_page_is_for_the_payers_owners_only_R_SEC_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    sign_in(client, alice)
    _register_through_the_page(client, gateway, THREE_D_SECURE)
    card = db.session.scalars(select(PaymentMethod)).one()
    key = start_order(client)
    choose_card(client, key, card.id)
    action = local_path(place(client, key).headers["Location"])

    mallory = User(name="mallory", email="mallory@example.com")
    db.session.add(mallory)
    db.session.commit()
    other = app.test_client()
    sign_in(other, mallory)
    assert other.get(action).status_code == 404
    assert app.test_client().get(action).status_code == 302  # signed out: to the login page
    forged = action.rsplit("/", 1)[0] + "/" + "x" + action.rsplit("/", 1)[1]
    assert client.get(forged).status_code == 404


def test_no_card_number_is_kept_anywhere_R_SEC_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: LocalStripeGateway
) -> None:
    """R-SEC-1: after cards went through the embedded form and were charged, no 13 to
    19-digit Luhn-valid number is in any table of ours (billing, host, Stripe adapter)."""
    numbers = ["4242 4242 4242 4242", "5555 5555 5555 4444", DECLINES_EVERY_CHARGE]
    sign_in(client, alice)
    for number in numbers:
        _register_through_the_page(client, gateway, number)
    card = db.session.scalars(select(PaymentMethod).order_by(PaymentMethod.id)).first()
    assert card is not None
    key = start_order(client)
    choose_card(client, key, card.id)
    assert place(client, key).status_code == 302
    dump = _dump_tables(app)
    assert {"4242", "4444", "0341"} <= set(re.findall(r"\b\d{4}\b", dump))  # last 4 are kept
    # A quote's fingerprint is a SHA-256 in hex: its digit runs are not card numbers (with
    # the sample catalog's yen and won prices one of them happens to pass the Luhn check).
    assert luhn_valid_numbers(re.sub(r"\b[0-9a-f]{64}\b", "", dump)) == []


def _dump_tables(app: Flask) -> str:
    from flask_subscriptions.gateways.stripe import metadata as stripe_metadata
    from flask_subscriptions.models import metadata as billing_metadata

    rows = []
    with db.engine.connect() as conn:
        for metadata in (billing_metadata, db.metadata, stripe_metadata):
            for table in metadata.sorted_tables:
                rows += ["|".join(map(str, row)) for row in conn.execute(select(table))]
    return "\n".join(rows)
