"""How a refusal looks (issue #17, items 10, 11 and 16; item 17 is in
``test_example_access.py``, where Mike has a page with a CSRF token): 403, 404 and 409 are
pages inside the host's own layout with a sentence a person understands, never Werkzeug's
bare pages; a malformed or out-of-range id anywhere is a 404; a refused request writes nothing.

The host here has its own base template (``SUBSCRIPTIONS_BASE_TEMPLATE``), so "inside the
host's layout" is something a test can see: its header is on the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.models import PaymentMethod, Plan, Subscription
from flask_subscriptions.services.entitlement_cache import touch_catalog

from .conftest import csrf_token, sign_in, snapshot
from .factories import subscribe
from .flows import VISA, choose_card, confirm_page, place, register_card, start_order, text_of
from .hosts import Team, User, db

HOST_HEADER = "Host App Header"
ASK_AN_OWNER = "Only the account's owners manage billing; ask an owner."
NOT_FOUND = "That does not exist, or is not yours."
HUGE_IDS = ("2147483648", "9223372036854775808", "99999999999999999999", "0", "-1", "abc")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SUBSCRIPTIONS_BASE_TEMPLATE": "host/base.html"}


@pytest.fixture
def host_app(app: Flask) -> Iterator[Flask]:
    """The host's layout is tests/templates/host/base.html (init_app checks it exists)."""
    yield app


@pytest.fixture
def host_team_app(team_app: Flask) -> Iterator[Flask]:
    yield team_app


