"""Payments exactly once when the payment service fails (R-BUY-6, R-BUY-7): a timeout after
the charge, an outage before it, and a process that died between reserving an order and
calling the service. Reconciliation asks Sandbox Pay by idempotency key, never charges."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.base import ChargeRequest, GatewayTimeout
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.models import (
    BalanceEntry,
    BillingProfile,
    Coupon,
    CouponRedemption,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Subscription,
)
from flask_subscriptions.services import pipeline
from flask_subscriptions.services.balance import append_entry, current_balance
from flask_subscriptions.services.checkout import _reserve
from flask_subscriptions.services.pipeline import recording
from flask_subscriptions.services.reconciliation import reconcile_unknown_payments

from .conftest import Outbox, sign_in, snapshot
from .flows import (
    VISA,
    apply_coupon,
    choose_card,
    confirm_page,
    fingerprint,
    flashes,
    place,
    place_form,
    start_order,
    text_of,
)
from .flows import register_card as register
from .hosts import User, db

LEASE = 120


@pytest.fixture
def app_config() -> dict[str, Any]:
    """A short claim lease, so the tests show exactly when a stale payment is taken over."""
    return {"SUBSCRIPTIONS_CLAIM_LEASE_SECONDS": LEASE}


# --- helpers ---------------------------------------------------------------------------------


def rows(model: type) -> list[Any]:
    db.session.expire_all()
    return list(db.session.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]


def customer_of(user: User) -> str:
    db.session.expire_all()
    customer = db.session.scalar(
        select(BillingProfile.gateway_customer).where(BillingProfile.account_id == user.billing_id)
    )
    assert customer
    return customer


def licenses_page(client: FlaskClient) -> str:
    page = client.get("/billing/licenses")
    assert page.status_code == 200
    return text_of(page.text)


def ready(client: FlaskClient, user: User, plan: str = "small") -> str:
    """Signed in, a Visa registered, an order at step 4; the order key."""
    sign_in(client, user)
    register(client, VISA)
    key = start_order(client, plan)
    [visa] = rows(PaymentMethod)
    assert choose_card(client, key, visa.id).status_code == 302
    return key


def assert_nothing_bought(client: FlaskClient, gateway: SandboxGateway, outbox: Outbox) -> None:
    assert rows(Subscription) == []
    assert outbox.all() == []
    assert "You are on the Free plan" in licenses_page(client)
    assert all(profile.checkout_order_id is None for profile in rows(BillingProfile))


def assert_bought_small_once(
    client: FlaskClient, key: str, user: User, gateway: SandboxGateway, outbox: Outbox
) -> Payment:
    """The license is active, Sandbox Pay holds one charge of $100.00, one invoice is paid,
    one purchase e-mail went out, and the completion page thanks the person."""
    [license_] = rows(Subscription)
    assert (license_.state, license_.account_id) == ("active", user.billing_id)
    [charge] = gateway.charges(customer_of(user))
    assert (charge.status, charge.amount, charge.currency) == ("succeeded", 10000, "usd")
    [paid] = [invoice for invoice in rows(Invoice) if invoice.status == "paid"]
    assert (paid.amount_due, paid.currency) == (10000, "USD")
    [payment] = [p for p in rows(Payment) if p.status == "succeeded"]
    assert gateway.charge_count(payment.idempotency_key) == 1
    assert payment.charge_id == charge.id
    [mail] = outbox.all()
    assert mail.kind == "purchase_completed" and mail.recipients == [user.email]
    assert "$100.00" in mail.text_body and str(paid.number) in mail.text_body
    page = client.get(f"/billing/orders/{key}/complete")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Thank you for your order" in shown and "$100.00" in shown
    assert str(paid.number) in shown
    assert "Small" in licenses_page(client)
    return payment


# --- a timeout after Sandbox Pay charged -----------------------------------------------------


def test_timeout_after_charge_is_pending_then_reconciled_once_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    gateway: SandboxGateway,
    outbox: Outbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-BUY-6: the service charged but did not answer (and its lookups time out too):
    "Payment pending", the payment is unknown, no license; the reconciliation job settles it
    from Sandbox Pay's record, once, and a second run changes nothing."""
    key = ready(client, alice)
    gateway.timeout_after_charge = True

    def still_silent(idempotency_key: str) -> None:
        raise GatewayTimeout("Sandbox Pay did not answer")

    monkeypatch.setattr(gateway, "lookup_charge", still_silent)
    form = place_form(client, key)
    placed = client.post(f"/billing/orders/{key}/place", data=form)
    assert placed.status_code == 302
    assert placed.headers["Location"].endswith(f"/billing/orders/{key}/complete")
    page = client.get(placed.headers["Location"])
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Payment pending" in shown and "Nothing will be charged twice" in shown
    assert "Thank you for your order" not in shown

    [payment] = rows(Payment)
    assert (payment.status, payment.amount) == ("unknown", 10000)
    [order] = rows(Order)
    assert order.state == "charging"
    [invoice] = rows(Invoice)
    assert invoice.status == "open"
    assert gateway.charge_count(payment.idempotency_key) == 1  # the money did move
    assert rows(Subscription) == [] and outbox.all() == []
    assert "You are on the Free plan" in licenses_page(client)

    # A browser retry of the same form charges nothing more.
    retry = client.post(f"/billing/orders/{key}/place", data=form)
    assert retry.status_code == 302 and retry.headers["Location"].endswith("/complete")
    assert gateway.charge_count() == 1

    # While the service stays silent, the job leaves the payment unknown.
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 1)
    assert rows(Payment)[0].status == "unknown"

    monkeypatch.undo()  # the service answers again (charges still time out: never called)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (1, 0)
    settled = assert_bought_small_once(client, key, alice, gateway, outbox)
    assert settled.id == payment.id
    assert [invoice.status for invoice in rows(Invoice)] == ["paid"]

    before = snapshot(gateway)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 0)
    assert snapshot(gateway) == before
    assert gateway.charge_count() == 1 and len(outbox.all()) == 1


