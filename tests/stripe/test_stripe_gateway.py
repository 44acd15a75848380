"""What is particular to the Stripe adapter: settings, mapping Stripe's answers, network
failures on real sockets, one PaymentIntent per key, refunds claimed before they are made."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
import urllib3
from flask import Flask
from flask_wtf import CSRFProtect

from flask_subscriptions.config import ConfigurationError
from flask_subscriptions.gateways import (
    ChargeRequest,
    ChargeStatus,
    DeclineKind,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
)
from flask_subscriptions.gateways.stripe import StripeGateway
from flask_subscriptions.gateways.stripe.mapping import (
    card_error_result,
    charge_result,
    reached_stripe,
    transport,
)
from flask_subscriptions.gateways.stripe.settings import load_stripe_settings

from ..conftest import at_once
from . import driver as faults
from .conftest import stripe_config
from .driver import LocalStripeGateway
from .test_protocol import DECLINES_EVERY_CHARGE, NEEDS_AUTHENTICATION, VISA


def act(intent_id: str) -> str:
    return f"/act/{intent_id}"


# -- settings ---------------------------------------------------------------------------


def test_settings_name_what_to_set() -> None:
    good = stripe_config("http://127.0.0.1:9")
    settings = load_stripe_settings(good)
    assert settings.js_url == "http://127.0.0.1:9/js.stripe.com/v3/"
    no_base = {k: v for k, v in good.items() if not k.endswith("API_BASE")}
    assert load_stripe_settings(no_base).js_url == "https://js.stripe.com/v3/"
    for key in ("SECRET_KEY", "PUBLISHABLE_KEY", "WEBHOOK_SECRET"):
        missing = {k: v for k, v in good.items() if not k.endswith(key)}
        with pytest.raises(ConfigurationError, match=f"SUBSCRIPTIONS_STRIPE_{key}"):
            load_stripe_settings(missing)
    with pytest.raises(ConfigurationError, match=r"SECRET_KEY.*'pk_test_"):
        load_stripe_settings({**good, "SUBSCRIPTIONS_STRIPE_SECRET_KEY": "pk_test_swapped_keys"})
    with pytest.raises(ConfigurationError, match="Unknown setting SUBSCRIPTIONS_STRIPE_SECRET"):
        load_stripe_settings({**good, "SUBSCRIPTIONS_STRIPE_SECRET": "sk_test_x"})


def test_mounting_follows_the_url_prefix_and_skips_csrf(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(stripe_config("http://127.0.0.1:9"), SECRET_KEY="s",
                      SUBSCRIPTIONS_URL_PREFIX="/pay/")  # fmt: skip
    CSRFProtect(app)
    gateway = StripeGateway(database_url=f"sqlite:///{tmp_path}/s.db")
    gateway.init_app(app)
    gateway.init_app(app)  # the host and the extension may both call it
    with pytest.raises(RuntimeError, match="another StripeGateway"):
        StripeGateway(database_url=f"sqlite:///{tmp_path}/s.db").init_app(app)
    answer = app.test_client().post("/pay/stripe/webhook", data=b"{}")
    assert answer.status_code == 400 and "signature" in answer.json["error"]  # not CSRF's 400
    with app.app_context():
        gateway.dispose()
    with pytest.raises(RuntimeError, match="needs a database"):
        bare = Flask("bare")
        bare.config.update(stripe_config("http://127.0.0.1:9"))
        StripeGateway().init_app(bare)


# -- Stripe's answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("insufficient_funds", DeclineKind.SOFT),
        ("try_again_later", DeclineKind.SOFT),
        ("card_declined", DeclineKind.HARD),
        ("lost_card", DeclineKind.HARD),
        ("expired_card", DeclineKind.HARD),
        ("generic_decline", DeclineKind.HARD),
        ("a_code_stripe_adds_later", DeclineKind.HARD),
    ],
)
def test_declines_are_soft_only_when_a_retry_may_work(code: str, kind: DeclineKind) -> None:
    """Stripe puts the issuer's reason in decline_code; insufficient_funds is soft."""
    intent = {"id": "pi_1", "status": "requires_payment_method",
              "last_payment_error": {"code": "card_declined", "decline_code": code,
                                     "message": "Stripe's words."}}  # fmt: skip
    result = charge_result(intent, act)
    assert result is not None
    assert (result.status, result.decline_kind, result.decline_code) == (
        ChargeStatus.DECLINED,
        kind,
        code,
    )
    assert (result.charge_id, result.message) == ("pi_1", "Stripe's words.")