def in_layout(response: Any, status: int, sentence: str) -> None:
    """The refusal is the host's page (its header) with our sentence, at ``status``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert HOST_HEADER in response.text, response.text[:500]
    assert sentence in text_of(response.text), text_of(response.text)[:500]
    assert "Werkzeug" not in response.text and "The requested URL" not in response.text


def member(team: Team, name: str) -> User:
    return next(m for m in team.members if m.name == name)


@pytest.fixture
def olivia_bought(host_team_app: Flask, acme: Team, catalog: None) -> FlaskClient:
    """Olivia (an owner of Acme) bought Small monthly with a Visa."""
    olivia = host_team_app.test_client()
    sign_in(olivia, member(acme, "olivia"))
    register_card(olivia, VISA)
    card = db.session.scalar(select(PaymentMethod.id))
    assert card is not None
    key = start_order(olivia, "small")
    assert choose_card(olivia, key, card).status_code == 302
    assert place(olivia, key).status_code == 302
    return olivia


# --- item 10: 403 / 404 / 409 in the host's layout ------------------------------------------


def owner_get_urls(app: Flask, license_id: int, method_id: int) -> list[str]:
    """Every GET page of ours that needs an owner, with real values."""
    values = {
        "subscription_id": license_id,
        "payment_id": 1,
        "ident": "INV-000001",
        "key": "some-order",
        "method_id": method_id,
        "plan_code": "medium",
    }
    adapter = app.url_map.bind("host.test")
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("subscriptions.") or "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint.startswith("subscriptions.admin"):
            continue  # the support console: not an owner's page (tests/test_support.py)
        if rule.endpoint in (
            "subscriptions.static",
            "subscriptions.catalog.plans",
            "subscriptions.checkout.order",
        ):
            continue  # public: the stylesheet, the plans page and step 1 (R-BUY-1, R-BUY-3)
        urls.append(adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments}))
    return urls


def test_a_member_is_refused_in_the_host_layout_on_every_billing_page_R_SEC_2(
    host_team_app: Flask, acme: Team, olivia_bought: FlaskClient
) -> None:
    """R-SEC-2 (issue #17 item 10): Mike, a member but not an owner, gets a 403 page inside
    the host's layout that tells him to ask an owner, on every billing page."""
    mike = host_team_app.test_client()
    sign_in(mike, member(acme, "mike"))
    license_id = db.session.scalar(select(Subscription.id))
    method_id = db.session.scalar(select(PaymentMethod.id))
    assert license_id is not None and method_id is not None
    urls = owner_get_urls(host_team_app, license_id, method_id)
    assert "/billing/licenses" in urls and "/billing/history" in urls
    for url in urls:
        in_layout(mike.get(url), 403, ASK_AN_OWNER)
    # Step 1 is public, and tells him why he cannot go on: no To Payment Methods.
    step_1 = mike.get("/billing/checkout/medium")
    assert step_1.status_code == 200 and ASK_AN_OWNER in text_of(step_1.text)
    assert "To Payment Methods" not in step_1.text


@pytest.mark.parametrize(
    "url",
    [
        "/billing/no-such-page",
        "/billing/licenses/abc",
        "/billing/licenses/1.5/change",
        "/billing/payments/abc/authenticate",
        "/billing/payment-methods/x/y/z",
        "/billing/stripe/authenticate",
    ],
)
def test_a_url_under_billing_that_matches_nothing_is_404_in_the_layout_R_SEC_4(
    host_app: Flask, client: FlaskClient, alice: User, url: str
) -> None:
    """R-SEC-4 (issue #17 item 10): routing's own 404 under the billing prefix is our page."""
    sign_in(client, alice)
    in_layout(client.get(url), 404, NOT_FOUND)


def test_a_url_outside_billing_keeps_the_hosts_own_404(
    host_app: Flask, client: FlaskClient
) -> None:
    """The host's other pages are not ours to restyle."""
    response = client.get("/no-such-page")
    assert response.status_code == 404 and HOST_HEADER not in response.text


def test_a_stale_quote_is_a_409_in_the_layout_R_BUY_9(
    host_app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-9 (issue #17 item 10): Place Order with amounts the page no longer shows is a
    409, inside the layout, saying why."""
    sign_in(client, alice)
    register_card(client, VISA)
    key = start_order(client, "small")
    card = db.session.scalar(select(PaymentMethod.id))
    assert card is not None and choose_card(client, key, card).status_code == 302
    token = csrf_token(confirm_page(client, key).text)
    response = client.post(
        f"/billing/orders/{key}/place", data={"csrf_token": token, "fingerprint": "0" * 64}
    )
    in_layout(response, 409, "The order's amounts changed since you saw them")


def test_a_post_without_its_token_is_a_400_in_the_layout_R_SEC_3(
    host_app: Flask, client: FlaskClient, alice: User
) -> None:
    """R-SEC-3: an expired form is a page of ours too, not a bare Bad Request."""
    sign_in(client, alice)
    response = client.post("/billing/payment-methods/register", data={})
    assert response.status_code == 400 and HOST_HEADER in response.text


# --- item 16: malformed or out-of-range ids are 404 ----------------------------------------


def test_out_of_range_ids_are_404_and_change_nothing_R_SEC_4(
    host_app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: SandboxGateway
) -> None:
    """R-SEC-4 (issue #17 item 16): an id past what the database stores (2**31 and up: on
    PostgreSQL "integer out of range" was a 500), zero, negative or not a number is a 404
    in the layout on every route that takes an id, GET or POST; nothing is written."""
    sign_in(client, alice)
    register_card(client, VISA)
    token = csrf_token(client.get("/billing/payment-methods").text)
    before = snapshot(gateway)
    for ident in HUGE_IDS:
        for url in (
            f"/billing/payments/{ident}/authenticate",
            f"/billing/licenses/{ident}",
            f"/billing/licenses/{ident}/change",
        ):
            in_layout(client.get(url), 404, NOT_FOUND)
        for url in (f"/billing/invoices/{ident}", f"/billing/invoices/{ident}/receipt.pdf"):
            in_layout(client.get(url), 404, "That invoice was not found.")
        for url, data in (
            (f"/billing/licenses/{ident}", {"auto_renewal": "disabled"}),
            (f"/billing/licenses/{ident}/change", {"plan": "medium", "interval": "month"}),
            (f"/billing/payment-methods/{ident}/default", {}),
            (f"/billing/payment-methods/{ident}/remove", {}),
        ):
            response = client.post(url, data={"csrf_token": token, **data})
            in_layout(response, 404, NOT_FOUND)
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    "url", ["/sandbox-pay/setup/%00", "/sandbox-pay/authenticate/%00", "/sandbox-pay/setup/x%00y"]
)
def test_sandbox_pay_pages_with_a_malformed_id_are_404_R_SEC_4(
    app: Flask, client: FlaskClient, url: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4 (issue #17 item 16): Sandbox Pay's own pages say "not found", never a 500."""
    before = snapshot(gateway)
    for response in (client.get(url), client.post(url, data={"complete": "1"})):
        assert response.status_code == 404, (url, response.status_code)
        assert "Sandbox Pay" in response.text
    assert snapshot(gateway) == before


# --- item 11: the plans page knows the account ------------------------------------------------


def plan_card(html: str, code: str) -> str:
    match = re.search(rf'<section class="subs-plan[^"]*" id="plan-{code}".*?</section>', html, re.S)
    assert match, f"no card for {code}"
    return match[0]


def test_plans_page_marks_your_plan_and_offers_change_plan_R_BUY_8_R_LIC_7(
    host_app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-8 (issue #17 item 11): with a valid Small license, the Small card says "Your
    plan" and links **Change plan** to the change page; no plan offers a Buy now that step 1
    would refuse: the change options link to the change page with that plan chosen."""
    sign_in(client, alice)
    before = client.get("/billing/plans").text
    assert "Your plan" not in text_of(before)
    assert "Buy now" in text_of(plan_card(before, "small"))
    register_card(client, VISA)
    key = start_order(client, "small")
    card = db.session.scalar(select(PaymentMethod.id))
    assert card is not None and choose_card(client, key, card).status_code == 302
    assert place(client, key).status_code == 302
    license_id = db.session.scalar(select(Subscription.id))

    page = client.get("/billing/plans").text
    small = plan_card(page, "small")
    assert "Your plan" in text_of(small)
    assert f'href="/billing/licenses/{license_id}/change"' in small
    assert "Change plan" in text_of(small) and "Buy now" not in text_of(small)
    medium = plan_card(page, "medium")
    assert f'href="/billing/licenses/{license_id}/change?plan=medium"' in medium
    assert "Buy now" not in text_of(page)
    assert "Your plan" not in text_of(medium)
    # The link leads to the change page with Medium chosen and its quote.
    chosen = client.get(f"/billing/licenses/{license_id}/change?plan=medium")
    assert chosen.status_code == 200


def test_a_license_on_a_retired_plan_still_offers_its_changes_R_BUY_8(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-8: a plan taken off the catalog after it was bought has no card, yet its license
    still changes rather than buys: the plans it may change to say Change plan."""
    license_id = subscribe(alice, "small").id
    small = db.session.scalar(select(Plan).where(Plan.code == "small"))
    assert small is not None
    small.active = False
    touch_catalog()
    db.session.commit()
    sign_in(client, alice)
    page = client.get("/billing/plans").text
    assert 'id="plan-small"' not in page and "Your plan" not in text_of(page)
    medium = plan_card(page, "medium")
    assert f'href="/billing/licenses/{license_id}/change?plan=medium"' in medium
    assert "Buy now" not in text_of(page)
