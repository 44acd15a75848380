"""Security (R-SEC): CSRF on every state-changing request and ``next`` that stays on the
host (R-SEC-3), no card data received, logged or stored (R-SEC-1), and tampered input
that changes nothing (R-SEC-4)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from wtforms.widgets import HiddenInput

from flask_subscriptions.forms import ActionForm
from flask_subscriptions.gateways.base import ChargeRequest, ChargeStatus
from flask_subscriptions.gateways.sandbox import TEST_CARDS, SandboxGateway
from flask_subscriptions.gateways.sandbox.cards import luhn_valid
from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
from flask_subscriptions.models import (
    BillingProfile,
    Coupon,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Subscription,
)
from flask_subscriptions.models import metadata as billing_metadata

from .conftest import csrf_token, sign_in, snapshot
from .factories import add_card
from .flows import (
    DECLINES_EVERY_CHARGE,
    THREE_D_SECURE,
    VISA,
    apply_coupon,
    choose_card,
    confirm_page,
    fill_card_form,
    fingerprint,
    place,
    place_form,
    post_form,
    register_card,
    start_order,
    text_of,
)
from .hosts import User, db
from .hosts import db as host_db

MASTERCARD = "5555 5555 5555 4444"
PAGE = "/billing/payment-methods"


# --- helpers ---------------------------------------------------------------------------------


def all_stored_values(gateway: SandboxGateway) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every column of every row of our database (billing
    and host tables) and of Sandbox Pay's storage."""
    db.session.commit()
    found: list[tuple[str, str, str]] = []
    sources = [
        (db.engine, [*billing_metadata.sorted_tables, *host_db.metadata.sorted_tables]),
        (gateway.engine(), list(sandbox_metadata.sorted_tables)),
    ]
    for engine, tables in sources:
        with engine.connect() as conn:
            for table in tables:
                for row in conn.execute(select(table)).mappings():
                    for column, value in row.items():
                        if value is None:
                            continue
                        text = value if isinstance(value, str) else json.dumps(value, default=str)
                        found.append((table.name, column, text))
    return found


_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d+(?:[ -]\d+)*(?![0-9A-Za-z])")


def card_numbers_in(text: str) -> list[str]:
    """Every 13–19-digit Luhn-valid number in ``text``, also written in groups separated by
    spaces or dashes (``4242 4242 4242 4242``, ``3782-822463-10005``), or URL-encoded."""
    found = []
    for variant in {text, text.replace("%20", " ").replace("+", " ")}:
        for run in _DIGIT_RUN.finditer(variant):
            groups = re.split(r"[ -]", run[0])
            for start in range(len(groups)):
                digits = ""
                for group in groups[start:]:
                    digits += group
                    if len(digits) > 19:
                        break
                    if len(digits) >= 13 and luhn_valid(digits):
                        found.append(digits)
    return found


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


def method(last4: str) -> PaymentMethod:
    db.session.expire_all()
    found = db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == last4))
    assert found is not None
    return found


# --- the scanner itself can fail -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "paid with 4242424242424242.",
        "card=4242 4242 4242 4242&x",
        "number: 3782-822463-10005",
        "'5555555555554444', 12, 2030",
        "number=4000%200000%200000%200002",
        "card 4242424242424242 cvc 123",
    ],
)
def test_the_card_number_scanner_finds_card_numbers_R_SEC_1(text: str) -> None:
    """R-SEC-1: the scan below would see a leaked number, however it is written."""
    assert card_numbers_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "INV-000001 paid 2026-03-17 12:00:00.000000",
        "Visa •••• 4242 expires 12/2030",
        "fingerprint 17292d8c92982540123456789012345cde (hex, not a number)",
        "purchase:1:1 amount 10000 USD",
        "Next renewal: April 17, 2026",
    ],
)
def test_the_card_number_scanner_ignores_ordinary_values_R_SEC_1(text: str) -> None:
    assert card_numbers_in(text) == []


# --- a signed-in owner with something of everything -----------------------------------------


@dataclass
class World:
    """Alice, signed in, with cards, a license, an order at step 4 with a coupon (started
    before the purchase), an open card form at Sandbox Pay, and a charge there that waits
    for 3-D Secure."""

    order_key: str
    fingerprint: str
    visa: PaymentMethod
    master: PaymentMethod
    setup_session: str
    charge_id: str
    license_id: int
    account_id: str = ""


