"""The payment methods page (R-BUY-10, R-BUY-4, R-SEC-1, R-SEC-2) and the
payment-notification address (R-NOTE-2), driven through the pages as an owner would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions.gateways.base import ChargeRequest, ChargeStatus, GatewayUnavailable
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import cards as sandbox_cards
from flask_subscriptions.models import BillingProfile, PaymentMethod

from .conftest import SAMPLE_CATALOG, csrf_token, sign_in, snapshot
from .factories import add_card
from .flows import (
    DECLINED_AT_REGISTRATION,
    VISA,
    choose_card,
    fill_card_form,
    flashes,
    place,
    post_form,
    register_card,
    start_order,
    text_of,
)
from .hosts import Team, User, db

MASTERCARD = "5555 5555 5555 4444"
PAGE = "/billing/payment-methods"


# --- reading the pages ---------------------------------------------------------------------


def card_rows(html: str) -> dict[int, str]:
    """The cards the payment methods page lists: id → the row as a person reads it."""
    rows = re.findall(r'<tr data-card="(\d+)">(.*?)</tr>', html, re.S)
    return {int(card_id): text_of(body) for card_id, body in rows}


def methods() -> list[PaymentMethod]:
    db.session.expire_all()
    return list(db.session.scalars(select(PaymentMethod).order_by(PaymentMethod.id)))


def profile_of(account_id: str) -> BillingProfile | None:
    db.session.expire_all()
    return db.session.scalar(select(BillingProfile).where(BillingProfile.account_id == account_id))


def sandbox_card_rows(gateway: SandboxGateway) -> list[Any]:
    with gateway.engine().connect() as conn:
        return list(conn.execute(select(sandbox_cards).order_by(sandbox_cards.c.created_at)))


def action(client: FlaskClient, url: str, data: dict[str, str] | None = None) -> Any:
    """Press a button of the payment methods page (its own CSRF token)."""
    return post_form(client, PAGE, url, data)


def setup_reference_url(client: FlaskClient, number: str = VISA, **card: str) -> str:
    """Register a card on Sandbox Pay's form; the return URL it sends us to (not yet visited)."""
    started = action(client, f"{PAGE}/register")
    assert started.status_code == 302, started.text
    sent = fill_card_form(client, started.headers["Location"], number, **card)
    assert sent.status_code == 302, sent.text
    parts = urlsplit(sent.headers["Location"])
    assert parts.path == f"{PAGE}/return" and "setup_reference" in parse_qs(parts.query)
    return f"{parts.path}?{parts.query}"


# --- R-BUY-10: list, register, set default, remove ------------------------------------------


