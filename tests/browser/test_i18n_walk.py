"""Japanese and Korean in a real browser (R-I18N-1, R-MON-4): hana (yen) and minjun (won) walk
plans → checkout → License Management → change → Subscription History in a browser that
asks for their language, and no page's main content keeps an English word of ours.

What the catalog says (plan and add-on names, descriptions, features) is the host's own text,
shown as it is written, so it is taken out before the check; so are card brands and invoice
numbers. Amounts in yen and won are whole numbers. Every page is screenshotted.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from .conftest import ARTIFACTS, TIMEOUT_MS, LiveApp, _Shots, _shots, _slug, shot

pytestmark = pytest.mark.browser

CATALOG = Path(__file__).resolve().parents[2] / "example_app" / "catalog.toml"
#: Words that are names, not English sentences: brands, units the catalog uses, formats.
ALLOWED = {"Sandbox", "Pay", "Visa", "PDF", "MAU", "CVC", "MM", "YY", "INV"}

#: Per language: the person, the browser's locale, their currency sign, and words of ours a
#: page must show (so an empty or broken page cannot pass as "no English").
WALKS = {
    "ja": ("hana", "ja-JP", "￥", "ライセンス管理", "ご利用履歴"),
    "ko": ("minjun", "ko-KR", "₩", "라이선스 관리", "구독 내역"),
}


def _catalog_texts() -> list[str]:
    catalog = tomllib.loads(CATALOG.read_text(encoding="utf-8"))
    texts: list[str] = []
    for item in (*catalog["plans"], *catalog["addons"]):
        texts += [item["name"], item.get("description", "")]
        texts += [feature.replace("_", " ").capitalize() for feature in item.get("features", [])]
    return sorted((t for t in texts if t), key=len, reverse=True)


CATALOG_TEXTS = _catalog_texts()


def english_left(text: str) -> list[str]:
    """The English words of ``text`` once the catalog's own names and descriptions, invoice
    numbers, payment references, e-mail addresses, card brands and the allowed names are
    taken out."""
    for known in CATALOG_TEXTS:
        text = text.replace(known, " ")
    text = re.sub(r"INV-\d+|[\w.+-]+@[\w.-]+|\b[a-z]+_[A-Za-z0-9]+", " ", text)
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in ALLOWED]


def check_page(page: Page, name: str, sign: str, must_show: tuple[str, ...] = ()) -> str:
    """The main content is in the language (no English word left), its amounts in the
    person's currency have no decimals, and it shows ``must_show``."""
    main = page.locator(".subs-page")
    expect(main).to_be_visible()
    text = main.inner_text()
    shot(page, name)
    assert english_left(text) == [], f"{name}: English left in {text!r}"
    assert not re.search(rf"{re.escape(sign)}\s?[\d,]+\.\d", text), f"{name}: decimals in {text!r}"
    assert "$" not in text, f"{name}: dollars in {text!r}"
    for words in must_show:
        assert words in text, f"{name}: {words!r} missing from {text!r}"
    return text


@pytest.fixture
def localized(
    browser: Browser, live_app: LiveApp, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A browser whose Accept-Language is the walk's language (the test's parameter)."""
    locale = WALKS[request.param][1]
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 1280, "height": 900}, locale=locale
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    folder = ARTIFACTS / _slug(request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    _shots[id(page)] = _Shots(folder)
    try:
        yield page
    finally:
        del _shots[id(page)]
        context.close()


def button(scope: Locator | Page, css: str) -> Locator:
    return scope.locator(css).first


@pytest.mark.parametrize("localized", list(WALKS), indirect=True)
def test_a_person_reads_every_billing_page_in_their_language_R_I18N_1_R_MON_4(
    localized: Page, request: pytest.FixtureRequest
) -> None:
    """plans → checkout (Sandbox Pay's form included) → License Management → the license →
    change now → Subscription History → the invoice, all in Japanese (then Korean)."""
    page = localized
    language = request.node.callspec.params["localized"]
    person, _locale, sign, licenses_heading, history_heading = WALKS[language]

    page.goto("/sign-in")
    page.get_by_role("button", name=f"Sign in as {person}", exact=True).click()
    expect(page.get_by_role("banner")).to_contain_text(f"Signed in as {person}")

    page.goto("/billing/plans")
    plans = check_page(page, "plans", sign)
    assert re.search(rf"{re.escape(sign)}11,000\b" if sign == "￥" else r"₩110,000\b", plans)
    button(page, "#plan-small form.subs-buy button[type=submit]").click()

    check_page(page, "step1-order", sign)
    button(page, "form.subs-order button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/billing/orders/[^/]+/payment"))
    check_page(page, "step3-no-card", sign)
    button(page, "form.subs-new-card button").click()

    expect(page).to_have_url(re.compile(r"/sandbox-pay/setup/"))
    card_form = page.locator("main.sbx-card")
    shot(page, "sandbox-pay")
    assert english_left(card_form.inner_text()) == [], card_form.inner_text()
    page.locator("input[name=number]").fill("4242 4242 4242 4242")
    page.locator("input[name=expiry]").fill("12/30")
    page.locator("input[name=cvc]").fill("123")
    button(page, "main.sbx-card button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/billing/orders/[^/]+/payment"))
    expect(page.locator("input[name=payment_method]")).to_be_checked()
    check_page(page, "step3-card", sign)
    button(page, "form.subs-choose-card button[type=submit]").click()

    confirm = check_page(page, "step4-confirm", sign)
    assert re.search(r"[￥₩][\d,]+", confirm)
    button(page, "form.subs-place-order button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/complete$"))
    check_page(page, "step5-complete", sign)
    page.locator(".subs-page a[href$='/billing/licenses']").click()

    check_page(page, "licenses", sign, (licenses_heading,))
    page.locator("tr.subs-license a").first.click()

    check_page(page, "license", sign)
    page.locator(".subs-page a[href*='/change']").first.click()

    page.locator("select[name=plan]").select_option("medium")
    button(page, "form.subs-change-choice button[type=submit]").click()
    expect(page.locator(".subs-change-quote")).to_be_visible()
    check_page(page, "change-quote", sign)
    button(page, "form.subs-confirm-change button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/billing/licenses$"))
    expect(page.locator(".subs-flash-success")).to_be_visible()
    check_page(page, "licenses-after-change", sign, (licenses_heading,))

    page.goto("/billing/history")
    check_page(page, "history", sign, (history_heading,))
    page.locator("a.subs-invoice-link").first.click()
    check_page(page, "invoice", sign)
