"""Fixtures for the sandbox gateway on its own: a bare Flask app, no Subscriptions.

Set ``TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/sandbox_t``)
to run against PostgreSQL; unset, each test gets a temporary SQLite file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_subscriptions.gateways import PaymentMethodInfo
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import metadata

CARD_RETURN = "/billing/cards/return"
PAY_RETURN = "/billing/pay/return"


class Today:
    """A settable ``today`` for the gateway's expiry checks."""

    def __init__(self, value: date) -> None:
        self.value = value

    def __call__(self) -> date:
        return self.value


def make_app(gateway: SandboxGateway, database_url: str | None = None, **config: object) -> Flask:
    """A host app that knows nothing of billing: only a page to come back to."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-secret", TESTING=True, **config)
    if database_url:
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url

    @app.get(CARD_RETURN)
    @app.get(PAY_RETURN)
    def came_back() -> dict[str, str]:
        return request.args.to_dict()

    gateway.init_app(app)
    with app.app_context():
        gateway.create_storage()  # init_app creates no table; a host runs `db upgrade`
    return app


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


@pytest.fixture
def sandbox_db_url(tmp_path: object) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/sandbox.db"


@pytest.fixture
def today() -> Today:
    return Today(date(2026, 3, 15))


@pytest.fixture
def sandbox(sandbox_db_url: str, today: Today) -> SandboxGateway:
    return SandboxGateway(sandbox_db_url, today=today, latency=0)


@pytest.fixture
def pay_app(sandbox: SandboxGateway) -> Iterator[Flask]:
    """The app, with an app context pushed (as a CLI command or a job has)."""
    app = make_app(sandbox)
    with app.app_context():
        _empty(sandbox)
        yield app
        _empty(sandbox)
        sandbox.dispose()


def _empty(gateway: SandboxGateway) -> None:
    """Rows go, tables stay: a whole-suite run on one database shares them (tests/conftest.py)."""
    with gateway.engine().begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def pay_client(pay_app: Flask) -> FlaskClient:
    return pay_app.test_client()


@pytest.fixture
def customer(sandbox: SandboxGateway, pay_app: Flask) -> str:
    return sandbox.create_customer("account-1", "owner@example.test")


def start_setup(app: Flask, gateway: SandboxGateway, customer: str, return_url: str) -> str:
    """Start a card setup the way a host's view does, inside a request; the form URL."""
    with app.test_request_context("/billing/cards/add"):
        setup = gateway.start_card_setup(customer, return_url)
    assert setup.redirect_url is not None
    return setup.redirect_url


def submit_card(
    client: FlaskClient, form_url: str, number: str, expiry: str = "12/30", cvc: str = "123"
) -> TestResponse:
    page = client.get(form_url)
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text), "number": number, "expiry": expiry, "cvc": cvc}
    return client.post(form_url, data=data)


@pytest.fixture
def register(
    pay_app: Flask, pay_client: FlaskClient, sandbox: SandboxGateway, customer: str
) -> Callable[..., PaymentMethodInfo]:
    """Register a card through the real form, as a person would (R-BUY-10)."""

    def register(
        number: str, expiry: str = "12/30", cvc: str = "123", owner: str | None = None
    ) -> PaymentMethodInfo:
        owner = owner or customer
        form_url = start_setup(pay_app, sandbox, owner, CARD_RETURN)
        response = submit_card(pay_client, form_url, number, expiry, cvc)
        assert response.status_code == 302, response.text
        back = pay_client.get(response.headers["Location"])
        return sandbox.finish_card_setup(owner, back.json["setup_reference"])

    return register