def test_timeout_after_charge_is_settled_by_the_completion_page_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    gateway: SandboxGateway,
    outbox: Outbox,
) -> None:
    """R-BUY-6: when the service answers lookups again, the completion page itself asks it
    by the payment's key: the person sees the purchase at once, charged once."""
    key = ready(client, alice)
    gateway.timeout_after_charge = True
    placed = place(client, key)
    assert placed.status_code == 302
    [payment] = rows(Payment)
    assert payment.status == "unknown" and rows(Subscription) == []
    page = client.get(placed.headers["Location"])  # the person follows the redirect
    assert "Thank you for your order" in text_of(page.text)
    assert_bought_small_once(client, key, alice, gateway, outbox)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 0)
    assert gateway.charge_count() == 1 and len(outbox.all()) == 1


def test_timeout_before_the_service_recorded_anything_is_not_charged_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    gateway: SandboxGateway,
    outbox: Outbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-BUY-6: a timeout whose charge never reached Sandbox Pay is settled as not charged
    (its key is unknown there); the order can be placed again and is charged once."""
    key = ready(client, alice)

    def lost(request: ChargeRequest) -> None:
        raise GatewayTimeout("the request was lost on the way")

    monkeypatch.setattr(gateway, "charge", lost)
    place(client, key)
    [payment] = rows(Payment)
    assert payment.status == "unknown"
    monkeypatch.undo()

    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (1, 0)
    payment = rows(Payment)[0]
    assert (payment.status, payment.decline_code) == ("declined", "not_charged")
    assert gateway.charge_count() == 0
    assert_nothing_bought(client, gateway, outbox)
    back = client.get(f"/billing/orders/{key}/complete", follow_redirects=True)
    assert back.request.path == f"/billing/orders/{key}/payment"
    assert "The payment was not completed. Nothing was charged." in flashes(back.text)

    again = place(client, key)
    assert again.status_code == 302
    assert_bought_small_once(client, key, alice, gateway, outbox)


# --- an outage before the charge -------------------------------------------------------------


def test_service_unavailable_charges_nothing_then_placing_again_charges_once_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    gateway: SandboxGateway,
    outbox: Outbox,
) -> None:
    """R-BUY-6: Sandbox Pay is down before charging: the page says so, nothing was bought or
    charged; after it is back, Place Order charges once."""
    key = ready(client, alice)
    gateway.fail_before_charge = True
    refused = place(client, key)
    assert refused.status_code == 302
    page = client.get(refused.headers["Location"])
    assert page.request.path == f"/billing/orders/{key}/payment"
    assert "The payment service is unavailable. Nothing was charged; please try again." in flashes(
        page.text
    )
    assert gateway.charge_count() == 0
    [payment] = rows(Payment)
    assert (payment.status, payment.decline_code) == ("declined", "service_unavailable")
    assert [invoice.status for invoice in rows(Invoice)] == ["void"]
    assert rows(Order)[0].state == "open"
    assert_nothing_bought(client, gateway, outbox)

    gateway.fail_before_charge = False
    again = place(client, key)
    assert again.status_code == 302 and again.headers["Location"].endswith("/complete")
    assert_bought_small_once(client, key, alice, gateway, outbox)
    assert sorted(invoice.status for invoice in rows(Invoice)) == ["paid", "void"]
    assert gateway.charge_count() == 1


# --- a process that died after reserving the order -------------------------------------------


@pytest.fixture
def crashed(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: SandboxGateway
) -> Payment:
    """Alice has $20.00 of balance and applied WELCOME10 (10 %) to a Small order; Place
    Order's first transaction committed (coupon, balance, checkout slot, pending payment),
    then the process died before calling Sandbox Pay."""
    append_entry(alice.billing_id, "credit", 2000, "USD", "Goodwill credit")
    db.session.commit()
    key = ready(client, alice)
    assert apply_coupon(client, key, "WELCOME10").status_code == 302
    shown = text_of(confirm_page(client, key).text)
    assert "$70.00" in shown  # 100.00 − 10.00 coupon − 20.00 balance
    [order] = rows(Order)
    [reserved] = _reserve(order, alice, fingerprint(confirm_page(client, key).text), None)
    db.session.commit()
    assert reserved.payment_id is not None
    # What the crash left behind.
    [payment] = rows(Payment)
    assert (payment.status, payment.amount) == ("pending", 7000)
    assert rows(Order)[0].state == "charging"
    [coupon] = rows(Coupon)
    assert coupon.times_redeemed == 1 and len(rows(CouponRedemption)) == 1
    assert current_balance(alice.billing_id).amount == 0
    [profile] = rows(BillingProfile)
    assert profile.checkout_order_id == order.id
    return payment


def test_crashed_pending_payment_is_released_after_the_claim_lease_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    gateway: SandboxGateway,
    clock: FrozenClock,
    outbox: Outbox,
    crashed: Payment,
) -> None:
    """R-BUY-6: a payment left pending by a dead process is not touched while its process
    might still be working; after the claim lease it is settled as not charged, and the
    coupon, the balance and the checkout slot it held are given back."""
    [order] = rows(Order)
    page = text_of(client.get(f"/billing/orders/{order.key}/complete").text)
    assert "Payment pending" in page

    # The slot is held: another order of the account cannot be paid meanwhile.
    other = start_order(client, "x_small")
    choose_card(client, other, rows(PaymentMethod)[0].id)
    busy = place(client, other)
    assert busy.status_code == 409
    assert "Another purchase for this account is being paid right now" in text_of(busy.text)

    clock.advance(seconds=LEASE - 1)
    before = snapshot(gateway)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 0)
    assert snapshot(gateway) == before

    clock.advance(seconds=2)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (1, 0)
    payment = rows(Payment)[0]
    assert (payment.status, payment.decline_code) == ("declined", "not_charged")
    assert gateway.charge_count() == 0
    [coupon] = rows(Coupon)
    assert coupon.times_redeemed == 0 and rows(CouponRedemption) == []
    assert current_balance(alice.billing_id).amount == 2000
    ledger = [(e.kind, e.amount) for e in rows(BalanceEntry)]
    assert ledger == [("credit", 2000), ("use", -2000), ("restore", 2000)]
    assert [invoice.status for invoice in rows(Invoice)] == ["void"]
    assert_nothing_bought(client, gateway, outbox)
    back = client.get(f"/billing/orders/{order.key}/complete", follow_redirects=True)
    assert back.request.path == f"/billing/orders/{order.key}/payment"
    assert "The payment was not completed. Nothing was charged." in flashes(back.text)

    before = snapshot(gateway)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 0)
    assert snapshot(gateway) == before

    # Everything released can be used again: the same order is charged $70.00, once.
    assert "$70.00" in text_of(confirm_page(client, order.key).text)
    done = place(client, order.key)
    assert done.status_code == 302 and done.headers["Location"].endswith("/complete")
    [charge] = gateway.charges()
    assert (charge.amount, charge.status) == (7000, "succeeded")
    assert rows(Coupon)[0].times_redeemed == 1
    assert current_balance(alice.billing_id).amount == 0
    assert [s.state for s in rows(Subscription)] == ["active"]
    assert outbox.kinds() == ["purchase_completed"]
    assert "$70.00" in text_of(client.get(done.headers["Location"]).text)


def test_crash_after_the_service_charged_is_completed_after_the_lease_R_BUY_6(
    app: Flask,
    client: FlaskClient,
    alice: User,
    gateway: SandboxGateway,
    clock: FrozenClock,
    outbox: Outbox,
    crashed: Payment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-BUY-6: the process died after Sandbox Pay charged but before recording it: after the
    lease the job finds the charge by the payment's key and completes the purchase; the
    coupon and balance stay used, and the card was charged once."""

    def crash(answers: Any) -> Any:
        raise SystemExit("the worker died")

    monkeypatch.setattr(recording, "record", crash)
    reserved = pipeline.reserved_payment(crashed.id)
    assert reserved is not None
    with pytest.raises(SystemExit):
        pipeline.charge_and_record([reserved])
    monkeypatch.undo()
    db.session.rollback()
    assert rows(Payment)[0].status == "pending"
    assert gateway.charge_count(crashed.idempotency_key) == 1

    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (0, 0)  # within the lease: hands off
    clock.advance(seconds=LEASE + 1)
    report = reconcile_unknown_payments()
    assert (report.settled, report.still_unknown) == (1, 0)

    [payment] = rows(Payment)
    assert payment.status == "succeeded"
    [charge] = gateway.charges()
    assert (charge.amount, charge.id) == (7000, payment.charge_id)
    assert [s.state for s in rows(Subscription)] == ["active"]
    assert rows(Coupon)[0].times_redeemed == 1
    assert current_balance(alice.billing_id).amount == 0
    [profile] = rows(BillingProfile)
    assert profile.checkout_order_id is None
    [mail] = outbox.all()
    assert mail.kind == "purchase_completed" and "$70.00" in mail.text_body
    [order] = rows(Order)
    shown = text_of(client.get(f"/billing/orders/{order.key}/complete").text)
    assert "Thank you for your order" in shown and "$70.00" in shown

    before = snapshot(gateway)
    assert reconcile_unknown_payments().settled == 0
    assert snapshot(gateway) == before
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
