"""Payment failure and dunning in a real browser (R-DUN-1, R-DUN-3, R-DUN-4, R-EX-2, R-EX-3).

An owner of Acme buys with the card that fails at renewal, moves the test clock, sees
Payment failed and the e-mails for both owners, is restricted after the grace, settles with
a working card, and the feature page works again. Every step is a click or typed text.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import LiveApp, shot
from .test_checkout_browser import (
    buy_now,
    enter_card_on_sandbox_pay,
    nav,
    open_mail,
    row_value,
    sign_in_from_home,
)

pytestmark = pytest.mark.browser

FAILS_AT_RENEWAL = "4000 0000 0000 1232"
VISA = "4242 4242 4242 4242"


def move_clock(page: Page, days: int) -> None:
    """The example app's Test clock: move forward and run the jobs each day (R-EX-2)."""
    nav(page).get_by_role("link", name="Test clock", exact=True).click()
    field = page.get_by_label(re.compile("Move forward"))
    field.fill(str(days))
    page.get_by_role("button", name=re.compile("Move time")).click()
    expect(page.get_by_role("status").filter(has_text="Moved")).to_contain_text(f"Moved {days} day")


def license_status(page: Page) -> str:
    nav(page).get_by_role("link", name="License Management", exact=True).click()
    return page.locator("tr.subs-license").first.locator(".subs-label").first.inner_text()


def test_failed_renewal_grace_restriction_and_settlement(page: Page, live_app: LiveApp) -> None:
    sign_in_from_home(page, "olivia")
    buy_now(page, "X Small")
    page.get_by_role("checkbox", name=re.compile("Operation")).check()
    page.get_by_role("button", name="To Payment Methods").click()
    page.get_by_role("button", name="Use another card").click()
    enter_card_on_sandbox_pay(page, FAILS_AT_RENEWAL)
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    expect(row_value(page, "Total")).to_have_text("$80.00")
    page.get_by_role("button", name="Place Order").click()
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    shot(page, "bought")

    nav(page).get_by_role("link", name="Operation", exact=True).click()
    expect(page.locator(".ex-ok")).to_have_text("Operation is included in your plan.")

    # The renewal a month later is declined: Payment failed, and both owners are told.
    move_clock(page, 31)
    shot(page, "clock-moved-31")
    assert license_status(page) == "Payment failed"
    shot(page, "payment-failed")
    open_mail(page)
    failure = page.locator("details", has_text="the payment for your X Small license failed")
    expect(failure.first).to_contain_text("olivia@acme.example")
    expect(failure.first).to_contain_text("oscar@acme.example")
    nav(page).get_by_role("link", name="Operation", exact=True).click()
    expect(page.locator(".ex-ok")).to_have_text("Operation is included in your plan.")
    expect(page.locator(".subs-banner")).to_contain_text("The payment for your license failed")

    # The grace (7 days) ends unpaid: restricted, and the feature page says so.
    move_clock(page, 7)
    assert license_status(page) == "Restricted"
    shot(page, "restricted")
    nav(page).get_by_role("link", name="Operation", exact=True).click()
    expect(page.get_by_role("alert").last).to_contain_text("Payment overdue since")
    expect(page.locator(".subs-banner")).to_contain_text("Paid features are restricted.")
    open_mail(page)
    expect(page.locator("details", has_text="are restricted").first).to_be_visible()

    # Settle with a working card: register it, then Pay all unpaid on Subscription History.
    nav(page).get_by_role("link", name="Payment methods", exact=True).click()
    page.get_by_role("button", name="Register a card").click()
    enter_card_on_sandbox_pay(page, VISA)
    expect(page.get_by_role("status")).to_contain_text("Visa •••• 4242 registered.")
    nav(page).get_by_role("link", name="Subscription History", exact=True).click()
    expect(row_value(page, "To pay now")).to_have_text("$80.00")
    page.get_by_role("radio", name=re.compile("Visa •••• 4242")).check()
    shot(page, "settle")
    page.get_by_role("button", name="Pay all unpaid").click()
    expect(page.get_by_role("status")).to_contain_text("everything unpaid is settled")
    expect(page.get_by_role("button", name="Pay all unpaid")).to_have_count(0)
    shot(page, "settled")
    assert license_status(page) == "Enabled"
    nav(page).get_by_role("link", name="Operation", exact=True).click()
    expect(page.locator(".ex-ok")).to_have_text("Operation is included in your plan.")
    open_mail(page)
    expect(page.locator("details", has_text="everything unpaid is settled").first).to_be_visible()