def test_register_set_default_and_remove_cards_R_BUY_10(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway, catalog: None
) -> None:
    """R-BUY-10: register through Sandbox Pay's form; list, default, remove; R-BUY-4 step 3."""
    sign_in(client, alice)
    empty = client.get(PAGE)
    assert card_rows(empty.text) == {}
    assert "No card registered yet" in empty.text

    page = register_card(client, VISA, expiry="12/30")
    assert page.status_code == 200 and page.request.path == PAGE
    assert "Visa •••• 4242 registered." in flashes(page.text)
    [visa] = methods()
    assert card_rows(page.text) == {visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove"}
    assert (visa.brand, visa.last4, visa.exp_month, visa.exp_year) == ("visa", "4242", 12, 2030)
    # R-DUN-5: a card registered in advance is not the default until set, or until it pays
    assert profile_of(visa.account_id).default_payment_method_id is None  # type: ignore[union-attr]

    page = register_card(client, MASTERCARD, expiry="08/29")
    assert "Mastercard •••• 4444 registered." in flashes(page.text)
    visa, master = methods()
    assert card_rows(page.text) == {
        visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove",
        master.id: "Mastercard •••• 4444 expires 08/2029 Set as default Remove",
    }, "no card is the default by itself (R-DUN-5)"

    done = action(client, f"{PAGE}/{master.id}/default")
    assert done.status_code == 302
    page = client.get(done.headers["Location"])
    assert "Mastercard •••• 4444 is now your default card." in flashes(page.text)
    assert card_rows(page.text) == {
        visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove",
        master.id: "Mastercard •••• 4444 expires 08/2029 Default Remove",
    }

    done = action(client, f"{PAGE}/{visa.id}/remove")
    assert done.status_code == 302
    page = client.get(done.headers["Location"])
    assert "The card was removed." in flashes(page.text)
    assert card_rows(page.text) == {
        master.id: "Mastercard •••• 4444 expires 08/2029 Default Remove"
    }
    assert "4242" not in text_of(page.text)
    removed = db.session.get(PaymentMethod, visa.id)
    assert removed is not None and removed.removed_at is not None

    # Sandbox Pay itself refuses to charge the removed card.
    profile = profile_of(alice.billing_id)
    assert profile is not None and profile.gateway_customer
    result = gateway.charge(
        ChargeRequest(
            customer=profile.gateway_customer,
            payment_method=visa.token,
            amount=1000,
            currency="USD",
            idempotency_key="test:removed-card",
            description="a charge on a removed card",
        )
    )
    assert (result.status, result.decline_code) == (ChargeStatus.DECLINED, "card_declined")
    assert result.message == "Your card was declined."
    [visa_at_service, _] = sandbox_card_rows(gateway)
    assert visa_at_service.last4 == "4242" and visa_at_service.removed_at is not None

    # Removing it again is a 404 and changes nothing.
    before = snapshot(gateway)
    again = action(client, f"{PAGE}/{visa.id}/remove")
    assert again.status_code == 404 and "That does not exist, or is not yours." in again.text
    assert snapshot(gateway) == before

    # R-BUY-4: step 3 offers the registered card only, and refuses the removed one.
    key = start_order(client, "small")
    step3 = client.get(f"/billing/orders/{key}/payment")
    offered = text_of(step3.text)
    assert "Mastercard •••• 4444 expires 08/2029" in offered and "4242" not in offered
    assert "Proceed to Confirmation of your order" in offered and "Use another card" in offered
    refused = choose_card(client, key, visa.id)
    assert "Choose one of your registered cards, or use another card." in flashes(refused.text)
    assert client.get(f"/billing/orders/{key}/confirm").status_code == 302  # no card chosen


def test_returning_to_the_same_setup_url_twice_registers_once_R_BUY_10(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway
) -> None:
    """R-BUY-10: a refresh or a second visit of the service's return URL adds no card."""
    sign_in(client, alice)
    started = action(client, f"{PAGE}/register")
    form_url = urlsplit(started.headers["Location"]).path
    sent = fill_card_form(client, form_url, VISA)
    back = urlsplit(sent.headers["Location"])
    first = client.get(f"{back.path}?{back.query}", follow_redirects=True)
    second = client.get(f"{back.path}?{back.query}", follow_redirects=True)
    assert first.status_code == second.status_code == 200
    [visa] = methods()
    assert (
        card_rows(first.text)
        == card_rows(second.text)
        == {visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove"}
    )
    # Back to the service's form and Save again: the same setup, still one card.
    resent = client.post(form_url, data={"number": MASTERCARD, "expiry": "08/29", "cvc": "123"})
    assert resent.status_code == 302 and urlsplit(resent.headers["Location"]).path == back.path
    third = client.get(f"{back.path}?{back.query}", follow_redirects=True)
    assert card_rows(third.text) == {
        visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove"
    }
    assert len(sandbox_card_rows(gateway)) == 1 and len(methods()) == 1


def test_cancelling_the_service_form_registers_nothing_R_BUY_10(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway
) -> None:
    """R-BUY-10: "Cancel and go back" on the service's form lands on our page, card-less."""
    sign_in(client, alice)
    started = action(client, f"{PAGE}/register")
    form = client.get(urlsplit(started.headers["Location"]).path)
    cancel = re.search(r'class="sbx-cancel" href="([^"]+)"', form.text)
    assert cancel
    href = urlsplit(cancel[1].replace("&amp;", "&"))
    assert href.netloc in ("", "host.test") and href.path == f"{PAGE}/return"
    page = client.get(f"{href.path}?{href.query}", follow_redirects=True)
    assert page.request.path == PAGE
    assert "No card was registered." in flashes(page.text)
    assert card_rows(page.text) == {} and methods() == []


def test_payment_service_down_during_registration_is_a_clear_error_R_BUY_10(
    app: Flask,
    client: FlaskClient,
    alice: User,
    gateway: SandboxGateway,
    catalog: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-BUY-10: when Sandbox Pay is unreachable, registering, coming back and removing say
    so (never a server error); nothing is registered twice once it is back."""
    unavailable = (
        "The payment service is unavailable right now. Nothing was changed; please try again."
    )
    sign_in(client, alice)

    def down(*args: object, **kwargs: object) -> None:
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr(gateway, "create_customer", down)
    refused = action(client, f"{PAGE}/register")
    assert refused.status_code == 503 and unavailable in text_of(refused.text)
    monkeypatch.undo()

    key = start_order(client, "small")
    monkeypatch.setattr(gateway, "start_card_setup", down)
    refused = post_form(client, f"/billing/orders/{key}/payment", f"/billing/orders/{key}/new-card")
    assert refused.status_code == 503 and unavailable in text_of(refused.text)
    monkeypatch.undo()

    back = setup_reference_url(client, VISA)
    monkeypatch.setattr(gateway, "finish_card_setup", down)
    page = client.get(back, follow_redirects=True)
    assert page.request.path == PAGE and unavailable in flashes(page.text)
    assert card_rows(page.text) == {} and methods() == []
    monkeypatch.undo()

    page = client.get(back, follow_redirects=True)  # back again once the service is up
    [visa] = methods()
    assert card_rows(page.text) == {visa.id: "Visa •••• 4242 expires 12/2030 Set as default Remove"}

    monkeypatch.setattr(gateway, "remove_payment_method", down)
    before = snapshot(gateway)
    refused = action(client, f"{PAGE}/{visa.id}/remove")
    assert refused.status_code == 503 and unavailable in text_of(refused.text)
    assert snapshot(gateway) == before
    monkeypatch.undo()
    assert visa.id in card_rows(client.get(PAGE).text)


# --- R-BUY-4: declined and expired cards ---------------------------------------------------


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (DECLINED_AT_REGISTRATION, "Your card was declined."),
        ("4000 0000 0000 0069", "Your card has expired."),
    ],
)
def test_declined_card_shows_a_clear_decline_and_registers_nothing_R_BUY_4(
    app: Flask,
    client: FlaskClient,
    alice: User,
    gateway: SandboxGateway,
    number: str,
    message: str,
) -> None:
    """R-BUY-4: the decline is shown on the service's own form; nothing is registered."""
    sign_in(client, alice)
    refused = register_card(client, number)
    assert refused.status_code == 200
    assert message in text_of(refused.text)
    assert "Sandbox Pay" in refused.text and "subs-page" not in refused.text  # the service's page
    assert methods() == [] and sandbox_card_rows(gateway) == []
    page = client.get(PAGE)
    assert card_rows(page.text) == {} and "No card registered yet" in page.text


def test_card_already_expired_is_refused_on_the_form_R_BUY_4(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway
) -> None:
    """R-BUY-4: an expiry before this month (by the clock: March 2026) is refused."""
    sign_in(client, alice)
    refused = register_card(client, VISA, expiry="02/26")
    assert refused.status_code == 200
    assert "Your card's expiration date is in the past." in text_of(refused.text)
    assert methods() == [] and sandbox_card_rows(gateway) == []


def test_card_that_expires_later_is_shown_expired_and_cannot_be_default_R_BUY_10(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway, clock: Any, catalog: None
) -> None:
    """R-BUY-10: a card is valid through its expiry month; after it, "Expired", never default."""
    sign_in(client, alice)
    register_card(client, VISA, expiry="12/30")
    page = register_card(client, MASTERCARD, expiry="03/26")  # this month: still valid
    visa, master = methods()
    action(client, f"{PAGE}/{visa.id}/default")
    page = client.get(PAGE)
    assert "Expired" not in card_rows(page.text)[master.id]

    clock.set(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert "Expired" not in card_rows(client.get(PAGE).text)[master.id]

    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))
    rows = card_rows(client.get(PAGE).text)
    assert rows[master.id].startswith("Mastercard •••• 4444 expires 03/2026 Expired")
    assert "Expired" not in rows[visa.id] and "Default" in rows[visa.id]

    before = snapshot(gateway)
    refused = action(client, f"{PAGE}/{master.id}/default")
    assert refused.status_code == 400
    assert "That card has expired: register a new one." in text_of(refused.text)
    assert snapshot(gateway) == before
    assert profile_of(alice.billing_id).default_payment_method_id == visa.id  # type: ignore[union-attr]

    # Nor is it offered at checkout (R-BUY-4).
    key = start_order(client, "small")
    step3 = text_of(client.get(f"/billing/orders/{key}/payment").text)
    assert "Visa •••• 4242" in step3 and "4444" not in step3


def test_removing_the_default_card_forgets_the_choice_R_BUY_10_R_DUN_5(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway, clock: Any
) -> None:
    """R-DUN-5: removing the card the owner chose forgets the choice; no other card becomes
    the default by itself (the card that last paid would, and here none has paid)."""
    sign_in(client, alice)
    register_card(client, VISA, expiry="12/30")
    register_card(client, "4000 0000 0000 9995", expiry="03/26")
    register_card(client, MASTERCARD, expiry="08/29")
    visa, short, master = methods()
    action(client, f"{PAGE}/{visa.id}/default")
    clock.set(datetime(2026, 4, 2, tzinfo=UTC))
    done = action(client, f"{PAGE}/{visa.id}/remove")
    assert done.status_code == 302
    rows = card_rows(client.get(PAGE).text)
    assert set(rows) == {short.id, master.id}
    assert "Default" not in rows[master.id] and "Default" not in rows[short.id]
    assert profile_of(alice.billing_id).default_payment_method_id is None  # type: ignore[union-attr]


# --- R-NOTE-2: the payment-notification address ---------------------------------------------


def _email_field(html: str) -> str | None:
    match = re.search(r'<input[^>]*name="email"[^>]*>', html)
    assert match, "no e-mail field on the page"
    value = re.search(r'value="([^"]*)"', match[0])
    return value[1] if value else None


def test_payment_notification_address_is_set_and_cleared_R_NOTE_2(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    """R-NOTE-2: the owner registers an address for billing e-mails, then clears it."""
    sign_in(client, alice)
    assert _email_field(client.get(PAGE).text) in (None, "")

    saved = action(client, f"{PAGE}/billing-email", {"email": "accounts@alice.example"})
    assert saved.status_code == 302
    page = client.get(saved.headers["Location"])
    assert "Payment notifications will go to accounts@alice.example and every owner." in flashes(
        page.text
    )
    assert _email_field(page.text) == "accounts@alice.example"
    assert profile_of(alice.billing_id).billing_email == "accounts@alice.example"  # type: ignore[union-attr]
    add_card(alice)  # the page reads the address with the cards once there are any
    db.session.commit()
    assert _email_field(client.get(PAGE).text) == "accounts@alice.example"

    cleared = action(client, f"{PAGE}/billing-email", {"email": ""})
    assert cleared.status_code == 302
    page = client.get(cleared.headers["Location"])
    assert "Payment notifications will go to every owner." in flashes(page.text)
    assert _email_field(page.text) in (None, "")
    assert profile_of(alice.billing_id).billing_email is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-address",
        "@alice.example",
        "accounts@",
        "a@alice.example, evil@attacker.example",
        "a@alice.example\r\nBcc: evil@attacker.example",
        "Evil <evil@attacker.example>",
        "x" * 310 + "@alice.example",
    ],
)
def test_bad_notification_address_is_refused_and_changes_nothing_R_NOTE_2(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway, bad: str
) -> None:
    """R-NOTE-2, R-SEC-4: a bad address gets a clear error; the saved one stays."""
    sign_in(client, alice)
    action(client, f"{PAGE}/billing-email", {"email": "accounts@alice.example"})
    before = snapshot(gateway)
    refused = action(client, f"{PAGE}/billing-email", {"email": bad})
    assert refused.status_code == 400
    assert "Enter a valid e-mail address" in text_of(refused.text)
    assert snapshot(gateway) == before
    assert _email_field(client.get(PAGE).text) == "accounts@alice.example"


def test_purchase_mail_goes_to_the_notification_address_and_each_owner_once_R_NOTE_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None, outbox: Any
) -> None:
    """R-NOTE-2: the purchase e-mail goes to the registered address and the owner."""
    sign_in(client, alice)
    action(client, f"{PAGE}/billing-email", {"email": "accounts@alice.example"})
    register_card(client, VISA)
    [visa] = methods()
    key = start_order(client, "small")
    choose_card(client, key, visa.id)
    assert place(client, key).status_code == 302
    [mail] = outbox.of_kind("purchase_completed")
    assert mail.recipients == ["accounts@alice.example", "alice@example.com"]