@pytest.fixture
def world(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: SandboxGateway
) -> World:
    sign_in(client, alice)
    db.session.add(Coupon(code="SPRING20", kind="percent", value=20))  # WELCOME10: the catalog's
    db.session.commit()
    register_card(client, VISA)
    register_card(client, MASTERCARD)
    register_card(client, THREE_D_SECURE)
    visa, master, secure = method("4242"), method("4444"), method("3184")
    key = start_order(client, "small")
    assert choose_card(client, key, visa.id).status_code == 302
    assert apply_coupon(client, key, "WELCOME10").status_code == 302
    shown = fingerprint(confirm_page(client, key).text)
    # A license bought with a second order (the first stays open at step 4).
    bought = start_order(client, "x_small")
    assert choose_card(client, bought, visa.id).status_code == 302
    assert place(client, bought).status_code == 302
    license_id = db.session.scalar(select(Subscription.id))
    assert license_id is not None

    started = post_form(client, PAGE, f"{PAGE}/register")
    session_id = urlsplit(started.headers["Location"]).path.rsplit("/", 1)[1]

    customer = db.session.scalar(
        select(BillingProfile.gateway_customer).where(BillingProfile.account_id == alice.billing_id)
    )
    pending = gateway.charge(
        ChargeRequest(
            customer=customer or "",
            payment_method=secure.token,
            amount=500,
            currency="USD",
            idempotency_key="test:3ds",
            description="waits for the person",
            off_session=False,
            return_url="/billing/licenses",
        )
    )
    assert pending.status is ChargeStatus.REQUIRES_ACTION and pending.charge_id
    return World(
        key, shown, visa, master, session_id, pending.charge_id, license_id, alice.billing_id
    )


def post_routes(app: Flask) -> list[Any]:
    """Every rule that accepts POST, ours (``subscriptions.*``) and Sandbox Pay's."""
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if "POST" in (rule.methods or ())
            and rule.endpoint.startswith(("subscriptions.", "sandbox_pay."))
        ),
        key=lambda rule: rule.endpoint,
    )


