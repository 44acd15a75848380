"""The support console in a real browser (R-OPS-1, R-LIC-7, R-EX-4): alice buys X Small;
sam signs in, finds her with the search box, opens her account, moves her license to
Large (not one of its options) through the quote, and grants her a credit; alice sees
both on her own pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import LiveApp, shot
from .test_checkout_browser import (
    VISA,
    buy_now,
    enter_card_on_sandbox_pay,
    nav,
    sign_in_from_home,
    type_into,
)

pytestmark = pytest.mark.browser


def _sign_out(page: Page) -> None:
    nav(page).get_by_role("button", name="Sign out").click()


def test_find_account_change_plan_credit(page: Page, live_app: LiveApp) -> None:
    sign_in_from_home(page, "alice")
    buy_now(page, "X Small")
    page.get_by_role("button", name="To Payment Methods").click()
    page.get_by_role("button", name="Use another card").click()
    enter_card_on_sandbox_pay(page, VISA)
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    page.get_by_role("button", name="Place Order").click()
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    expect(nav(page)).not_to_contain_text("Support console")
    _sign_out(page)

    sign_in_from_home(page, "sam")
    nav(page).get_by_role("link", name="Support console").click()
    type_into(page.get_by_role("searchbox"), "alice@example.com")
    page.get_by_role("button", name="Find").click()
    shot(page, "found")
    page.locator(".subs-admin-account-link").first.click()
    expect(page.locator(".subs-admin-license")).to_contain_text("X Small")

    change = page.locator("form.subs-admin-change")
    change.get_by_label("Change to").select_option(label="Large")
    change.get_by_role("button", name="Show the quote").click()
    expect(page.get_by_role("heading", name="Change plan now")).to_be_visible()
    expect(page.locator(".subs-admin-target")).to_have_text("Large")
    shot(page, "quote")
    confirm = page.locator("form.subs-admin-confirm-change")
    type_into(confirm.get_by_label("Reason"), "Customer asked for Large by phone")
    confirm.get_by_role("button", name="Confirm change").click()
    expect(page.get_by_role("status").first).to_have_text("The plan was changed.")
    expect(page.locator(".subs-admin-license").first).to_contain_text("Large")

    credit = page.locator("form.subs-admin-credit")
    type_into(credit.get_by_label(re.compile("Grant credit")), "20.00")
    credit.get_by_role("button", name="Review").click()
    expect(page.locator(".subs-balance-after")).to_have_text("$20.00")
    review = page.locator("form.subs-admin-confirm")
    type_into(review.get_by_label("Reason"), "Sorry for the trouble")
    review.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").first).to_have_text("The credit was granted.")
    audit = page.locator(".subs-admin-audit")
    expect(audit).to_contain_text("Customer asked for Large by phone")
    expect(audit).to_contain_text("Sorry for the trouble")
    shot(page, "audited")
    _sign_out(page)

    sign_in_from_home(page, "alice")
    page.goto(live_app("/billing/licenses"))
    expect(page.locator("main")).to_contain_text("Large")
    page.goto(live_app("/billing/balance"))
    expect(page.locator("main")).to_contain_text("Credit granted by support")
    response = page.goto(live_app("/billing/admin"))
    assert response is not None and response.status == 404
