"""The gateway protocol, checked the same way against Sandbox Pay and against Stripe.

Each gateway runs in a bare Flask app (no billing), as the external service it stands
for; a ``Driver`` does what only the test can: type a card into the service's form,
approve a 3-D Secure payment, count the charges the service made, break the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

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
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata

from . import driver as faults
from .conftest import stripe_config
from .driver import LocalStripeGateway

VISA = "4242424242424242"
DECLINES_EVERY_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"
DECLINED_AT_REGISTRATION = "4000000000000002"
RETURN_URL = "/billing/payment-methods/return"


class Driver:
    """What the test does in the service's place: the person's hands, the network."""

    def __init__(self, app: Flask, gateway: Any) -> None:
        self.app, self.gateway = app, gateway
        self.references: dict[str, str] = {}

    def register(self, customer: str, number: str = VISA) -> PaymentMethodInfo:
        with self.app.test_request_context("/billing/payment-methods/register"):
            setup = self.gateway.start_card_setup(customer, RETURN_URL)
        assert setup.reference is not None
        self.gateway.register_card(setup.reference, number, 12, 2030)
        info: PaymentMethodInfo = self.gateway.finish_card_setup(customer, setup.reference)
        self.references[info.token] = setup.reference
        return info

    def authenticate(self, charge_id: str, succeeded: bool) -> None:
        self.gateway.complete_authentication(charge_id, succeeded)

    def charges(self, key: str | None = None) -> int:
        return int(self.gateway.charge_count(key))

    def fail_before_charge(self, on: bool) -> None:
        raise NotImplementedError

    def timeout_after_charge(self, on: bool) -> None:
        raise NotImplementedError


class SandboxDriver(Driver):
    def fail_before_charge(self, on: bool) -> None:
        self.gateway.fail_before_charge = on

    def timeout_after_charge(self, on: bool) -> None:
        self.gateway.timeout_after_charge = on


class StripeDriver(Driver):
    def fail_before_charge(self, on: bool) -> None:
        self.gateway.faults.fail_before = faults.creating_payment_intents if on else None

    def timeout_after_charge(self, on: bool) -> None:
        self.gateway.faults.timeout_after = faults.about_payment_intents if on else None


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/gateway.db"


@pytest.fixture(params=["sandbox", "stripe"])
def pay(request: pytest.FixtureRequest, db_url: str, localstripe: str) -> Iterator[Driver]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-secret", TESTING=True, SERVER_NAME="host.test")
    gateway: Any
    if request.param == "sandbox":
        gateway = SandboxGateway(db_url, latency=0, today=lambda: date(2026, 3, 15))
        driver: Driver = SandboxDriver(app, gateway)
    else:
        app.config.update(stripe_config(localstripe))
        gateway = LocalStripeGateway(database_url=db_url)
        driver = StripeDriver(app, gateway)
    gateway.init_app(app)
    with app.app_context():
        gateway.create_storage()  # init_app creates no table
        yield driver
        _empty(gateway)
        gateway.dispose()


def _empty(gateway: Any) -> None:
    from flask_subscriptions.gateways.stripe import metadata as stripe_metadata

    tables = sandbox_metadata if isinstance(gateway, SandboxGateway) else stripe_metadata
    with gateway.engine().begin() as conn:
        for table in reversed(tables.sorted_tables):
            conn.execute(table.delete())


@dataclass
class Payer:
    customer: str
    card: PaymentMethodInfo


@pytest.fixture
def payer(pay: Driver) -> Payer:
    customer = pay.gateway.create_customer("account-1", "owner@example.test")
    return Payer(customer, pay.register(customer))


def charge(
    pay: Driver, customer: str, card: str, key: str, amount: int = 1300, currency: str = "usd"
) -> ChargeResult:
    result: ChargeResult = pay.gateway.charge(
        ChargeRequest(
            customer=customer,
            payment_method=card,
            amount=amount,
            currency=currency,
            idempotency_key=key,
            description="Small (monthly)",
        )
    )
    return result


# -- customers and cards ------------------------------------------------------------------


def test_is_a_gateway(pay: Driver) -> None:
    assert isinstance(pay.gateway, Gateway)


def test_a_customer_per_call(pay: Driver) -> None:
    first = pay.gateway.create_customer("account-1", None)
    second = pay.gateway.create_customer("account-2", "b@example.test")
    assert first and second and first != second


def test_card_setup_keeps_only_a_reference_R_SEC_1(pay: Driver) -> None:
    """R-BUY-4, R-SEC-1: the setup is the service's form (a page, or an embedded form with
    the service's own keys); what comes back is a token, brand, last 4 and expiry."""
    customer = pay.gateway.create_customer("account-1", None)
    with pay.app.test_request_context("/"):
        setup = pay.gateway.start_card_setup(customer, RETURN_URL)
    assert setup.reference
    assert setup.redirect_url or (setup.client_secret and setup.publishable_key)
    pay.gateway.register_card(setup.reference, VISA, 12, 2030)
    info = pay.gateway.finish_card_setup(customer, setup.reference)
    assert (info.brand, info.last4, info.exp_month, info.exp_year) == ("visa", "4242", 12, 2030)
    assert VISA not in repr(info)
    assert pay.gateway.finish_card_setup(customer, setup.reference) == info  # coming back twice