def route_request(world: World, endpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """URL values and a form that would change something if the CSRF token were there."""
    arguments = {
        "plan_code": "medium",
        "key": world.order_key,
        "method_id": world.master.id,
        "subscription_id": world.license_id,
        "session_id": world.setup_session,
        "charge_id": world.charge_id,
        "account_id": world.account_id,  # the support console's (R-OPS-1)
        "message_id": 1,
    }
    forms: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "subscriptions.checkout.order": ({}, {"interval": "month", "currency": "USD"}),
        "subscriptions.checkout.payment": ({}, {"payment_method": world.master.id}),
        "subscriptions.checkout.coupon": ({}, {"code": "SPRING20"}),
        "subscriptions.checkout.place": ({}, {"fingerprint": world.fingerprint}),
        "subscriptions.payment_methods.remove": ({"method_id": world.visa.id}, {}),
        "subscriptions.payment_methods.billing_email": ({}, {"email": "new@alice.example"}),
        "subscriptions.licenses.detail": ({}, {"auto_renewal": "disabled", "renew_with": ""}),
        "sandbox_pay.setup": (
            {},
            {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
        ),
        "sandbox_pay.authenticate": ({}, {"complete": "1"}),
    }
    values, data = forms.get(endpoint, ({}, {}))
    return {**arguments, **values}, data


def build(app: Flask, rule: Any, values: dict[str, Any]) -> str:
    wanted = {name: value for name, value in values.items() if name in rule.arguments}
    return app.url_map.bind("host.test").build(rule.endpoint, wanted)


def test_post_routes_are_all_reachable_R_SEC_3(app: Flask, world: World) -> None:
    """The walk below has a real value for every argument of every POST route (a route
    with a new kind of id must get one in ``route_request``)."""
    routes = post_routes(app)
    assert {"sandbox_pay.setup", "subscriptions.payment_methods.remove"} <= {
        rule.endpoint for rule in routes
    }
    for rule in routes:
        values, _ = route_request(world, rule.endpoint)
        missing = set(rule.arguments) - set(values)
        assert not missing, f"give route_request a real {missing} for {rule.endpoint}"


def test_every_post_without_csrf_token_is_refused_and_changes_nothing_R_SEC_3(
    app: Flask, client: FlaskClient, world: World, gateway: SandboxGateway
) -> None:
    """R-SEC-3: as the signed-in owner, a POST to any route without its CSRF token is a
    400 (Sandbox Pay's hosted pages re-show their form saying it expired), and no row of
    ours or of Sandbox Pay's changes."""
    before = snapshot(gateway)
    for rule in post_routes(app):
        values, data = route_request(world, rule.endpoint)
        url = build(app, rule, values)
        response = client.post(url, data=data)
        if rule.endpoint == "sandbox_pay.setup":
            # The service's own page: re-shown with an error, pinned by the sandbox's tests.
            assert response.status_code == 200, url
            assert "This form has expired. Please try again." in response.text
        elif rule.endpoint == "sandbox_pay.authenticate":
            assert response.status_code == 200, url
            assert "Complete authentication" in response.text  # still waiting
        elif rule.endpoint.startswith("subscriptions.admin."):
            assert response.status_code == 404, url  # the console is not there for owners
        else:
            assert response.status_code == 400, (url, response.status_code, response.text)
        assert snapshot(gateway) == before, f"{url} changed something"
    # The same form with its token does act (the walk above would have seen a change).
    done = post_form(client, PAGE, f"{PAGE}/{world.master.id}/default")
    assert done.status_code == 302 and snapshot(gateway) != before


def test_every_post_as_anonymous_visitor_is_refused_R_SEC_3(
    app: Flask, world: World, gateway: SandboxGateway
) -> None:
    """R-SEC-3, R-SEC-2: without signing in, owner routes send to sign-in, the rest refuse."""
    visitor = app.test_client()
    before = snapshot(gateway)
    for rule in post_routes(app):
        values, data = route_request(world, rule.endpoint)
        url = build(app, rule, values)
        response = visitor.post(url, data=data)
        if rule.endpoint.startswith("sandbox_pay."):
            assert response.status_code == 200 and "Sandbox Pay" in response.text, url
        elif rule.endpoint == "subscriptions.checkout.order":
            assert response.status_code == 400, url
        else:
            assert response.status_code == 302, (url, response.status_code)
            assert urlsplit(response.headers["Location"]).path == "/login", url
        assert snapshot(gateway) == before, f"{url} changed something"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "http://host.test.evil.example/",
        "http://evil.example@evil.example/",
        "/\t/evil.example/",
        "/\r\nSet-Cookie: stolen=1",
        "billing/licenses",
    ],
)
def test_next_redirects_stay_on_the_host_R_SEC_3(
    app: Flask, client: FlaskClient, alice: User, target: str
) -> None:
    """R-SEC-3: the payment-methods return URL with a foreign ``next`` goes to our page."""
    sign_in(client, alice)
    response = client.get(f"{PAGE}/return", query_string={"setup_cancelled": "1", "next": target})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "host.test") and location.path == PAGE
    assert "evil" not in response.headers["Location"]


