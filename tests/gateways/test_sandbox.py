"""Sandbox Pay, the built-in test payment service, tested as an external service."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_subscriptions.gateways import (
    CardSetupFailed,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    Gateway,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
    PaymentMethodInfo,
)
from flask_subscriptions.gateways.sandbox import LATENCY_ENV, TEST_CARDS, SandboxGateway
from flask_subscriptions.gateways.sandbox.cards import brand_of, luhn_valid
from flask_subscriptions.gateways.sandbox.storage import cards, metadata, setup_sessions

from ..card_numbers import luhn_valid_numbers
from ..conftest import at_once
from .conftest import (
    CARD_RETURN,
    PAY_RETURN,
    Today,
    csrf_token,
    make_app,
    start_setup,
    submit_card,
)

REPO = Path(__file__).resolve().parents[2]
Register = Callable[..., PaymentMethodInfo]

SUCCEEDS = ChargeStatus.SUCCEEDED
HARD = (ChargeStatus.DECLINED, DeclineKind.HARD, "card_declined")
SOFT = (ChargeStatus.DECLINED, DeclineKind.SOFT, "insufficient_funds")


def charge_request(
    customer: str,
    card: str,
    key: str,
    amount: int = 1300,
    currency: str = "usd",
    return_url: str | None = None,
) -> ChargeRequest:
    """A Small (monthly) charge of ``card`` with ``key``."""
    return ChargeRequest(
        customer=customer,
        payment_method=card,
        amount=amount,
        currency=currency,
        idempotency_key=key,
        description="Small (monthly)",
        return_url=return_url,
    )


def pay(
    gateway: SandboxGateway,
    customer: str,
    card: str,
    key: str,
    amount: int = 1300,
    currency: str = "usd",
    return_url: str | None = None,
) -> ChargeResult:
    return gateway.charge(charge_request(customer, card, key, amount, currency, return_url))


def outcome(result: ChargeResult) -> object:
    if result.status is ChargeStatus.DECLINED:
        return (result.status, result.decline_kind, result.decline_code)
    return result.status


# -- the test cards -------------------------------------------------------------------


def test_every_test_card_number_is_luhn_valid_and_branded() -> None:
    for card in TEST_CARDS:
        assert luhn_valid(card.number), card.number
        assert brand_of(card.number) == card.brand
    assert "4000000000001232" in {card.number for card in TEST_CARDS}
    assert brand_of("378282246310005") == "amex"
    assert brand_of("6011111111111117") == "discover"
    assert brand_of("2223003122003222") == "mastercard"


@pytest.mark.parametrize(
    ("number", "brand", "charges"),
    [
        ("4242 4242 4242 4242", "visa", [SUCCEEDS, SUCCEEDS]),
        ("5555 5555 5555 4444", "mastercard", [SUCCEEDS, SUCCEEDS]),
        ("4000 0000 0000 0341", "visa", [HARD, HARD]),
        ("4000 0000 0000 9995", "visa", [SOFT, SOFT]),
        ("4000 0000 0000 1232", "visa", [SUCCEEDS, HARD, HARD]),
        ("6011 1111 1111 1117", "discover", [SUCCEEDS]),
    ],
)
def test_registered_test_card_charges_as_documented_R_BUY_10(
    sandbox: SandboxGateway,
    register: Register,
    customer: str,
    number: str,
    brand: str,
    charges: list[object],
) -> None:
    """R-BUY-10, R-DUN-1: a card registered in advance charges as its table row says."""
    card = register(number)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        brand,
        number[-4:],
        12,
        2030,
    )
    results = [pay(sandbox, customer, card.token, f"k{i}") for i in range(len(charges))]
    assert [outcome(result) for result in results] == charges
    for result in results:
        assert result.charge_id is not None
        if result.status is ChargeStatus.DECLINED:
            assert result.message


def test_amex_needs_a_four_digit_code(register: Register) -> None:
    assert register("3782 822463 10005", cvc="1234").brand == "amex"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("4000 0000 0000 0002", "Your card was declined."),
        ("4000 0000 0000 0069", "Your card has expired."),
    ],
)
def test_registration_decline_is_shown_on_the_form_R_BUY_4(
    pay_app: Flask,
    pay_client: FlaskClient,
    sandbox: SandboxGateway,
    customer: str,
    number: str,
    message: str,
) -> None:
    """R-BUY-4: a declined card stays on the service's form with a clear message."""
    form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN)
    response = submit_card(pay_client, form_url, number)
    assert response.status_code == 200
    assert message in response.text
    assert _typed_values(response.text) == ["12/30"]  # the number and code are not echoed
    with sandbox.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cards)).scalar() == 0
    reference = form_url.rsplit("/", 1)[1]
    with pytest.raises(CardSetupFailed):
        sandbox.finish_card_setup(customer, reference)


