"""Checkout in a real browser, walked as a new user of the example app would (R-BUY, R-EX).

Every step is a click or typed text on the pages a person sees: the example app's sign-in,
Plans, the five checkout steps, Sandbox Pay's own card form, License Management and the Mail
page. Nothing goes through the test client. Screenshots of every step land in
``test-artifacts/browser/<test>/``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Locator, Page, Request, expect
from sqlalchemy import select

from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import charges

from .conftest import LiveApp, shot

pytestmark = pytest.mark.browser

VISA = "4242 4242 4242 4242"
DECLINED_AT_REGISTRATION = "4000 0000 0000 0002"
DECLINES_EVERY_CHARGE = "4000 0000 0000 0341"
EXPIRY, EXPIRES = "12/30", "expires 12/2030"  # typed on Sandbox Pay's form; shown by us

ORDER_PAYMENT = re.compile(r"/billing/orders/([^/?#]+)/payment")


# -- what a person does --------------------------------------------------------------------


def nav(page: Page) -> Locator:
    """The example app's header, with its links (Plans, License Management, Mail…)."""
    return page.get_by_role("banner")


def type_into(field: Locator, text: str) -> None:
    """Click a field, clear it and type ``text`` key by key."""
    field.click()
    field.clear()
    field.press_sequentially(text)


def sign_in_from_home(page: Page, name: str) -> None:
    page.goto("/")
    nav(page).get_by_role("link", name="Sign in", exact=True).click()
    sign_in_on_page(page, name)


def sign_in_on_page(page: Page, name: str) -> None:
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_role("button", name=f"Sign in as {name}", exact=True).click()
    expect(nav(page)).to_contain_text(f"Signed in as {name}")


def plan_card(page: Page, plan_name: str) -> Locator:
    heading = page.get_by_role("heading", name=plan_name, exact=True)
    return page.locator("section").filter(has=heading)


def buy_now(page: Page, plan_name: str) -> None:
    """Header → Plans → **Buy now** on ``plan_name`` → step 1."""
    nav(page).get_by_role("link", name="Plans", exact=True).click()
    expect(page.get_by_role("heading", name="Plans", level=1)).to_be_visible()
    plan_card(page, plan_name).get_by_role("button", name="Buy now").click()
    expect(page.get_by_role("heading", name="Confirm your order")).to_be_visible()
    expect(current_step(page)).to_have_text("1. Confirm your order")


def current_step(page: Page) -> Locator:
    return page.get_by_role("list", name="Checkout progress").locator("[aria-current=step]")


def enter_card_on_sandbox_pay(page: Page, number: str) -> None:
    """Sandbox Pay's own form: the only place a card number is typed (R-BUY-4)."""
    expect(page).to_have_title("Add a card · Sandbox Pay")
    expect(page).to_have_url(re.compile(r"/sandbox-pay/setup/"))
    type_into(page.get_by_label("Card number"), number)
    type_into(page.get_by_label("Expiry date"), EXPIRY)
    type_into(page.get_by_label("Security code"), "123")
    page.get_by_role("button", name="Save card").click()


def row_value(page: Page, header: str) -> Locator:
    """The value cell of the table row headed ``header`` (e.g. Total, Amount)."""
    row = page.get_by_role("row").filter(has=page.locator("th", has_text=re.compile(f"^{header}$")))
    return row.locator("td")


def open_mail(page: Page) -> None:
    nav(page).get_by_role("link", name="Mail", exact=True).click()
    expect(page.get_by_role("heading", name="Mail", level=1)).to_be_visible()


def order_key(url: str) -> str:
    match = ORDER_PAYMENT.search(url)
    assert match, f"not a step-3 URL: {url}"
    return match[1]


# -- the tests -------------------------------------------------------------------------------