def test_next_on_the_host_is_followed_R_SEC_3(app: Flask, client: FlaskClient, alice: User) -> None:
    """R-SEC-3: a ``next`` on this host is where the person comes back to."""
    sign_in(client, alice)
    response = client.get(
        f"{PAGE}/return", query_string={"setup_cancelled": "1", "next": "/billing/licenses"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/billing/licenses"


def test_foreign_next_through_card_registration_lands_on_our_page_R_SEC_3(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    """R-SEC-3: ``next`` posted with Register a card never reaches Sandbox Pay's return URL,
    and after the card form the person lands on our payment methods page."""
    sign_in(client, alice)
    started = post_form(client, PAGE, f"{PAGE}/register", {"next": "https://evil.example/"})
    assert started.status_code == 302
    form = client.get(urlsplit(started.headers["Location"]).path)
    assert "evil" not in form.text
    sent = fill_card_form(client, started.headers["Location"], VISA)
    assert sent.status_code == 302 and "evil" not in sent.headers["Location"]
    back = urlsplit(sent.headers["Location"])
    assert back.netloc == "host.test" and back.path == f"{PAGE}/return"
    landed = client.get(f"{back.path}?{back.query}")
    assert landed.status_code == 302
    location = urlsplit(landed.headers["Location"])
    assert location.path == PAGE and "evil" not in landed.headers["Location"]
    assert parse_qs(location.query)["card"] == [str(method("4242").id)]


# --- R-SEC-1: card data is never received, logged or stored --------------------------------

POSTED_NUMBER = "4111 1111 1111 1111"
POSTED_CODE = "7391"


@pytest.mark.parametrize(
    "fields",
    [
        {"card_number": POSTED_NUMBER},
        {"number": POSTED_NUMBER},
        {"cvc": POSTED_CODE},
        {"number": POSTED_NUMBER, "cvc": POSTED_CODE, "expiry": "12/30"},
    ],
    ids=["card_number", "number", "cvc", "number+cvc"],
)
def test_posting_card_fields_to_our_routes_is_refused_and_leaves_no_trace_R_SEC_1(
    app: Flask,
    client: FlaskClient,
    world: World,
    gateway: SandboxGateway,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, str],
) -> None:
    """R-SEC-1: any of our POST routes refuses card fields (400) even with a valid CSRF
    token, and the digits are nowhere in the logs or the database."""
    caplog.set_level(logging.DEBUG)
    token = csrf_token(client.get(PAGE).text)
    before = snapshot(gateway)
    ours = [rule for rule in post_routes(app) if rule.endpoint.startswith("subscriptions.")]
    assert len(ours) >= 10
    for rule in ours:
        values, data = route_request(world, rule.endpoint)
        url = build(app, rule, values)
        response = client.post(url, data={"csrf_token": token, **data, **fields})
        assert response.status_code == 400, (url, response.status_code)
        assert "Card details are entered only on the payment service" in response.text
        assert POSTED_NUMBER.replace(" ", "")[4:] not in response.text
        # In the query string too.
        response = client.post(
            f"{url}?{'&'.join(f'{k}={quote(v)}' for k, v in fields.items())}",
            data={"csrf_token": token, **data},
        )
        assert response.status_code == 400, url
    assert snapshot(gateway) == before
    haystacks = [logged_text(caplog)] + [value for _, _, value in all_stored_values(gateway)]
    for haystack in haystacks:
        assert card_numbers_in(haystack) == []
        assert POSTED_NUMBER.replace(" ", "") not in haystack.replace(" ", "")
        assert POSTED_CODE not in haystack


def test_no_card_number_anywhere_after_every_card_flow_R_SEC_1(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    gateway: SandboxGateway,
    outbox: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R-SEC-1: every Sandbox Pay test card typed into the form (declined ones too), a
    declined and a successful purchase, a 3-D Secure one: then no 13–19-digit Luhn-valid
    number in any table of ours or Sandbox Pay's, the logs (SQL included) or the outbox."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and parameter
    sign_in(client, alice)
    typed = [card.number for card in TEST_CARDS] + ["378282246310005", "3530111333300000"]
    for digits in typed:
        spaced = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
        cvc = "1234" if digits.startswith(("34", "37")) else "123"
        register_card(client, spaced, cvc=cvc)
    registered = {m.last4 for m in db.session.scalars(select(PaymentMethod))}
    assert registered == {"4242", "4444", "0341", "9995", "1232", "3184", "0005", "0000"}

    key = start_order(client, "small")
    choose_card(client, key, method(DECLINES_EVERY_CHARGE[-4:]).id)
    declined = place(client, key)
    assert declined.status_code == 302
    assert "Your card was declined." in text_of(client.get(declined.headers["Location"]).text)
    choose_card(client, key, method("4242").id)
    paid = place(client, key)
    completion = client.get(paid.headers["Location"])
    assert "Thank you for your order" in completion.text and "$100.00" in completion.text
    assert outbox.kinds() == ["purchase_completed"]
    assert "Visa ending in 4242" in outbox.all()[0].text_body
    assert "SELECT" in caplog.text  # the SQL log is really captured

    # A 3-D Secure purchase through Sandbox Pay's authentication page (a second account).
    bob = User(name="bob", email="bob@example.com")
    db.session.add(bob)
    db.session.commit()
    other = app.test_client()
    sign_in(other, bob)
    register_card(other, THREE_D_SECURE)
    second = start_order(other, "x_small")
    his_card = db.session.scalar(
        select(PaymentMethod.id).where(PaymentMethod.account_id == bob.billing_id)
    )
    assert his_card is not None and choose_card(other, second, his_card).status_code == 302
    challenge = place(other, second)
    action_url = urlsplit(challenge.headers["Location"]).path
    assert action_url.startswith("/sandbox-pay/authenticate/")
    page = other.get(action_url)
    confirmed = other.post(action_url, data={"csrf_token": csrf_token(page.text), "complete": "1"})
    assert confirmed.status_code == 302
    back = urlsplit(confirmed.headers["Location"])
    assert "Thank you for your order" in other.get(f"{back.path}?{back.query}").text

    leaks = [
        (table, column, number)
        for table, column, value in all_stored_values(gateway)
        for number in card_numbers_in(value)
    ]
    assert leaks == []
    assert card_numbers_in(logged_text(caplog)) == []
    for message in outbox.all():
        for part in (message.subject, message.text_body, message.html_body or ""):
            assert card_numbers_in(part) == []
    for page_url in (PAGE, "/billing/licenses"):
        assert card_numbers_in(text_of(client.get(page_url).text)) == []


# --- R-SEC-4: tampered fields change nothing ------------------------------------------------


def step1_token(client: FlaskClient) -> str:
    page = client.get("/billing/checkout/small?interval=month&currency=USD")
    assert page.status_code == 200
    return csrf_token(page.text)


TAMPERED_ORDERS: list[tuple[str, dict[str, Any], int, str]] = [
    ("platinum", {"interval": "month", "currency": "USD"}, 404, "That plan is not for sale."),
    ("free", {"interval": "month", "currency": "USD"}, 404, "That plan is not for sale."),
    ("small%27--", {"interval": "month", "currency": "USD"}, 404, "That plan is not for sale."),
    ("small", {"interval": "-1", "currency": "USD"}, 400, "Choose a billing interval"),
    ("small", {"interval": "9" * 40, "currency": "USD"}, 400, "Choose a billing interval"),
    ("small", {"interval": "week", "currency": "USD"}, 400, "Choose a billing interval"),
    ("small", {"interval": "", "currency": "USD"}, 400, "Choose a billing interval"),
    ("small", {"interval": "month", "currency": "EUR"}, 404, "That plan is not for sale."),
    ("small", {"interval": "month", "currency": "usd"}, 404, "That plan is not for sale."),
    ("small", {"interval": "month", "currency": "GBP"}, 404, "That plan is not for sale."),
    (
        "small",
        {"interval": "month", "currency": "USD", "addons": "gold"},
        404,
        "That add-on is not offered with this plan.",
    ),
    (
        "small",
        {"interval": "month", "currency": "USD", "addons": ["operation", "operation"]},
        404,
        "That add-on is not offered with this plan.",
    ),
]


def test_tampered_order_form_is_refused_and_changes_nothing_R_SEC_4(
    app: Flask, client: FlaskClient, alice: User, catalog: None, gateway: SandboxGateway
) -> None:
    """R-SEC-4: an unknown plan, a bad interval, a currency the plan has no price in, an
    unknown add-on: a clear 4xx and no row changes."""
    sign_in(client, alice)
    token = step1_token(client)
    before = snapshot(gateway)
    for plan, form, status, message in TAMPERED_ORDERS:
        response = client.post(f"/billing/checkout/{plan}", data={"csrf_token": token, **form})
        assert response.status_code == status, (plan, form, response.status_code)
        assert message in text_of(response.text), (plan, form)
        assert snapshot(gateway) == before, (plan, form)
    # The same form, untampered, does record an order (the checks above could fail).
    response = client.post(
        "/billing/checkout/small",
        data={"csrf_token": token, "interval": "month", "currency": "USD"},
    )
    assert response.status_code == 302 and snapshot(gateway) != before


@pytest.fixture
def at_step_4(app: Flask, client: FlaskClient, alice: User, catalog: None) -> str:
    sign_in(client, alice)
    register_card(client, VISA)
    key = start_order(client, "small")
    assert choose_card(client, key, method("4242").id).status_code == 302
    return key


def test_malformed_order_key_is_404_and_changes_nothing_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4: a malformed order key in the URL is a clear 404 on every step."""
    token = csrf_token(confirm_page(client, at_step_4).text)
    shown = fingerprint(confirm_page(client, at_step_4).text)
    before = snapshot(gateway)
    for key in ["x", "' OR '1'='1", "A" * 300, "..%2F..%2Fetc", "-1", "9" * 40, "%C3%A9"]:
        for step in ("payment", "confirm", "complete"):
            assert client.get(f"/billing/orders/{key}/{step}").status_code == 404, (key, step)
        for step, form in [
            ("payment", {"payment_method": str(method("4242").id)}),
            ("place", {"fingerprint": shown}),
            ("coupon", {"code": "WELCOME10"}),
            ("coupon/remove", {}),
            ("new-card", {}),
        ]:
            response = client.post(
                f"/billing/orders/{key}/{step}", data={"csrf_token": token, **form}
            )
            assert response.status_code == 404, (key, step, response.status_code)
            if "%2F" not in key:  # "../.." matches no route at all: the server's own 404
                assert "That does not exist, or is not yours." in text_of(response.text)
        assert snapshot(gateway) == before, key


def test_nul_bytes_in_any_input_are_a_clear_400_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4: a NUL byte in a URL, a query or a form field is refused with a clear 400
    (PostgreSQL cannot even compare it: it used to be a 500) and changes nothing."""
    key = at_step_4
    token = csrf_token(confirm_page(client, key).text)
    before = snapshot(gateway)
    for verb, url, data in [
        ("GET", "/billing/orders/%00/payment", {}),
        ("GET", f"/billing/orders/{key}/payment", {"card": "1\x00"}),
        ("POST", "/billing/orders/%00/place", {"fingerprint": "0" * 64}),
        ("POST", f"/billing/orders/{key}/coupon", {"code": "WELCOME10\x00"}),
        ("POST", f"/billing/orders/{key}/payment", {"payment_method": "1\x00"}),
        ("POST", f"{PAGE}/billing-email", {"email": "a\x00@alice.example"}),
        ("GET", f"{PAGE}/return", {"setup_reference": "seti_\x00"}),
        ("GET", "/billing/checkout/small", {"currency": "US\x00"}),
        ("POST", "/billing/checkout/small", {"currency": "US\x00", "interval": "month"}),
        ("POST", "/billing/checkout/small\x00", {"currency": "USD", "interval": "month"}),
        ("GET", "/billing/plans", {"currency": "\x00"}),
    ]:
        if verb == "GET":
            response = client.get(url, query_string=data)
        else:
            response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 400, (url, data, response.status_code)
        assert "The request contains a character that is not allowed." in response.text
        assert snapshot(gateway) == before, (url, data)


def test_fingerprint_that_is_not_the_shown_quote_charges_nothing_R_SEC_4(
    app: Flask,
    client: FlaskClient,
    at_step_4: str,
    gateway: SandboxGateway,
    outbox: Any,
) -> None:
    """R-SEC-4, R-BUY-9: Place Order with a fingerprint other than the quote on the page is
    refused with a clear message: no invoice, no payment, no charge, no license."""
    page = confirm_page(client, at_step_4)
    token = csrf_token(page.text)
    before = snapshot(gateway)
    for posted, status, message in [
        ("0" * 64, 409, "The order's amounts changed since you saw them"),
        ("f" * 64, 409, "The order's amounts changed since you saw them"),
        ("", 400, "The form expired or was changed"),
        ("not-a-fingerprint", 400, "The form expired or was changed"),
        ("A" * 64, 400, "The form expired or was changed"),
        ("0" * 65, 400, "The form expired or was changed"),
    ]:
        response = client.post(
            f"/billing/orders/{at_step_4}/place",
            data={"csrf_token": token, "fingerprint": posted},
        )
        assert response.status_code == status, posted
        assert message in text_of(response.text), posted
        assert snapshot(gateway) == before, posted
    assert gateway.charge_count() == 0 and outbox.all() == []
    # The page the person sees still offers the real quote; placing it works.
    done = place(client, at_step_4)
    assert done.status_code == 302
    assert "Thank you for your order" in client.get(done.headers["Location"]).text
    assert [c.amount for c in gateway.charges()] == [10000]


def test_posted_amounts_and_currency_are_ignored_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4, R-BUY-9: amount, total, price or currency fields posted with the order set
    nothing: the card is charged the server's $100.00 in USD."""
    response = client.post(
        f"/billing/orders/{at_step_4}/place",
        data={
            **place_form(client, at_step_4),
            "amount": "1",
            "total": "-100",
            "card_amount": "0",
            "price": "99999999999999999999",
            "currency": "JPY",
        },
    )
    assert response.status_code == 302
    [charge] = gateway.charges()
    assert (charge.amount, charge.currency) == (10000, "usd")
    [invoice] = db.session.scalars(select(Invoice))
    assert (invoice.amount_due, invoice.currency, invoice.status) == (10000, "USD", "paid")


def test_tampered_card_choice_is_refused_and_changes_nothing_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4: a card id that is not one of the account's cards is refused at step 3."""
    url = f"/billing/orders/{at_step_4}/payment"
    token = csrf_token(client.get(url).text)
    before = snapshot(gateway)
    for posted in ["-1", "0", "abc", "1e3", "99999999999999999999", "", "1 OR 1=1"]:
        response = client.post(url, data={"csrf_token": token, "payment_method": posted})
        assert response.status_code == 400, posted
        shown = text_of(response.text)
        assert re.search(r"Choose (a card|one of your registered cards)", shown), posted
        assert snapshot(gateway) == before, posted


def test_another_accounts_card_and_order_are_404_or_refused_R_SEC_2_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-2, R-SEC-4: Bob cannot pick Alice's card for his order, nor touch her order."""
    alice_card = method("4242")
    bob = User(name="bob", email="bob@example.com")
    db.session.add(bob)
    db.session.commit()
    other = app.test_client()
    sign_in(other, bob)
    his = start_order(other, "small")
    url = f"/billing/orders/{his}/payment"
    before = snapshot(gateway)
    response = post_form(other, url, url, {"payment_method": alice_card.id})
    assert response.status_code == 400
    assert "Choose one of your registered cards" in text_of(response.text)
    assert "4242" not in text_of(response.text)
    for step in ("payment", "confirm", "complete"):
        assert other.get(f"/billing/orders/{at_step_4}/{step}").status_code == 404
    token = csrf_token(other.get(url).text)
    for step in ("place", "coupon", "coupon/remove", "new-card"):
        response = other.post(
            f"/billing/orders/{at_step_4}/{step}",
            data={"csrf_token": token, "fingerprint": "0" * 64, "code": "X"},
        )
        assert response.status_code == 404, step
    assert snapshot(gateway) == before
    order = db.session.scalar(select(Order).where(Order.key == at_step_4))
    assert order is not None and order.state == "open" and order.account_id == alice_card.account_id


def test_malformed_card_ids_in_urls_are_404_R_SEC_4(
    app: Flask, client: FlaskClient, at_step_4: str, gateway: SandboxGateway
) -> None:
    """R-SEC-4: negative, zero, huge or non-numeric card ids are a 404, never a 500."""
    token = csrf_token(client.get(PAGE).text)
    before = snapshot(gateway)
    for method_id in ["-1", "0", "2147483648", "9223372036854775808", "9" * 20, "abc", "1.0"]:
        for verb in ("default", "remove"):
            response = client.post(f"{PAGE}/{method_id}/{verb}", data={"csrf_token": token})
            assert response.status_code == 404, (method_id, verb, response.status_code)
    assert snapshot(gateway) == before
    assert db.session.scalar(select(Payment)) is None
    assert db.session.scalar(select(Subscription)) is None


def test_each_form_of_a_page_carries_the_token_as_wtforms_writes_it_R_SEC_3(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    """R-SEC-3: every form of the payment methods page carries the request's CSRF token, in
    the markup WTForms' own hidden input writes (the billing forms write it directly)."""
    add_card(alice)
    db.session.commit()
    sign_in(client, alice)
    page = client.get(PAGE).text
    token = csrf_token(page)
    with app.test_request_context(PAGE):
        field = ActionForm().csrf_token
        written = str(HiddenInput()(field)).replace(field.current_token or "", token)
    assert page.count("<form ") == page.count(written) >= 3