# --- R-SEC-2: owners only -------------------------------------------------------------------


@pytest.fixture
def team_client(team_app: Flask) -> FlaskClient:
    return team_app.test_client()


@pytest.fixture
def team_catalog(team_app: Flask) -> None:
    result = team_app.test_cli_runner().invoke(
        args=["subscriptions", "catalog", "load", str(SAMPLE_CATALOG)]
    )
    assert result.exit_code == 0, result.output


def member(team: Team, name: str) -> User:
    return next(user for user in team.members if user.name == name)


def any_csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token for this browser, from a page anyone may open (step 1)."""
    page = client.get("/billing/checkout/small?interval=month&currency=USD")
    assert page.status_code == 200, page.text
    return csrf_token(page.text)


@pytest.fixture
def acme_card(team_app: Flask, acme: Team, team_client: FlaskClient) -> Iterator[PaymentMethod]:
    """Olivia (an owner of Acme) registered a Visa (not the default until set or paid with)."""
    sign_in(team_client, member(acme, "olivia"))
    register_card(team_client, VISA)
    [visa] = methods()
    assert visa.account_id == acme.billing_id
    yield visa


def test_every_owner_manages_the_team_cards_R_SEC_2(
    team_app: Flask, acme: Team, acme_card: PaymentMethod
) -> None:
    """R-SEC-2: the account's owners (plural) see and manage its cards."""
    oscar = team_app.test_client()
    sign_in(oscar, member(acme, "oscar"))
    page = oscar.get(PAGE)
    assert page.status_code == 200
    assert card_rows(page.text) == {
        acme_card.id: "Visa •••• 4242 expires 12/2030 Set as default Remove"
    }


