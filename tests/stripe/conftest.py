"""Fixtures for the Stripe adapter: the real SDK against localstripe, on loopback.

localstripe runs as a subprocess on a free 127.0.0.1 port for the whole session
(``localstripe_server.py`` says how it is started) and is emptied before each test. Without
``stripe`` or ``localstripe`` installed these tests skip, except in CI (``CI=true``), where
they fail: nothing may skip there.

Here the ``gateway`` of the root fixtures is a ``LocalStripeGateway``, so ``app``,
``alice``, ``catalog`` and the factories run the services against Stripe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("CI") != "true":
    pytest.importorskip("stripe", reason="the Stripe tests need the stripe SDK (dev group)")
    pytest.importorskip("localstripe", reason="the Stripe tests need localstripe (dev group)")

import requests
import sqlalchemy as sa

from flask_subscriptions.gateways.stripe import metadata as stripe_metadata

from .driver import LocalStripeGateway

SERVER = Path(__file__).with_name("localstripe_server.py")
SECRET_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"
WEBHOOK_SECRET = "whsec_test_localstripe"


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """The base URL of a localstripe serving this session only."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            _, errors = process.communicate(timeout=10)
            pytest.fail(f"localstripe did not start: {errors[-2000:]}")
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with requests.get(f"{url}/v1/customers", auth=(SECRET_KEY, ""), timeout=2) as answer:
                if answer.status_code == 200:
                    return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"localstripe did not answer at {url}")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _fresh_localstripe(localstripe: str) -> None:
    with requests.delete(f"{localstripe}/_config/data", timeout=5) as answer:
        assert answer.status_code == 200


def stripe_config(api_base: str) -> dict[str, Any]:
    return {
        "SUBSCRIPTIONS_STRIPE_SECRET_KEY": SECRET_KEY,
        "SUBSCRIPTIONS_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SUBSCRIPTIONS_STRIPE_API_BASE": api_base,
    }


@pytest.fixture
def app_config(localstripe: str) -> dict[str, Any]:
    """The root ``app`` fixture's settings: Stripe's keys and localstripe's address."""
    return stripe_config(localstripe)


@pytest.fixture(scope="session")
def _stripe_table(database_url: str) -> None:
    """The adapter creates no table when the app starts: the tests make it, once."""
    engine = sa.create_engine(database_url)
    stripe_metadata.create_all(engine)
    engine.dispose()


@pytest.fixture
def gateway(database_url: str, _stripe_table: None) -> Iterator[LocalStripeGateway]:
    """The Stripe adapter on the billing database (the root fixtures' ``gateway``)."""
    yield LocalStripeGateway()
    _empty_requests(database_url)


def _empty_requests(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in stripe_metadata.sorted_tables:
            if sa.inspect(conn).has_table(table.name):
                conn.execute(table.delete())
    engine.dispose()