def test_requires_action_card_completes_through_its_page_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str, pay_client: FlaskClient
) -> None:
    """R-BUY-6: 3-D Secure: REQUIRES_ACTION, the person confirms, the lookup says SUCCEEDED."""
    card = register("4000 0027 6000 3184")
    first = pay(sandbox, customer, card.token, "order-1", return_url=PAY_RETURN)
    assert first.status is ChargeStatus.REQUIRES_ACTION
    assert first.action_url == f"/sandbox-pay/authenticate/{first.charge_id}"
    assert outcome(sandbox.lookup_charge("order-1")) is ChargeStatus.REQUIRES_ACTION

    page = pay_client.get(first.action_url)
    assert "Complete authentication" in page.text and "13.00 USD" in page.text
    response = pay_client.post(
        first.action_url, data={"csrf_token": csrf_token(page.text), "complete": "1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PAY_RETURN}?charge_id={first.charge_id}"

    assert sandbox.lookup_charge("order-1") == ChargeResult(SUCCEEDS, first.charge_id)
    replay = pay(sandbox, customer, card.token, "order-1", return_url=PAY_RETURN)
    assert replay == ChargeResult(SUCCEEDS, first.charge_id)
    assert sandbox.charge_count() == 1
    again = pay_client.get(first.action_url)
    assert "Payment confirmed" in again.text and "Complete authentication" not in again.text


def test_requires_action_can_fail_and_needs_csrf(
    sandbox: SandboxGateway, register: Register, customer: str, pay_client: FlaskClient
) -> None:
    """R-SEC-3: the confirmation is a POST with a CSRF token; failing it is a hard decline."""
    card = register("4000 0027 6000 3184")
    action_url = pay(sandbox, customer, card.token, "order-1").action_url
    assert action_url is not None
    pay_client.post(action_url, data={"complete": "1"})
    assert outcome(sandbox.lookup_charge("order-1")) is ChargeStatus.REQUIRES_ACTION

    page = pay_client.get(action_url)
    response = pay_client.post(action_url, data={"csrf_token": csrf_token(page.text), "fail": "1"})
    assert response.status_code == 200 and "Payment not confirmed" in response.text
    assert outcome(sandbox.lookup_charge("order-1")) == HARD


def test_action_url_outside_a_request_is_a_path(
    sandbox: SandboxGateway, register: Register, customer: str, pay_app: Flask
) -> None:
    """A renewal job (app context, no request, no SERVER_NAME) still gets a usable URL."""
    card = register("4000 0027 6000 3184")
    result = pay(sandbox, customer, card.token, "renewal:1:1")
    assert result.action_url == f"/sandbox-pay/authenticate/{result.charge_id}"
    redirect_url = sandbox.start_card_setup(customer, CARD_RETURN).redirect_url
    assert redirect_url and redirect_url.startswith("/sandbox-pay/setup/seti_")


# -- the card form ----------------------------------------------------------------------


def test_form_page_is_the_service_own_standalone_page_R_BUY_4(
    pay_app: Flask, pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> None:
    """R-BUY-4: the card is entered on the payment service's own page, not the host's."""
    page = pay_client.get(start_setup(pay_app, sandbox, customer, CARD_RETURN))
    assert page.text.lstrip().lower().startswith("<!doctype html>")
    assert "Sandbox Pay — test payment service" in page.text
    assert "subs-" not in page.text
    assert f'href="{CARD_RETURN}?setup_cancelled=1"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_form_round_trip_returns_with_a_reference_R_BUY_10(
    pay_app: Flask, pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> None:
    """R-BUY-10: register through the form, come back, finish; a resubmit adds no card."""
    form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN + "?plan=small")
    response = submit_card(pay_client, form_url, "4242 4242 4242 4242", " 03 / 26 ")
    reference = form_url.rsplit("/", 1)[1]
    expected = f"{CARD_RETURN}?plan=small&setup_reference={reference}"
    assert response.status_code == 302 and response.headers["Location"] == expected
    info = sandbox.finish_card_setup(customer, reference)
    assert (info.brand, info.last4, info.exp_month, info.exp_year) == ("visa", "4242", 3, 2026)
    assert info.token.startswith("pm_")
    assert sandbox.finish_card_setup(customer, reference) == info

    again = pay_client.post(form_url, data={"number": "5555555555554444"})
    assert again.headers["Location"] == expected
    with sandbox.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cards)).scalar() == 1


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "message"),
    [
        ("4242 4242 4242 4241", "12/30", "123", "Your card number is invalid."),
        ("4242 4242 42", "12/30", "123", "Enter a card number of 13 to 19 digits."),
        ("4242-4242-4242-4242", "12/30", "123", "Enter a card number of 13 to 19 digits."),
        ("4242 4242 4242 4242", "02/26", "123", "Your card&#39;s expiration date is in the past."),
        ("4242 4242 4242 4242", "13/30", "123", "Enter the expiry date as MM/YY."),
        ("4242 4242 4242 4242", "1230", "123", "Enter the expiry date as MM/YY."),
        ("4242 4242 4242 4242", "12/30", "12", "Enter the 3-digit security code."),
        ("4242 4242 4242 4242", "12/30", "12a", "Enter the 3-digit security code."),
        ("3782 822463 10005", "12/30", "123", "Enter the 4-digit security code."),
    ],
)
def test_form_refuses_bad_input_without_echoing_it_R_SEC_4(
    pay_app: Flask,
    pay_client: FlaskClient,
    sandbox: SandboxGateway,
    customer: str,
    number: str,
    expiry: str,
    cvc: str,
    message: str,
) -> None:
    """R-SEC-4, R-SEC-1: a clear message; the number and code are not sent back."""
    form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN)
    response = submit_card(pay_client, form_url, number, expiry, cvc)
    assert response.status_code == 200
    assert message in response.text
    assert _typed_values(response.text) == [expiry]  # the expiry may stay; nothing else
    with pytest.raises(CardSetupFailed):
        sandbox.finish_card_setup(customer, form_url.rsplit("/", 1)[1])


