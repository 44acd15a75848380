"""What a person does in the billing pages, as test-client steps (shared by test modules)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .conftest import csrf_token

VISA = "4242 4242 4242 4242"
DECLINED_AT_REGISTRATION = "4000 0000 0000 0002"
DECLINES_EVERY_CHARGE = "4000 0000 0000 0341"
INSUFFICIENT_FUNDS = "4000 0000 0000 9995"
FIRST_CHARGE_ONLY = "4000 0000 0000 1232"
THREE_D_SECURE = "4000 0027 6000 3184"


def local_path(url: str) -> str:
    """The path and query of ``url``, as the test client asks for it."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def text_of(html: str) -> str:
    """What a person reads: tags dropped, whitespace collapsed, entities that matter decoded."""
    plain = re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace("&amp;", "&")
    return " ".join(plain.split())


def flashes(html: str) -> list[str]:
    return [text_of(m) for m in re.findall(r'<div class="subs-flash[^"]*"[^>]*>(.*?)</div>', html)]


def post_form(
    client: FlaskClient,
    page_url: str,
    action: str,
    data: dict[str, object] | None = None,
    **kwargs: object,
) -> TestResponse:
    """POST ``data`` to ``action`` with the CSRF token of the page at ``page_url``."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action, data={"csrf_token": csrf_token(page.text), **(data or {})}, **kwargs)


def fill_card_form(
    client: FlaskClient, form_url: str, number: str, expiry: str = "12/30", cvc: str = "123"
) -> TestResponse:
    """Type a card into Sandbox Pay's own page (the only place a card number goes)."""
    form = client.get(local_path(form_url))
    assert form.status_code == 200, form.text
    return client.post(
        local_path(form_url),
        data={
            "csrf_token": csrf_token(form.text),
            "number": number,
            "expiry": expiry,
            "cvc": cvc,
        },
    )


def register_card(client: FlaskClient, number: str = VISA, **card: str) -> TestResponse:
    """Payment methods → Register a card → the service's form → back to our page."""
    started = post_form(client, "/billing/payment-methods", "/billing/payment-methods/register")
    assert started.status_code == 302, started.text
    sent = fill_card_form(client, started.headers["Location"], number, **card)
    if sent.status_code != 302:
        return sent  # the service refused the card on its own page
    return client.get(local_path(sent.headers["Location"]), follow_redirects=True)


def start_order(
    client: FlaskClient,
    plan: str = "small",
    interval: str = "month",
    addons: list[str] | None = None,
    currency: str = "USD",
) -> str:
    """Buy now → step 1 → To Payment Methods; returns the order's key."""
    url = f"/billing/checkout/{plan}?interval={interval}&currency={currency}"
    response = post_form(
        client, url, url, {"interval": interval, "currency": currency, "addons": addons or []}
    )
    assert response.status_code == 302, response.text
    match = re.search(r"/billing/orders/([^/]+)/payment", response.headers["Location"])
    assert match, response.headers["Location"]
    return match[1]


def choose_card(client: FlaskClient, key: str, method_id: int) -> TestResponse:
    url = f"/billing/orders/{key}/payment"
    return post_form(client, url, url, {"payment_method": method_id})


def confirm_page(client: FlaskClient, key: str) -> TestResponse:
    return client.get(f"/billing/orders/{key}/confirm")


def fingerprint(html: str) -> str:
    match = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]{64})"', html)
    assert match, "no quote fingerprint on the confirmation page"
    return match[1]


def place_form(client: FlaskClient, key: str) -> dict[str, str]:
    """The Place Order form as step 4 shows it now (to post later, or more than once)."""
    page = confirm_page(client, key)
    assert page.status_code == 200, page.text
    return {"csrf_token": csrf_token(page.text), "fingerprint": fingerprint(page.text)}


def place(client: FlaskClient, key: str) -> TestResponse:
    """Place Order with the quote shown on the confirmation page."""
    return client.post(f"/billing/orders/{key}/place", data=place_form(client, key))


def apply_coupon(client: FlaskClient, key: str, code: str) -> TestResponse:
    page = confirm_page(client, key)
    return client.post(
        f"/billing/orders/{key}/coupon", data={"csrf_token": csrf_token(page.text), "code": code}
    )
