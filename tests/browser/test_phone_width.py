"""Every billing page on a phone (issue #17 items 12, 13, 15): at 390 px wide nothing scrolls
sideways, the restriction banner is styled on the host's own pages, and the buttons a
screen reader announces say which plan or card they act on.

alice signs in, registers a Visa, buys Small with a coupon and goes over her MAU limit; then
each billing page is opened at 390 × 844 and ``document.documentElement.scrollWidth`` is
measured. A screenshot of each lands in ``test-artifacts/browser/<test>/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import LiveApp, shot
from .test_checkout_browser import (
    buy_now,
    enter_card_on_sandbox_pay,
    sign_in_from_home,
    type_into,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
VISA = "4242 4242 4242 4242"


TOO_WIDE: list[str] = []


def fits(page: Page, name: str) -> None:
    """The page, as a phone shows it, needs no sideways scrolling (every page is measured
    before the test fails, so one run names them all)."""
    page.wait_for_load_state()
    shot(page, f"phone-{name}")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        TOO_WIDE.append(f"{name} ({page.url}) is {width} px wide")


def test_every_billing_page_fits_a_phone_R_BUY_1_R_LIC_1(page: Page, live_app: LiveApp) -> None:
    """Issue #17 item 12: each billing page (and the host's pages with the banner) fits
    390 px; item 15: Buy now and Remove name their plan and card, the coupon's remove button
    is an icon with a label; item 13: the banner has its colours on the host's home page."""
    TOO_WIDE.clear()
    sign_in_from_home(page, "alice")
    page.set_viewport_size(PHONE)
    page.goto("/billing/plans")
    fits(page, "plans")
    for name in ("X Small", "Small", "Medium", "Large"):
        expect(page.get_by_role("button", name=f"Buy now {name}", exact=True)).to_be_visible()

    buy_now(page, "Small")
    fits(page, "step-1")
    page.get_by_role("button", name="To Payment Methods").click()
    expect(page.get_by_role("heading", name="Select a payment method")).to_be_visible()
    fits(page, "step-3")
    page.get_by_role("button", name="Use another card").click()
    fits(page, "sandbox-pay")
    enter_card_on_sandbox_pay(page, VISA)
    page.get_by_role("button", name="Proceed to Confirmation of your order").click()
    expect(page.get_by_role("heading", name="Confirmation of your order")).to_be_visible()
    type_into(page.get_by_label("Use Coupon"), "WELCOME10")
    page.get_by_role("button", name="Apply").click()
    remove = page.get_by_role("button", name="Remove coupon WELCOME10")
    expect(remove).to_be_visible()
    expect(remove.locator("svg")).to_have_count(1)
    assert "🗑" not in remove.inner_text()
    fits(page, "step-4")
    items = page.locator("table.subs-table").first.bounding_box()
    totals = page.locator("table.subs-totals").bounding_box()
    assert items and totals
    assert abs(items["x"] - totals["x"]) < 1 and abs(items["width"] - totals["width"]) < 1
    amounts = page.locator("table.subs-table td:last-child")
    rights = {round(box["x"] + box["width"]) for box in _boxes(amounts)}
    assert len(rights) == 1, f"the amount columns end at {sorted(rights)}"
    page.get_by_role("button", name="Place Order").click()
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    fits(page, "step-5")

    for url, name in [
        ("/billing/licenses", "licenses"),
        ("/billing/history", "history"),
        ("/billing/payment-methods", "payment-methods"),
        ("/billing/balance", "balance"),
        ("/billing/plans", "plans-with-license"),
        ("/billing/no-such-page", "not-found"),
        ("/mail", "mail"),
        ("/test-clock", "test-clock"),
    ]:
        page.goto(url)
        fits(page, name)
    page.goto("/billing/payment-methods")
    expect(page.get_by_role("button", name=re.compile(r"^Remove Visa •••• 4242"))).to_be_visible()

    page.goto("/billing/licenses")
    page.get_by_role("link", name=re.compile("Small")).first.click()
    fits(page, "license")
    page.goto(page.url + "/change?plan=medium")
    fits(page, "change")
    page.goto("/billing/history")
    page.get_by_role("link", name=re.compile(r"^INV-")).first.click()
    fits(page, "invoice")

    # Over the MAU limit: the banner on the host's own pages, with its own styles.
    page.goto("/usage")
    type_into(page.get_by_label("Monthly active users"), "5000")
    page.get_by_role("button", name="Set usage").click()
    page.goto("/")
    banner = page.locator(".subs-banner")
    expect(banner).to_be_visible()
    colour = banner.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    fits(page, "home-restricted")
    assert TOO_WIDE == []


def _boxes(locator: object) -> list[dict[str, float]]:
    found = []
    for cell in locator.all():  # type: ignore[attr-defined]
        box = cell.bounding_box()
        if box:
            found.append(box)
    return found