def test_new_user_buys_small_with_a_new_card_and_a_coupon(page: Page, live_app: LiveApp) -> None:
    """R-BUY-1, R-BUY-2, R-BUY-4, R-BUY-5, R-BUY-7, R-CPN-1, R-EX-1, R-EX-3: alice signs in,
    buys Small monthly with a Visa typed into Sandbox Pay's form and the WELCOME10 coupon,
    pays exactly $90.00, sees the completion page and reads the purchase e-mail on the Mail
    page. The card number is only ever sent to Sandbox Pay, never to the host app."""
    posted: list[Request] = []
    page.on("request", lambda r: posted.append(r) if r.method == "POST" else None)

    # R-EX-1: the demo accounts, and sign-in.
    sign_in_from_home(page, "alice")
    shot(page, "signed-in")

    # R-BUY-1: every purchasable plan, with its details and Buy now.
    nav(page).get_by_role("link", name="Plans", exact=True).click()
    for name in ("X Small", "Small", "Medium", "Large"):
        expect(plan_card(page, name).get_by_role("button", name="Buy now")).to_be_visible()
    small = plan_card(page, "Small")
    expect(small).to_contain_text("$100.00 / month")
    expect(small).to_contain_text("MAU: 1,000")
    expect(plan_card(page, "X Small")).to_contain_text("$50.00 / month")
    expect(plan_card(page, "Medium")).to_contain_text("$200.00 / month")
    expect(plan_card(page, "Large")).to_contain_text("$400.00 / month")
    shot(page, "plans")

    # R-BUY-2: step 1 shows the plan, interval, price and automatic renewal.
    buy_now(page, "Small")
    expect(row_value(page, "Plan")).to_have_text("Small")
    expect(page.get_by_role("radio", name="Monthly")).to_be_checked()
    expect(page.locator(".subs-order-price")).to_have_text(
        ["$100.00 / month", re.compile(r"^\$1,080\.00 / year\s+\(list \$1,200\.00\)$")]
    )
    expect(page.get_by_text("The license renews automatically")).to_be_visible()
    shot(page, "step1-confirm-order")
    page.get_by_role("button", name="To Payment Methods").click()

    # R-BUY-4: step 3, no card yet; Use another card → Sandbox Pay's form → back to step 3.
    expect(page.get_by_role("heading", name="Select a payment method")).to_be_visible()
    expect(current_step(page)).to_have_text("3. Payment method")
    key = order_key(page.url)
    expect(page.get_by_text("You have no registered card yet.")).to_be_visible()
    shot(page, "step3-no-card")
    page.get_by_role("button", name="Use another card").click()
    expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    shot(page, "sandbox-pay-form")
    enter_card_on_sandbox_pay(page, VISA)

    expect(page).to_have_url(re.compile(rf"/billing/orders/{key}/payment"))
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 registered.")
    card = page.get_by_role("radio", name=f"Visa •••• 4242 {EXPIRES}", exact=True)
    expect(card).to_be_checked()
    expect(page.get_by_role("radio")).to_have_count(1)
    shot(page, "step3-card-chosen")
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()

    # R-BUY-5: step 4, before the coupon.
    expect(page.get_by_role("heading", name="Confirmation of your order")).to_be_visible()
    expect(current_step(page)).to_have_text("4. Confirmation")
    expect(row_value(page, "Discount")).to_have_text("$0.00")
    expect(row_value(page, "Total")).to_have_text("$100.00")
    shot(page, "step4-before-coupon")

    # R-CPN-1: a percent-off coupon, typed into "Use Coupon" and applied.
    type_into(page.get_by_label("Use Coupon"), "WELCOME10")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Coupon WELCOME10 applied.")
    expect(page.get_by_label("Use Coupon")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove coupon WELCOME10")).to_be_visible()
    quote = page.locator("table.subs-quote tbody tr")
    expect(quote).to_have_count(2)
    expect(quote.nth(0).locator("td")).to_have_text([re.compile(r"^Small, "), "$100.00"])
    expect(quote.nth(1).locator("td")).to_have_text(["Coupon WELCOME10", "-$10.00"])
    expect(row_value(page, "Discount")).to_have_text("-$10.00")
    expect(row_value(page, "Balance applied")).to_have_text("$0.00")
    expect(row_value(page, "Total")).to_have_text("$90.00")
    expect(row_value(page, "Card")).to_contain_text("Visa •••• 4242")
    expect(row_value(page, "Renews")).to_contain_text("automatically on")
    expect(page.get_by_role("note")).to_contain_text("No cancellation or refund after purchase.")
    shot(page, "step4-coupon-applied")

    # Step 5 (R-BUY-7): the completion page.
    page.get_by_role("button", name="Place Order").click()
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/billing/orders/{key}/complete$"))
    expect(current_step(page)).to_have_text("5. Completion")
    expect(row_value(page, "Amount")).to_have_text("$90.00")
    expect(row_value(page, "Card")).to_contain_text("Visa •••• 4242")
    invoice = row_value(page, "Invoice").inner_text().strip()
    renewal = row_value(page, "Next renewal").inner_text().strip()
    assert invoice and renewal
    shot(page, "step5-complete")

    # R-EX-3 / R-BUY-7: the purchase e-mail, read on the Mail page.
    open_mail(page)
    purchase = page.locator("details").filter(has_text="Your Small purchase is complete")
    expect(purchase).to_have_count(1)
    summary = purchase.locator("summary")
    expect(summary).to_contain_text(f"Your Small purchase is complete ({invoice})")
    expect(summary).to_contain_text("to alice@example.com")
    summary.click()
    body = purchase.locator("pre")
    expect(body).to_be_visible()
    expect(body).to_contain_text(f"Invoice:      {invoice}")
    expect(body).to_contain_text("Amount paid:  $90.00")
    expect(body).to_contain_text("Card:         Visa ending in 4242")
    expect(body).to_contain_text(f"Next renewal: {renewal}")
    expect(body).to_contain_text("$100.00")
    expect(body).to_contain_text("-$10.00")
    shot(page, "mail")

    # R-BUY-4 / R-SEC-1: the digits went to Sandbox Pay only.
    sandbox = [r for r in posted if urlsplit(r.url).path.startswith("/sandbox-pay/")]
    assert any("4242" in (r.post_data or "") for r in sandbox)
    for request in posted:
        if request not in sandbox:
            data = (request.post_data or "").replace("+", "").replace("%20", "").replace(" ", "")
            assert "4242424242424242" not in data, f"card number posted to {request.url}"


def test_declined_cards_buy_nothing(page: Page, live_app: LiveApp) -> None:
    """R-BUY-4, R-BUY-5, R-EX-1, R-EX-3: olivia (owner of Acme) types a card Sandbox Pay
    refuses on its own form (declined at registration), then a card that registers but is
    declined at every charge; Place Order shows the decline, and no license and no purchase
    e-mail exist afterwards."""
    sign_in_from_home(page, "olivia")
    expect(nav(page)).to_contain_text("acting for Acme")
    buy_now(page, "X Small")
    expect(row_value(page, "Plan")).to_have_text("X Small")
    page.get_by_role("button", name="To Payment Methods").click()
    key = order_key(page.url)
    page.get_by_role("button", name="Use another card").click()

    # Declined at registration: refused on Sandbox Pay's form, which stays open.
    enter_card_on_sandbox_pay(page, DECLINED_AT_REGISTRATION)
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(page).to_have_url(re.compile(r"/sandbox-pay/setup/"))
    expect(page.get_by_label("Card number")).to_have_value("")
    shot(page, "sandbox-pay-refuses-card")

    # Registers, but every charge is declined.
    enter_card_on_sandbox_pay(page, DECLINES_EVERY_CHARGE)
    expect(page).to_have_url(re.compile(rf"/billing/orders/{key}/payment"))
    expect(page.get_by_role("radio", name=f"Visa •••• 0341 {EXPIRES}", exact=True)).to_be_checked()
    shot(page, "step3-card-chosen")
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    expect(row_value(page, "Total")).to_have_text("$50.00")
    shot(page, "step4")
    page.get_by_role("button", name="Place Order").click()

    # Back on step 3 of the same order, told why.
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(page).to_have_url(re.compile(rf"/billing/orders/{key}/payment"))
    expect(page.get_by_role("heading", name="Select a payment method")).to_be_visible()
    expect(page.get_by_role("heading", name="Thank you for your order")).to_have_count(0)
    shot(page, "declined")

    nav(page).get_by_role("link", name="License Management", exact=True).click()
    expect(page.get_by_role("heading", name="License Management")).to_be_visible()
    licenses = page.locator("table.subs-licenses tbody tr")
    expect(licenses).to_have_count(1)
    expect(licenses).to_have_text(re.compile(r"You are on the Free plan\."))
    shot(page, "no-license")

    open_mail(page)
    expect(page.get_by_text(re.compile("purchase is complete"))).to_have_count(0)
    shot(page, "no-purchase-mail")


def test_anonymous_visitor_signs_in_and_returns_to_the_same_order(
    page: Page, live_app: LiveApp
) -> None:
    """R-BUY-3: a visitor who is not signed in clicks Buy now on Medium and To Payment
    Methods, is sent to the host's sign-in, signs in as alice and lands on step 3 of the
    very order step 1 created."""
    page.goto("/")
    expect(nav(page)).not_to_contain_text("Signed in as")
    buy_now(page, "Medium")
    expect(row_value(page, "Plan")).to_have_text("Medium")
    shot(page, "step1-anonymous")
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/billing/checkout/medium" in r.url
    ) as created:
        page.get_by_role("button", name="To Payment Methods").click()
    key = order_key(created.value.headers["location"])

    expect(page).to_have_url(re.compile(r"/sign-in\?"))
    next_url = parse_qs(urlsplit(page.url).query)["next"][0]
    assert order_key(next_url) == key
    shot(page, "sign-in")
    sign_in_on_page(page, "alice")

    expect(page).to_have_url(live_app(f"/billing/orders/{key}/payment"))
    expect(page.get_by_role("heading", name="Select a payment method")).to_be_visible()
    expect(current_step(page)).to_have_text("3. Payment method")
    shot(page, "step3-after-sign-in")

    # The order is still the Medium one she chose before signing in.
    page.get_by_role("button", name="Use another card").click()
    enter_card_on_sandbox_pay(page, VISA)
    expect(page).to_have_url(re.compile(rf"/billing/orders/{key}/payment"))
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    expect(page.locator("table.subs-quote tbody tr").first.locator("td")).to_have_text(
        [re.compile(r"^Medium, "), "$200.00"]
    )
    expect(row_value(page, "Total")).to_have_text("$200.00")
    shot(page, "step4-same-order")