def test_form_needs_its_csrf_token_R_SEC_3(
    pay_app: Flask, pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> None:
    """R-SEC-3: a POST without the form's CSRF token registers nothing."""
    form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN)
    data = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
    response = pay_client.post(form_url, data=data)
    assert response.status_code == 200 and "This form has expired" in response.text
    with pytest.raises(CardSetupFailed):
        sandbox.finish_card_setup(customer, form_url.rsplit("/", 1)[1])


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example/steal",
        "javascript:alert(1)",
        "billing/relative",
        "",
    ],
)
def test_open_redirect_return_url_is_refused_R_SEC_3(
    pay_app: Flask, sandbox: SandboxGateway, customer: str, return_url: str
) -> None:
    """R-SEC-3: the service only sends people back to the host they came from."""
    with pytest.raises(ValueError, match="return_url"):
        start_setup(pay_app, sandbox, customer, return_url)


def test_same_host_absolute_return_url_is_allowed(
    pay_app: Flask, pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> None:
    form_url = start_setup(pay_app, sandbox, customer, "http://localhost" + CARD_RETURN)
    response = submit_card(pay_client, form_url, "4242424242424242")
    assert response.headers["Location"].startswith("http://localhost" + CARD_RETURN)


def test_form_refuses_to_return_to_another_host_R_SEC_3(
    pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> None:
    """R-SEC-3: a setup started outside a request (no host to check) is checked by the form."""
    setup = sandbox.start_card_setup(customer, "https://evil.example/steal")
    assert setup.redirect_url is not None
    assert pay_client.get(setup.redirect_url).status_code == 400
    response = pay_client.post(setup.redirect_url, data={"number": "4242424242424242"})
    assert response.status_code == 400 and "evil.example" not in response.headers.get(
        "Location", ""
    )


def test_finish_card_setup_refuses_wrong_customer_and_unfinished_setup(
    pay_app: Flask, sandbox: SandboxGateway, customer: str, register: Register
) -> None:
    form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN)
    reference = form_url.rsplit("/", 1)[1]
    with pytest.raises(CardSetupFailed, match="No card"):
        sandbox.finish_card_setup(customer, reference)
    with pytest.raises(CardSetupFailed, match="not found"):
        sandbox.finish_card_setup(customer, "seti_unknown")
    other = sandbox.create_customer("account-2", None)
    card = register("4242424242424242")
    with pytest.raises(CardSetupFailed, match="not found"):
        sandbox.finish_card_setup(other, _reference_of(sandbox, card.token))
    with pytest.raises(GatewayError, match="No such customer"):
        sandbox.start_card_setup("cus_unknown", CARD_RETURN)


# -- charging rules ---------------------------------------------------------------------


def test_card_is_declined_when_removed_expired_or_not_the_customers(
    sandbox: SandboxGateway, register: Register, customer: str, today: Today
) -> None:
    """R-REN: a card that expires before renewal is hard-declined (expired_card)."""
    card = register("4242424242424242", expiry="03/26")
    assert outcome(pay(sandbox, customer, card.token, "march")) is SUCCEEDS
    today.value = date(2026, 4, 1)
    assert outcome(pay(sandbox, customer, card.token, "april")) == (
        ChargeStatus.DECLINED,
        DeclineKind.HARD,
        "expired_card",
    )

    other = sandbox.create_customer("account-2", None)
    fresh = register("5555555555554444")
    assert outcome(pay(sandbox, other, fresh.token, "not-yours")) == HARD
    assert outcome(pay(sandbox, customer, "pm_unknown", "unknown")) == HARD

    sandbox.remove_payment_method(fresh.token)
    sandbox.remove_payment_method(fresh.token)  # removing twice is harmless
    assert outcome(pay(sandbox, customer, fresh.token, "removed")) == HARD
    with pytest.raises(GatewayError):
        sandbox.remove_payment_method("pm_unknown")
    with pytest.raises(CardSetupFailed, match="removed"):
        sandbox.finish_card_setup(customer, _reference_of(sandbox, fresh.token))


@pytest.mark.parametrize(
    "bad",
    [
        {"idempotency_key": ""},
        {"idempotency_key": "   "},
        {"idempotency_key": "k" * 256},
        {"amount": 0},
        {"amount": -100},
        {"amount": 13.0},
        {"amount": True},
        {"amount": 10**16},
        {"currency": "US"},
    ],
)
def test_charge_request_is_refused_before_anything_happens_R_MON_1(bad: dict[str, object]) -> None:
    """R-MON-1, R-BUY-6: integer minor units, and never a charge without an idempotency key."""
    fields: dict[str, object] = {
        "customer": "cus_x",
        "payment_method": "pm_x",
        "amount": 100,
        "currency": "usd",
        "idempotency_key": "k",
        "description": "d",
    }
    with pytest.raises(ValueError):
        ChargeRequest(**{**fields, **bad})  # type: ignore[arg-type]


def test_keys_are_required_for_lookup_refund_and_payout(
    sandbox: SandboxGateway, pay_app: Flask
) -> None:
    for call in (
        lambda: sandbox.lookup_charge(""),
        lambda: sandbox.refund("ch_x", 100, ""),
        lambda: sandbox.payout("cus_x", 100, "usd", ""),
        lambda: sandbox.refund("ch_x", 0, "k"),
    ):
        with pytest.raises(ValueError):
            call()


# -- idempotency ------------------------------------------------------------------------


def test_same_key_same_request_charges_once_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: a double click or a retry returns the first result; one charge row."""
    card = register("4242424242424242")
    first = pay(sandbox, customer, card.token, "order:7")
    assert pay(sandbox, customer, card.token, "order:7", currency="USD") == first
    assert sandbox.charge_count("order:7") == sandbox.charge_count() == 1
    [row] = sandbox.charges(customer)
    assert (row.id, row.amount, row.currency) == (first.charge_id, 1300, "usd")
    assert row.status == "succeeded"
    assert sandbox.charges("cus_other") == []


def test_declined_charge_is_recorded_and_replayed_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: a replayed decline is the same decline, and the card is not tried again."""
    card = register("4000 0000 0000 1232")
    first = pay(sandbox, customer, card.token, "purchase")
    assert pay(sandbox, customer, card.token, "purchase") == first  # still the first success
    declined = pay(sandbox, customer, card.token, "renewal:1:1")
    assert outcome(declined) == HARD
    assert pay(sandbox, customer, card.token, "renewal:1:1") == declined
    assert sandbox.charge_count() == 2
    assert _attempts(sandbox, card.token) == 2


@pytest.mark.parametrize(
    "change",
    [{"amount": 1301}, {"currency": "jpy"}, {"card": "pm_other"}, {"customer": "cus_other"}],
)
def test_same_key_different_request_is_refused_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str, change: dict[str, object]
) -> None:
    """R-BUY-6: a key reused for another request is a caller bug, never a second charge."""
    card = register("4242424242424242")
    pay(sandbox, customer, card.token, "order:7")
    args: dict[str, object] = {"customer": customer, "card": card.token, **change}
    with pytest.raises(IdempotencyKeyReused):
        pay(sandbox, key="order:7", **args)  # type: ignore[arg-type]
    assert sandbox.charge_count() == 1