def test_authentication_required_off_session_is_an_action_not_a_decline() -> None:
    """Stripe answers an off-session charge the bank wants approved with a 402
    ``authentication_required``; the PaymentIntent can still be completed by the person."""
    error_object = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "authentication_required",
        "message": "Needs 3DS.",
    }
    body = {"error": error_object}
    error = stripe.CardError("Needs 3DS.", None, "card_declined", json_body=body, http_status=402)
    result = card_error_result(error, "pi_1", act)
    assert (result.status, result.action_url) == (ChargeStatus.REQUIRES_ACTION, "/act/pi_1")
    later = {"id": "pi_1", "status": "requires_payment_method", "last_payment_error": error_object}
    assert charge_result(later, act) == result


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", ChargeStatus.SUCCEEDED),
        ("processing", ChargeStatus.UNKNOWN),
        ("requires_action", ChargeStatus.REQUIRES_ACTION),
        ("canceled", ChargeStatus.DECLINED),
        ("requires_confirmation", None),
    ],
)
def test_payment_intent_statuses(status: str, expected: ChargeStatus | None) -> None:
    result = charge_result({"id": "pi_1", "status": status}, act)
    assert (result.status if result else None) == expected


def _connection_error(cause: BaseException) -> stripe.APIConnectionError:
    try:
        stripe.RequestsClient()._handle_request_error(cause)  # type: ignore[arg-type]
    except stripe.APIConnectionError as exc:
        return exc
    raise AssertionError("no error")


def test_only_a_request_that_never_left_is_unavailable() -> None:
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            "/v1/x",
            urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
        )
    )
    dropped = requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("aborted"))
    assert not reached_stripe(_connection_error(refused))
    assert not reached_stripe(_connection_error(requests.exceptions.ConnectTimeout()))
    assert reached_stripe(_connection_error(requests.exceptions.ReadTimeout()))
    assert reached_stripe(_connection_error(dropped))


@pytest.mark.parametrize(
    ("error", "moves_money", "raised"),
    [
        (stripe.APIError("boom", http_status=500), True, GatewayTimeout),
        (stripe.APIError("boom", http_status=500), False, GatewayUnavailable),
        (stripe.RateLimitError("slow down", http_status=429), True, GatewayUnavailable),
        (stripe.AuthenticationError("bad key", http_status=401), True, GatewayUnavailable),
        (stripe.IdempotencyError("other params", http_status=400), True, IdempotencyKeyReused),
    ],
)
def test_service_errors(error: Exception, moves_money: bool, raised: type[Exception]) -> None:
    with pytest.raises(raised), transport(moves_money=moves_money):
        raise error


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung Stripe)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


def _app(api_base: str, tmp_path: Path, timeout: float = 0.3) -> tuple[Flask, StripeGateway]:
    app = Flask(__name__)
    app.config.update(stripe_config(api_base), SECRET_KEY="s")
    gateway = StripeGateway(database_url=f"sqlite:///{tmp_path}/s.db", timeout=timeout)
    gateway.init_app(app)
    with app.app_context():
        gateway.create_storage()  # init_app creates no table
    return app, gateway


def test_real_sockets_refused_and_hung(tmp_path: Path, closed_port: str, black_hole: str) -> None:
    """Refused: nothing was sent (unavailable). Hung: the request may have been served."""
    request = ChargeRequest(customer="cus_1", payment_method="pm_1", amount=100,
                            currency="usd", idempotency_key="k", description="x")  # fmt: skip
    for base, reached in ((closed_port, False), (black_hole, True)):
        app, gateway = _app(base, tmp_path)
        with app.app_context():
            with pytest.raises(GatewayUnavailable):
                gateway.create_customer("1", None)
            with pytest.raises(GatewayUnavailable):  # creating the PaymentIntent moves nothing
                gateway.charge(request)
            assert gateway.lookup_charge("k") is None  # and nothing was recorded
            with pytest.raises(stripe.APIConnectionError) as failed:
                gateway.client.v1.customers.list()
            assert reached_stripe(failed.value) is reached
            gateway.dispose()