def test_a_setup_is_finished_only_by_its_customer(pay: Driver, payer: Payer) -> None:
    other = pay.gateway.create_customer("account-2", None)
    reference = pay.references[payer.card.token]
    with pytest.raises(CardSetupFailed):
        pay.gateway.finish_card_setup(other, reference)
    with pytest.raises(CardSetupFailed):
        pay.gateway.finish_card_setup(payer.customer, "seti_doesnotexist")


def test_a_card_declined_at_registration_registers_nothing_R_BUY_4(pay: Driver) -> None:
    customer = pay.gateway.create_customer("account-1", None)
    with pay.app.test_request_context("/"):
        setup = pay.gateway.start_card_setup(customer, RETURN_URL)
    with pytest.raises(CardSetupFailed):
        pay.gateway.register_card(setup.reference, DECLINED_AT_REGISTRATION, 12, 2030)
    with pytest.raises(CardSetupFailed):
        pay.gateway.finish_card_setup(customer, setup.reference)


def test_a_removed_card_cannot_be_registered_again(pay: Driver, payer: Payer) -> None:
    pay.gateway.remove_payment_method(payer.card.token)
    pay.gateway.remove_payment_method(payer.card.token)  # removing twice is fine
    with pytest.raises(CardSetupFailed):
        pay.gateway.finish_card_setup(payer.customer, pay.references[payer.card.token])
    with pytest.raises(GatewayError):
        pay.gateway.remove_payment_method("pm_doesnotexist")


# -- charges ------------------------------------------------------------------------------


def test_a_charge_succeeds_once_per_key_R_BUY_6(pay: Driver, payer: Payer) -> None:
    """R-BUY-6: a second call with the key is answered with the first charge."""
    first = charge(pay, payer.customer, payer.card.token, "purchase:1:1")
    assert first.status is ChargeStatus.SUCCEEDED and first.charge_id
    assert charge(pay, payer.customer, payer.card.token, "purchase:1:1") == first
    assert pay.gateway.lookup_charge("purchase:1:1") == first
    second = charge(pay, payer.customer, payer.card.token, "renewal:2:1")
    assert second.status is ChargeStatus.SUCCEEDED and second.charge_id != first.charge_id
    assert (pay.charges("purchase:1:1"), pay.charges()) == (1, 2)


@pytest.mark.parametrize(
    "change",
    [{"amount": 1301}, {"currency": "jpy"}, {"card": "pm_other"}, {"customer": "cus_other"}],
)
def test_a_key_reused_for_another_request_is_refused_R_BUY_6(
    pay: Driver, payer: Payer, change: dict[str, Any]
) -> None:
    charge(pay, payer.customer, payer.card.token, "order:7")
    args = {"customer": payer.customer, "card": payer.card.token, **change}
    with pytest.raises(IdempotencyKeyReused):
        charge(pay, key="order:7", **args)
    assert pay.charges() == 1


def test_a_hard_decline_is_recorded_and_replayed(pay: Driver, payer: Payer) -> None:
    card = pay.register(payer.customer, DECLINES_EVERY_CHARGE)
    declined = charge(pay, payer.customer, card.token, "renewal:1:1")
    assert declined.status is ChargeStatus.DECLINED
    assert (declined.decline_kind, declined.decline_code) == (DeclineKind.HARD, "card_declined")
    assert declined.message and declined.charge_id
    assert charge(pay, payer.customer, card.token, "renewal:1:1") == declined
    assert pay.gateway.lookup_charge("renewal:1:1") == declined
    assert pay.charges() == 1


@pytest.mark.parametrize("approved", [True, False])
def test_a_charge_the_bank_wants_confirmed_waits_for_the_person(
    pay: Driver, payer: Payer, approved: bool
) -> None:
    """3-D Secure: neither paid nor failed until the person acts on the action page."""
    card = pay.register(payer.customer, NEEDS_AUTHENTICATION)
    waiting = charge(pay, payer.customer, card.token, "purchase:3:1")
    assert waiting.status is ChargeStatus.REQUIRES_ACTION
    assert waiting.action_url and waiting.charge_id
    assert pay.gateway.lookup_charge("purchase:3:1") == waiting
    pay.authenticate(waiting.charge_id, approved)
    final = pay.gateway.lookup_charge("purchase:3:1")
    assert final is not None and final.charge_id == waiting.charge_id
    if approved:
        assert final.status is ChargeStatus.SUCCEEDED
    else:
        assert (final.status, final.decline_kind) == (ChargeStatus.DECLINED, DeclineKind.HARD)
    assert charge(pay, payer.customer, card.token, "purchase:3:1") == final