def test_threads_racing_on_one_key_make_one_charge_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str, pay_app: Flask
) -> None:
    """R-BUY-6, R-REN-2: concurrent requests with one key: one charge row, one answer."""
    card = register("4242424242424242")
    results = at_once(pay_app, 8, lambda _me: pay(sandbox, customer, card.token, "double-click"))
    assert len(results) == 8 and len(set(results)) == 1
    assert sandbox.charge_count() == 1
    assert _attempts(sandbox, card.token) == 1


def test_a_replay_loses_the_insert_to_the_first_request_and_returns_its_charge_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: nothing looks the key up first; the unique key decides, and the replay's
    work (its card attempt) is rolled back. (Racing threads: the test above.)"""
    card = register("4242424242424242")
    first = pay(sandbox, customer, card.token, "k")
    assert pay(sandbox, customer, card.token, "k") == first
    assert sandbox.charge_count() == 1
    assert _attempts(sandbox, card.token) == 1


CHILD = r"""
import json, sys
from flask import Flask
from flask_subscriptions.gateways import ChargeRequest
from flask_subscriptions.gateways.sandbox import SandboxGateway

url, customer, shared_card, first_only_card, me = sys.argv[1:]
gateway = SandboxGateway(url)
app = Flask("worker")
gateway.init_app(app)
print("ready", flush=True)
sys.stdin.readline()
with app.app_context():
    def charge(card, key):
        request = ChargeRequest(customer=customer, payment_method=card, amount=1300,
                                currency="usd", idempotency_key=key, description="race")
        return gateway.charge(request)
    shared = charge(shared_card, "renewal:42:1")
    own = charge(first_only_card, "own:" + me)