def test_second_click_on_place_order_charges_once(page: Page, live_app: LiveApp) -> None:
    """R-BUY-6: with a slow payment service, alice clicks Place Order again while the first
    click is still waiting: two POSTs reach the server, one charge is made, and she ends on the
    completion page with one license and one purchase e-mail."""
    sign_in_from_home(page, "alice")
    buy_now(page, "X Small")
    page.get_by_role("button", name="To Payment Methods").click()
    page.get_by_role("button", name="Use another card").click()
    enter_card_on_sandbox_pay(page, VISA)
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    expect(row_value(page, "Total")).to_have_text("$50.00")

    gateway: SandboxGateway = live_app.app.extensions["sandbox_pay"].gateway
    gateway.latency = 1.0  # every Sandbox Pay call answers after a second, like a slow network
    placed: list[Request] = []
    page.on("request", lambda r: placed.append(r) if r.url.endswith("/place") else None)
    box = page.get_by_role("button", name="Place Order").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    with page.expect_request(lambda r: r.url.endswith("/place")):
        page.mouse.click(x, y)
    page.mouse.click(x, y)  # the first answer has not come back: the button is still there
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible(
        timeout=20_000  # a "Payment pending" page may come first; it refreshes every 5 s
    )
    gateway.latency = 0
    assert len(placed) == 2, [r.url for r in placed]
    expect(row_value(page, "Amount")).to_have_text("$50.00")
    shot(page, "complete")

    with live_app.app.app_context(), gateway.engine().connect() as conn:
        amounts = conn.scalars(select(charges.c.amount)).all()
    assert amounts == [5000], "Sandbox Pay must have been charged exactly once"

    nav(page).get_by_role("link", name="License Management", exact=True).click()
    licenses = page.locator("table.subs-licenses tbody tr")
    expect(licenses).to_have_count(1)
    expect(licenses.locator("td").first).to_have_text("X Small")
    shot(page, "one-license")

    open_mail(page)
    expect(page.locator("details").filter(has_text="purchase is complete")).to_have_count(1)
    shot(page, "one-mail")