def test_lookup_of_a_key_never_charged_is_none(pay: Driver) -> None:
    assert pay.gateway.lookup_charge("never:1:1") is None


def test_a_failure_before_the_charge_is_safe_to_retry(pay: Driver, payer: Payer) -> None:
    pay.fail_before_charge(True)
    with pytest.raises(GatewayUnavailable):
        charge(pay, payer.customer, payer.card.token, "k")
    assert pay.gateway.lookup_charge("k") is None and pay.charges() == 0
    pay.fail_before_charge(False)
    assert charge(pay, payer.customer, payer.card.token, "k").status is ChargeStatus.SUCCEEDED
    assert pay.charges() == 1


def test_a_timeout_after_the_charge_is_settled_by_lookup_R_REN_2(pay: Driver, payer: Payer) -> None:
    """R-REN-2: the charge happened though no answer came; lookup (or a replay) finds it."""
    pay.timeout_after_charge(True)
    with pytest.raises(GatewayTimeout):
        charge(pay, payer.customer, payer.card.token, "renewal:9:1")
    with pytest.raises(GatewayTimeout):  # still no answer on a retry while it lasts
        charge(pay, payer.customer, payer.card.token, "renewal:9:1")
    pay.timeout_after_charge(False)
    found = pay.gateway.lookup_charge("renewal:9:1")
    assert found is not None and found.status is ChargeStatus.SUCCEEDED
    assert charge(pay, payer.customer, payer.card.token, "renewal:9:1") == found
    assert pay.charges() == 1


def test_threads_racing_on_one_key_make_one_charge_R_BUY_6(pay: Driver, payer: Payer) -> None:
    """R-BUY-6, R-REN-2: concurrent requests with one key: one charge, one answer."""
    barrier = threading.Barrier(8)
    results: list[ChargeResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with pay.app.app_context():
            barrier.wait()
            try:
                results.append(charge(pay, payer.customer, payer.card.token, "double-click"))
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert pay.charges() == 1


# -- refunds and payouts ----------------------------------------------------------------


def test_refunds_are_idempotent_and_bounded(pay: Driver, payer: Payer) -> None:
    bad = pay.register(payer.customer, DECLINES_EVERY_CHARGE)
    charge_id = charge(pay, payer.customer, payer.card.token, "paid").charge_id
    declined_id = charge(pay, payer.customer, bad.token, "declined").charge_id
    assert charge_id and declined_id

    first = pay.gateway.refund(charge_id, 500, "refund:1")
    assert first.status == "succeeded" and first.refund_id
    assert pay.gateway.refund(charge_id, 500, "refund:1") == first
    with pytest.raises(IdempotencyKeyReused):
        pay.gateway.refund(charge_id, 600, "refund:1")

    too_much = pay.gateway.refund(charge_id, 801, "refund:2")
    assert too_much.status == "failed" and "exceeds" in (too_much.message or "")
    assert pay.gateway.refund(charge_id, 801, "refund:2") == too_much
    assert pay.gateway.refund(charge_id, 800, "refund:3").status == "succeeded"
    assert pay.gateway.refund(declined_id, 100, "refund:4").status == "failed"
    assert pay.gateway.refund("ch_unknown", 100, "refund:5").message == "No such charge."


def test_payouts_are_idempotent_R_BAL_2(pay: Driver, payer: Payer) -> None:
    """R-BAL-2: a withdrawal pays out once per key; a failed payout is recorded too."""
    charge(pay, payer.customer, payer.card.token, "paid", amount=13000)
    first = pay.gateway.payout(payer.customer, 9000, "USD", "withdrawal:3")
    assert first.status == "succeeded" and first.payout_id
    assert pay.gateway.payout(payer.customer, 9000, "usd", "withdrawal:3") == first
    with pytest.raises(IdempotencyKeyReused):
        pay.gateway.payout(payer.customer, 9001, "usd", "withdrawal:3")

    nothing = pay.gateway.create_customer("account-2", None)
    failed = pay.gateway.payout(nothing, 9000, "usd", "withdrawal:4")
    assert failed.status == "failed" and failed.message
    assert pay.gateway.payout(nothing, 9000, "usd", "withdrawal:4") == failed