print(json.dumps({"shared": shared.charge_id, "own": own.status.value,
                  "latency": gateway.latency}))
"""


@pytest.mark.slow
def test_processes_racing_share_one_database_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str, sandbox_db_url: str
) -> None:
    """R-REN-2: 4 worker processes charging at once: one row per key, one first charge.

    Also proves SANDBOX_PAY_LATENCY_MS reaches a subprocess.
    """
    shared, first_only = register("4242424242424242"), register("4000000000001232")
    env = {**os.environ, "PYTHONPATH": str(REPO), LATENCY_ENV: "50"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                sandbox_db_url,
                customer,
                shared.token,
                first_only.token,
                str(n),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # release all four together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    answers = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    assert {answer["latency"] for answer in answers} == {0.05}
    assert len({answer["shared"] for answer in answers}) == 1
    assert sandbox.charge_count("renewal:42:1") == 1
    assert sorted(answer["own"] for answer in answers) == ["declined"] * 3 + ["succeeded"]
    assert _attempts(sandbox, first_only.token) == 4


# -- fault switches ---------------------------------------------------------------------


def test_fail_before_charge_records_nothing_and_is_safe_to_retry(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    card = register("4242424242424242")
    sandbox.fail_before_charge = True
    with pytest.raises(GatewayUnavailable):
        pay(sandbox, customer, card.token, "k")
    assert sandbox.charge_count() == 0 and sandbox.lookup_charge("k") is None
    sandbox.fail_before_charge = False
    assert outcome(pay(sandbox, customer, card.token, "k")) is SUCCEEDS
    assert sandbox.charge_count() == 1


def test_no_free_storage_connection_is_an_unanswered_charge_found_later_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """Every pooled connection busy past the pool's wait: the charge is unanswered (its
    outcome unknown, as for a remote service that timed out), nothing is charged, and a
    later call with the key charges once."""
    card = register("4242424242424242")
    engine = sandbox.engine()
    pool = engine.pool
    if not hasattr(pool, "_timeout"):
        pytest.fail(f"{type(pool).__name__} has no wait to run out")
    held = [engine.connect() for _ in range(pool.size() + max(pool._max_overflow, 0))]  # type: ignore[attr-defined]
    waited, pool._timeout = pool._timeout, 0.05  # type: ignore[attr-defined]
    try:
        with pytest.raises(GatewayTimeout):
            pay(sandbox, customer, card.token, "renewal:7:1")
    finally:
        pool._timeout = waited  # type: ignore[attr-defined]
        for connection in held:
            connection.close()
    assert sandbox.lookup_charge("renewal:7:1") is None
    assert outcome(pay(sandbox, customer, card.token, "renewal:7:1")) is SUCCEEDS
    assert sandbox.charge_count() == 1


def test_timeout_after_charge_is_found_by_lookup_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-REN-2: after a timeout the charge happened; lookup (or a replay) finds it, once."""
    card = register("4242424242424242")
    sandbox.timeout_after_charge = True
    with pytest.raises(GatewayTimeout):
        pay(sandbox, customer, card.token, "renewal:9:1")
    with pytest.raises(GatewayTimeout):  # still no answer on a retry while it lasts
        pay(sandbox, customer, card.token, "renewal:9:1")
    sandbox.timeout_after_charge = False
    found = sandbox.lookup_charge("renewal:9:1")
    assert found is not None and found.status is SUCCEEDS
    assert pay(sandbox, customer, card.token, "renewal:9:1") == found
    assert sandbox.charge_count() == 1


