"""The Stripe adapter over real HTTP: a host app served on loopback, a real browser on
localstripe's Stripe.js and Elements form, and webhooks sent by localstripe itself.

The browser types the card into the form localstripe's Stripe.js puts on our page; the
test checks that no request to our site ever carries the number (R-SEC-1).

Chromium is driven from a thread of its own, with its own Playwright: the browser tests in
``tests/browser`` keep theirs running for the whole session, and Playwright's sync API
allows one per thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from playwright.sync_api import Page, Request, expect, sync_playwright
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from flask_subscriptions.models import Order, Payment, PaymentMethod
from flask_subscriptions.services import checkout

from ..browser.conftest import CHROMIUM_ARGS, TIMEOUT_MS, chromium_path  # noqa: F401 (fixture)
from ..factories import add_card
from ..hosts import User, db
from .conftest import WEBHOOK_SECRET, stripe_config
from .driver import LocalStripeGateway

VISA = "4242424242424242"
NEEDS_AUTHENTICATION = "4000002760003184"


@pytest.fixture
def app_config(localstripe: str) -> dict[str, Any]:
    # Links must point at the served app, not at the test client's host.test.
    return {**stripe_config(localstripe), "SERVER_NAME": None}


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-host", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


Steps = Callable[[Page], None]


@pytest.fixture
def in_browser(chromium_path: str, live: str, alice: User) -> Callable[[Steps], None]:  # noqa: F811
    """Run ``steps(page)`` in Chromium, signed in as alice, on the served host."""
    alice_id = alice.id
    db.session.commit()  # on SQLite an open transaction here would block the server

    def run(steps: Steps) -> None:
        failures: list[BaseException] = []

        def main() -> None:
            try:
                with sync_playwright() as playwright:
                    chromium = playwright.chromium.launch(
                        executable_path=chromium_path, args=CHROMIUM_ARGS
                    )
                    try:
                        context = chromium.new_context(base_url=live)
                        context.set_default_timeout(TIMEOUT_MS)
                        page = context.new_page()
                        assert page.request.post(f"/test-login/{alice_id}").ok
                        steps(page)
                    finally:
                        chromium.close()
            except BaseException as exc:  # raised again in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=main, name="chromium")
        thread.start()
        thread.join(timeout=180)
        assert not thread.is_alive(), "the browser did not finish"
        if failures:
            raise failures[0]

    return run


def _to_us(live: str, sent: list[Request]) -> list[str]:
    """Everything the browser sent to our site: URLs and bodies."""
    return [f"{r.url} {r.post_data or ''}" for r in sent if r.url.startswith(live)]


def _fill_card(page: Page, number: str) -> None:
    """localstripe's stand-in for Stripe's card fields (Stripe's are in its own iframe)."""
    element = page.locator("#subs-card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("30")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("94107")


def _register(page: Page, live: str, number: str, approve: bool = False) -> list[Request]:
    """Register a card on the embedded form; ``approve``: the bank asks, the person agrees."""
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    page.goto("/billing/payment-methods")
    page.get_by_role("button", name="Register a card").click()
    expect(page.get_by_role("heading", name="Register a card")).to_be_visible()
    _fill_card(page, number)
    page.get_by_role("button", name="Register this card").click()
    if approve:
        page.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_text(f"Visa •••• {number[-4:]} registered.")).to_be_visible()
    return sent


@pytest.mark.browser
def test_a_card_registered_in_the_browser_goes_to_stripe_only_R_SEC_1(
    in_browser: Callable[[Steps], None], live: str, gateway: LocalStripeGateway
) -> None:
    sent: list[Request] = []
    in_browser(lambda page: sent.extend(_register(page, live, VISA)))
    assert _to_us(live, sent) and not [line for line in _to_us(live, sent) if VISA in line]
    assert [r for r in sent if VISA in (r.post_data or "")]  # it went to localstripe
    card = db.session.scalars(select(PaymentMethod)).one()
    assert (card.brand, card.last4, card.token[:3]) == ("visa", "4242", "pm_")


@pytest.mark.browser
def test_a_payment_confirmed_on_the_authentication_page_completes_the_order(
    in_browser: Callable[[Steps], None], live: str, catalog: None, gateway: LocalStripeGateway
) -> None:
    """3-D Secure in the browser: Place Order → our page → Stripe.js's bank dialog →
    back on the completion page, paid."""
    db.session.commit()

    def steps(page: Page) -> None:
        _register(page, live, NEEDS_AUTHENTICATION, approve=True)
        page.goto("/billing/checkout/small?interval=month&currency=USD")
        page.get_by_role("button", name="To Payment Methods").click()
        page.get_by_role("button", name="Proceed to Confirmation of your order").click()
        page.get_by_role("button", name="Place Order").click()
        expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
        page.get_by_role("button", name="Confirm the payment with your bank").click()
        page.get_by_role("button", name="Complete authentication").click()
        page.wait_for_url("**/billing/orders/*/complete")

    in_browser(steps)
    db.session.expire_all()
    assert db.session.scalar(select(Order.state)) == "paid"
    assert db.session.scalar(select(Payment.status)) == "succeeded"


@pytest.mark.browser
def test_use_another_card_in_checkout_registers_it_on_the_embedded_form_R_BUY_4_R_SEC_1(
    in_browser: Callable[[Steps], None], live: str, catalog: None, gateway: LocalStripeGateway
) -> None:
    """Step 3 → Use another card → Elements on a checkout page → back to step 3 with the
    new card selected → Place Order: paid with it. The number only ever goes to Stripe."""
    sent: list[Request] = []

    def steps(page: Page) -> None:
        page.on("request", lambda request: sent.append(request))
        page.goto("/billing/checkout/small?interval=month&currency=USD")
        page.get_by_role("button", name="To Payment Methods").click()
        expect(page.get_by_text("You have no registered card yet.")).to_be_visible()
        page.get_by_role("button", name="Use another card").click()
        expect(page.get_by_role("heading", name="Use another card")).to_be_visible()
        expect(page.locator("[aria-current=step]")).to_have_text("3. Payment method")
        _fill_card(page, VISA)
        page.get_by_role("button", name="Register this card").click()
        expect(page.get_by_text("Visa •••• 4242 registered.")).to_be_visible()
        expect(page.get_by_role("heading", name="Select a payment method")).to_be_visible()
        expect(page.get_by_role("radio")).to_be_checked()
        page.get_by_role("button", name="Proceed to Confirmation of your order").click()
        page.get_by_role("button", name="Place Order").click()
        page.wait_for_url("**/billing/orders/*/complete")

    in_browser(steps)
    assert _to_us(live, sent) and not [line for line in _to_us(live, sent) if VISA in line]
    db.session.expire_all()
    card = db.session.scalars(select(PaymentMethod)).one()
    order = db.session.scalars(select(Order)).one()
    assert (order.state, order.payment_method_id) == ("paid", card.id)
    assert db.session.scalar(select(Payment.status)) == "succeeded"


def test_localstripes_own_webhook_delivery_is_verified_and_recorded(
    app: Flask, live: str, alice: User, catalog: None, localstripe: str, gateway: LocalStripeGateway
) -> None:
    """localstripe signs and sends ``payment_intent.succeeded`` itself, over HTTP."""
    hook = f"{localstripe}/_config/webhooks/flask-subscriptions"
    data = {"url": f"{live}/billing/stripe/webhook", "secret": WEBHOOK_SECRET,
            "events": ["payment_intent.succeeded"]}  # fmt: skip
    assert requests.post(hook, json=data, timeout=5).ok
    try:
        card = add_card(alice, NEEDS_AUTHENTICATION)
        order = checkout.start_order("small", "month", "USD", [], alice)
        checkout.choose_payment_method(order, alice, card.id)
        view = checkout.view_order(order, alice)
        checkout.place_order(order.key, alice, view.quote.fingerprint, return_url="/back")
        payment = db.session.scalars(select(Payment)).one()
        payment_id, charge_id = payment.id, payment.charge_id or ""
        db.session.commit()
        gateway.complete_authentication(charge_id, succeeded=True)
        assert _eventually(lambda: db.session.get(Payment, payment_id).status) == "succeeded"
    finally:  # localstripe keeps webhooks across tests: point this one nowhere
        requests.post(hook, json={**data, "events": ["none.none"]}, timeout=5)


def _eventually(read: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        value = read()
        db.session.commit()  # hold no lock while the server works
        if value == "succeeded" or time.monotonic() > deadline:
            return value
        time.sleep(0.2)