# -- one PaymentIntent per key -----------------------------------------------------------


@pytest.fixture
def stripe_app(localstripe: str, tmp_path: Path) -> Iterator[tuple[Flask, LocalStripeGateway]]:
    app = Flask(__name__)
    app.config.update(stripe_config(localstripe), SECRET_KEY="s", SERVER_NAME="host.test")
    gateway = LocalStripeGateway(database_url=f"sqlite:///{tmp_path}/s.db")
    gateway.init_app(app)
    with app.app_context():
        gateway.create_storage()  # init_app creates no table
        yield app, gateway
        gateway.dispose()


@pytest.fixture
def card(stripe_app: tuple[Flask, LocalStripeGateway]) -> tuple[str, str]:
    return _card(stripe_app, VISA)


def _card(stripe_app: tuple[Flask, LocalStripeGateway], number: str) -> tuple[str, str]:
    _, gateway = stripe_app
    customer = gateway.create_customer("1", None)
    setup = gateway.start_card_setup(customer, "/back")
    assert setup.reference
    return customer, gateway.register_card(setup.reference, number, 12, 2030)


def _request(customer: str, card: str, key: str = "purchase:1:1", **kw: Any) -> ChargeRequest:
    values = {"amount": 1300, "currency": "usd", "description": "Small", **kw}
    return ChargeRequest(customer=customer, payment_method=card, idempotency_key=key, **values)


def _intents(gateway: LocalStripeGateway) -> list[Any]:
    return list(gateway.client.v1.payment_intents.list(params={"limit": 100}).data)