def test_latency_is_slept_before_answering(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    card = register("4242424242424242")
    sandbox.latency = 0.05
    started = time.perf_counter()
    pay(sandbox, customer, card.token, "k")
    sandbox.lookup_charge("k")
    assert time.perf_counter() - started >= 0.1


def test_fault_switches_and_latency_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    switched = SandboxGateway(fail_before_charge=True, timeout_after_charge=True, latency=0.2)
    assert (switched.fail_before_charge, switched.timeout_after_charge) == (True, True)
    assert switched.latency == 0.2
    monkeypatch.setenv(LATENCY_ENV, "200")
    assert SandboxGateway().latency == 0.2
    assert SandboxGateway(latency=0).latency == 0  # an explicit value wins
    monkeypatch.setenv(LATENCY_ENV, "fast")
    with pytest.raises(ValueError, match=LATENCY_ENV):
        SandboxGateway()
    monkeypatch.delenv(LATENCY_ENV)
    assert SandboxGateway().latency == 0


# -- refunds and payouts ----------------------------------------------------------------


def test_refunds_are_idempotent_and_bounded(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    good, bad = register("4242424242424242"), register("4000000000000341")
    charge_id = pay(sandbox, customer, good.token, "paid").charge_id
    declined_id = pay(sandbox, customer, bad.token, "declined").charge_id
    assert charge_id and declined_id

    first = sandbox.refund(charge_id, 500, "refund:1")
    assert first.status == "succeeded" and first.refund_id
    assert sandbox.refund(charge_id, 500, "refund:1") == first
    with pytest.raises(IdempotencyKeyReused):
        sandbox.refund(charge_id, 600, "refund:1")

    too_much = sandbox.refund(charge_id, 801, "refund:2")
    assert too_much.status == "failed" and "exceeds" in (too_much.message or "")
    assert sandbox.refund(charge_id, 801, "refund:2") == too_much
    assert sandbox.refund(charge_id, 800, "refund:3").status == "succeeded"
    assert sandbox.refund(declined_id, 100, "refund:4").status == "failed"
    assert sandbox.refund("ch_unknown", 100, "refund:5").message == "No such charge."
    [row] = [row for row in sandbox.charges() if row.id == charge_id]
    assert row.amount_refunded == 1300


def test_payouts_are_idempotent_R_BAL_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BAL-2: a withdrawal pays out once per key; a failed payout is recorded too."""
    register("4242424242424242")
    first = sandbox.payout(customer, 9000, "USD", "withdrawal:3")
    assert first.status == "succeeded" and first.payout_id
    assert sandbox.payout(customer, 9000, "usd", "withdrawal:3") == first
    with pytest.raises(IdempotencyKeyReused):
        sandbox.payout(customer, 9001, "usd", "withdrawal:3")

    no_card = sandbox.create_customer("account-2", None)
    failed = sandbox.payout(no_card, 9000, "usd", "withdrawal:4")
    assert failed.status == "failed" and failed.message == "No card on file to pay out to."
    assert sandbox.payout(no_card, 9000, "usd", "withdrawal:4") == failed


# -- R-SEC-1 --------------------------------------------------------------------------


def test_storage_never_holds_a_card_number_R_SEC_1(
    pay_app: Flask,
    pay_client: FlaskClient,
    sandbox: SandboxGateway,
    customer: str,
    register: Register,
    sandbox_db_url: str,
) -> None:
    """R-SEC-1: after every test card (and a few others) went through the form and was
    charged, no 13 to 19-digit Luhn-valid string is anywhere in the sandbox's database."""
    typed = [card.number for card in TEST_CARDS] + ["378282246310005", "6011111111111117"]
    for number in typed:
        form_url = start_setup(pay_app, sandbox, customer, CARD_RETURN)
        cvc = "1234" if number.startswith("37") else "123"
        response = submit_card(pay_client, form_url, number, cvc=cvc)
        if response.status_code == 302:
            reference = form_url.rsplit("/", 1)[1]
            token = sandbox.finish_card_setup(customer, reference).token
            pay(sandbox, customer, token, f"sec:{number[-4:]}")
    assert sandbox.charge_count() == len(typed) - 2  # two are declined at registration

    with sandbox.engine().connect() as conn:
        dump = "\n".join(
            "|".join(str(value) for value in row)
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table))
        )
    assert {"4242", "0341", "1232"} <= set(re.findall(r"\b\d{4}\b", dump))  # last 4 are kept
    assert luhn_valid_numbers(dump) == []
    if sandbox_db_url.startswith("sqlite:///"):
        raw = Path(sandbox_db_url.removeprefix("sqlite:///")).read_bytes()
        assert [n for n in typed if n.encode() in raw] == []
    columns = {column.name for table in metadata.sorted_tables for column in table.columns}
    assert not columns & {"number", "card_number", "pan", "cvc", "cvv", "security_code"}