def test_a_member_gets_403_on_every_payment_methods_page_and_post_R_SEC_2(
    team_app: Flask,
    acme: Team,
    acme_card: PaymentMethod,
    gateway: SandboxGateway,
    team_catalog: None,
) -> None:
    """R-SEC-2: Mike is in the team but not an owner: 403 everywhere, nothing changes."""
    mike = team_app.test_client()
    sign_in(mike, member(acme, "mike"))
    token = any_csrf_token(mike)
    before = snapshot(gateway)
    assert mike.get(PAGE).status_code == 403
    assert mike.get(f"{PAGE}/return?setup_cancelled=1").status_code == 403
    for url, data in [
        (f"{PAGE}/register", {}),
        (f"{PAGE}/{acme_card.id}/default", {}),
        (f"{PAGE}/{acme_card.id}/remove", {}),
        (f"{PAGE}/billing-email", {"email": "mike@acme.example"}),
    ]:
        response = mike.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, url
        assert "4242" not in response.text
    assert snapshot(gateway) == before


def test_anonymous_visitor_is_sent_to_sign_in_R_SEC_2(
    team_app: Flask, acme_card: PaymentMethod, gateway: SandboxGateway, team_catalog: None
) -> None:
    """R-SEC-2: no billing page or action without signing in; back to the same page after."""
    visitor = team_app.test_client()
    token = any_csrf_token(visitor)
    before = snapshot(gateway)
    page = visitor.get(PAGE)
    assert page.status_code == 302
    target = urlsplit(page.headers["Location"])
    assert target.path == "/login" and parse_qs(target.query)["next"] == [PAGE]
    for url in [
        f"{PAGE}/register",
        f"{PAGE}/{acme_card.id}/default",
        f"{PAGE}/{acme_card.id}/remove",
        f"{PAGE}/billing-email",
    ]:
        response = visitor.post(url, data={"csrf_token": token, "email": "x@evil.example"})
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/login", url
    assert snapshot(gateway) == before