def test_the_payment_intent_is_kept_before_it_is_confirmed(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    """A crash (here: a refused connection) between creating and confirming leaves one
    recorded, unconfirmed PaymentIntent: no charge to find, and the retry confirms that
    same PaymentIntent instead of making another."""
    _, gateway = stripe_app
    customer, token = card
    gateway.faults.fail_before = faults.confirming
    with pytest.raises(GatewayUnavailable):
        gateway.charge(_request(customer, token))
    [intent] = _intents(gateway)
    assert intent.status == "requires_confirmation"
    assert gateway.lookup_charge("purchase:1:1") is None
    gateway.faults.fail_before = None
    result = gateway.charge(_request(customer, token))
    assert (result.status, result.charge_id) == (ChargeStatus.SUCCEEDED, intent.id)
    assert [i.id for i in _intents(gateway)] == [intent.id]
    assert gateway.client.v1.payment_intents.retrieve(intent.id).metadata["idempotency_key"] == (
        "purchase:1:1"
    )


def test_payment_intents_that_lost_the_race_for_a_key_are_canceled(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    app, gateway = stripe_app
    customer, token = card
    results = at_once(app, 6, lambda _me: gateway.charge(_request(customer, token)))
    assert len(results) == 6 and len(set(results)) == 1
    assert results[0].status is ChargeStatus.SUCCEEDED
    statuses = sorted(i.status for i in _intents(gateway))
    assert statuses.count("succeeded") == 1 and set(statuses) <= {"succeeded", "canceled"}
    assert gateway.charge_count() == 1


def test_keys_and_off_session_are_sent_to_stripe(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    """Checkout passes a return URL (the person is there, on session); renewals do not.
    Both requests of a charge carry an Idempotency-Key derived from ours."""
    _, gateway = stripe_app
    customer, token = card
    gateway.charge(_request(customer, token, "purchase:1:1", off_session=False,
                            return_url="https://host.test/billing/orders/x/complete"))  # fmt: skip
    gateway.charge(_request(customer, token, "renewal:2:1"))
    confirms = [data for method, url, data in gateway.faults.sent if faults.confirming(method, url)]
    assert ["off_session=true" in data for data in confirms] == [False, True]
    posts = [key for url, key in gateway.faults.keys if "/v1/payment_intents" in url]
    [on_session, _] = sorted(_intents(gateway), key=lambda i: i.created)
    assert on_session.metadata["return_url"] == "https://host.test/billing/orders/x/complete"
    sent_keys = [key for url, key in gateway.faults.keys if "/v1/payment_intents" in url and key]
    assert sent_keys == [
        "purchase:1:1",  # creating: Stripe's Idempotency-Key is ours
        "purchase:1:1:confirm",
        "renewal:2:1",
        "renewal:2:1:confirm",
    ]
    assert len(posts) == 4  # (the SDK sends no key on a GET)


def test_a_charge_needing_authentication_links_to_our_signed_page(
    stripe_app: tuple[Flask, LocalStripeGateway],
) -> None:
    _, gateway = stripe_app
    customer, token = _card(stripe_app, NEEDS_AUTHENTICATION)
    result = gateway.charge(_request(customer, token))
    assert result.status is ChargeStatus.REQUIRES_ACTION and result.charge_id
    assert (result.action_url or "").startswith("http://host.test/billing/stripe/authenticate/")
    token_part = (result.action_url or "").rsplit("/", 1)[1]
    intent = gateway.intent_of_action(token_part)
    assert intent is not None and intent["id"] == result.charge_id
    assert gateway.intent_of_action(token_part + "x") is None
    assert gateway.intent_of_action(result.charge_id) is None  # an id alone is no link


def test_a_removed_card_is_detached_at_stripe(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    _, gateway = stripe_app
    _, token = card
    gateway.remove_payment_method(token)
    assert gateway.client.v1.payment_methods.retrieve(token).customer is None


# -- refunds claimed before they are made ------------------------------------------------


def _paid(stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]) -> str:
    _, gateway = stripe_app
    customer, token = card
    charge_id = gateway.charge(_request(customer, token, "paid")).charge_id
    assert charge_id
    return charge_id


def _refunds(gateway: LocalStripeGateway, charge_id: str) -> list[Any]:
    return list(gateway.client.v1.refunds.list(params={"payment_intent": charge_id}).data)


def test_a_refund_whose_answer_was_lost_is_found_not_repeated(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    _, gateway = stripe_app
    charge_id = _paid(stripe_app, card)
    gateway.faults.timeout_after = lambda method, url: url.endswith("/v1/refunds")
    with pytest.raises(GatewayTimeout):
        gateway.refund(charge_id, 500, "refund:1")
    gateway.faults.timeout_after = None
    with pytest.raises(GatewayTimeout):  # the claim is fresh: it may still be under way
        gateway.refund(charge_id, 500, "refund:1")
    gateway.claim_lease = timedelta(0)  # time passes: the claim goes stale
    found = gateway.refund(charge_id, 500, "refund:1")
    [refund] = _refunds(gateway, charge_id)
    assert (found.status, found.refund_id) == ("succeeded", refund.id)
    assert gateway.refund(charge_id, 500, "refund:1") == found


def test_a_refund_that_never_left_is_tried_afresh(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    _, gateway = stripe_app
    charge_id = _paid(stripe_app, card)
    gateway.faults.fail_before = lambda method, url: url.endswith("/v1/refunds")
    with pytest.raises(GatewayUnavailable):
        gateway.refund(charge_id, 500, "refund:1")
    gateway.faults.fail_before = None
    assert gateway.refund(charge_id, 500, "refund:1").status == "succeeded"
    assert len(_refunds(gateway, charge_id)) == 1


def test_a_payout_refunds_the_latest_payment_that_can_take_it_R_BAL_2(
    stripe_app: tuple[Flask, LocalStripeGateway], card: tuple[str, str]
) -> None:
    _, gateway = stripe_app
    customer, token = card
    small = gateway.charge(_request(customer, token, "a", amount=500)).charge_id
    big = gateway.charge(_request(customer, token, "b", amount=5000)).charge_id
    gateway.charge(_request(customer, token, "c", amount=5000, currency="eur"))
    bad = _card(stripe_app, DECLINES_EVERY_CHARGE)[1]
    gateway.charge(_request(customer, bad, "d", amount=9000))
    paid = gateway.payout(customer, 3000, "usd", "withdrawal:1")
    assert paid.status == "succeeded"
    [refund] = _refunds(gateway, big or "")
    assert (refund.id, refund.amount, refund.metadata["purpose"]) == (
        paid.payout_id,
        3000,
        "payout",
    )
    assert _refunds(gateway, small or "") == []
    too_big = gateway.payout(customer, 2001, "usd", "withdrawal:2")  # 2,000 left on "b"
    assert too_big.status == "failed" and "bank transfer" in (too_big.message or "")