# -- mounting -------------------------------------------------------------------------


def test_sandbox_is_a_gateway() -> None:
    assert isinstance(SandboxGateway(), Gateway)


def test_two_apps_in_one_process_keep_separate_storage(tmp_path: Path) -> None:
    gateway = SandboxGateway(latency=0)  # each app's SQLALCHEMY_DATABASE_URI
    first = make_app(gateway, f"sqlite:///{tmp_path}/a.db")
    second = make_app(gateway, f"sqlite:///{tmp_path}/b.db")
    with first.app_context():
        customer = gateway.create_customer("a", None)
        gateway.start_card_setup(customer, CARD_RETURN)
        first_engine = gateway.engine()
    with second.app_context():
        with pytest.raises(GatewayError, match="No such customer"):
            gateway.start_card_setup(customer, CARD_RETURN)
        assert gateway.engine() is not first_engine
        gateway.dispose()
    with first.app_context():
        gateway.dispose()


def test_apps_on_one_database_share_one_engine(tmp_path: Path) -> None:
    """One pool per database per process, however many apps (or tests) come and go."""
    engines = []
    for _ in range(2):
        gateway = SandboxGateway(latency=0)
        with make_app(gateway, f"sqlite:///{tmp_path}/a.db").app_context():
            engines.append(gateway.engine())
    assert engines[0] is engines[1]
    engines[0].dispose()