def test_another_accounts_card_id_gives_404_and_changes_nothing_R_SEC_2(
    team_app: Flask,
    acme: Team,
    acme_card: PaymentMethod,
    team_client: FlaskClient,
    gateway: SandboxGateway,
) -> None:
    """R-SEC-2: Gina owns Globex; Acme's card id in her URLs is 404, and she never sees it."""
    globex = Team(name="Globex")
    globex.members = [User(name="gina", email="gina@globex.example", role="owner")]
    db.session.add(globex)
    db.session.commit()
    # Olivia starts registering a second card; Gina gets hold of the service's return URL.
    olivia_return = setup_reference_url(team_client, MASTERCARD)

    gina = team_app.test_client()
    sign_in(gina, member(globex, "gina"))
    page = gina.get(PAGE)
    assert page.status_code == 200 and card_rows(page.text) == {}
    before = snapshot(gateway)
    for url in [f"{PAGE}/{acme_card.id}/default", f"{PAGE}/{acme_card.id}/remove"]:
        response = post_form(gina, PAGE, url)
        assert response.status_code == 404, url
        assert "That does not exist, or is not yours." in text_of(response.text)
        assert "4242" not in response.text
    assert snapshot(gateway) == before

    stolen = gina.get(olivia_return, follow_redirects=True)
    assert "This card setup was not found." in flashes(stolen.text)
    assert card_rows(stolen.text) == {}
    assert [m.account_id for m in methods()] == [acme.billing_id]
    # Olivia's own return still registers her card for Acme.
    mine = team_client.get(olivia_return, follow_redirects=True)
    assert "Mastercard •••• 4444 registered." in flashes(mine.text)
    assert [m.account_id for m in methods()] == [acme.billing_id, acme.billing_id]


def test_we_keep_only_the_card_reference_R_SEC_1(
    app: Flask, client: FlaskClient, alice: User, gateway: SandboxGateway
) -> None:
    """R-SEC-1, R-BUY-4: we keep token, brand, last 4 and expiry; never number or code."""
    sign_in(client, alice)
    page = register_card(client, VISA, expiry="07/31", cvc="987")
    assert {c.name for c in PaymentMethod.__table__.columns} == {
        "id", "account_id", "gateway", "token", "brand", "last4",
        "exp_month", "exp_year", "created_at", "removed_at",
    }  # fmt: skip
    [visa] = methods()
    assert (visa.gateway, visa.brand, visa.last4, visa.exp_month, visa.exp_year) == (
        "sandbox", "visa", "4242", 7, 2031,
    )  # fmt: skip
    assert visa.token == sandbox_card_rows(gateway)[0].token
    shown = text_of(page.text)
    assert "Visa •••• 4242 expires 07/2031" in shown
    assert "4242424242424242" not in re.sub(r"[ -]", "", shown) and "987" not in shown