def test_init_app_is_idempotent_and_guards_its_slot(tmp_path: Path) -> None:
    gateway = SandboxGateway(f"sqlite:///{tmp_path}/s.db")
    app = make_app(gateway)
    gateway.init_app(app)  # a host and the extension may both call it
    with pytest.raises(RuntimeError, match="another SandboxGateway"):
        SandboxGateway(f"sqlite:///{tmp_path}/s.db").init_app(app)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        SandboxGateway().charge_count()
    with pytest.raises(RuntimeError, match="SQLALCHEMY_DATABASE_URI"):
        SandboxGateway().init_app(Flask("bare"))
    with app.app_context():
        gateway.dispose()


def test_relative_sqlite_path_lives_in_the_instance_folder(tmp_path: Path) -> None:
    """As with Flask-SQLAlchemy, so the host's URI names the same file."""
    gateway = SandboxGateway("sqlite:///pay.db")
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["SECRET_KEY"] = "x"
    os.makedirs(app.instance_path)
    gateway.init_app(app)
    with app.app_context():
        gateway.create_storage()
        assert (tmp_path / "instance" / "pay.db").exists()
        gateway.dispose()


def test_in_memory_sqlite_works() -> None:
    gateway = SandboxGateway("sqlite://")
    app = make_app(gateway)
    with app.app_context():
        customer = gateway.create_customer("a", None)
        assert gateway.start_card_setup(customer, CARD_RETURN).reference
        assert gateway.lookup_charge("nothing") is None
        gateway.dispose()


# -- helpers --------------------------------------------------------------------------


def _typed_values(html: str) -> list[str]:
    """Non-empty values of the card form's visible inputs."""
    return [
        value
        for name, value in re.findall(r'name="(number|expiry|cvc)"[^>]*value="([^"]*)"', html)
        if value
    ]


def _attempts(gateway: SandboxGateway, token: str) -> int:
    with gateway.engine().connect() as conn:
        return int(
            conn.execute(
                sa.select(cards.c.charge_attempts).where(cards.c.token == token)
            ).scalar_one()
        )


def _reference_of(gateway: SandboxGateway, token: str) -> str:
    with gateway.engine().connect() as conn:
        return str(
            conn.execute(
                sa.select(setup_sessions.c.id).where(setup_sessions.c.card_token == token)
            ).scalar_one()
        )
