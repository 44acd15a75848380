"""Feature checks that cost nothing when warm (R-USE-3): counted statements, the versions every
changing event bumps, and a change made by another process seen once the bound has passed.

The cache's clock is a fake monotonic clock here, so "within the TTL" and "after it" are
exact, not timed.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_subscriptions import FrozenClock, get_state, requires_feature
from flask_subscriptions.core.catalog import parse_catalog
from flask_subscriptions.models import Subscription
from flask_subscriptions.services.audit import Actor
from flask_subscriptions.services.catalog import load_catalog
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.entitlement_cache import EntitlementCache
from flask_subscriptions.services.entitlements import read_versions
from flask_subscriptions.services.licenses import update_license
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.settlement import settle, settlement_for
from flask_subscriptions.services.support_licenses import end_license, give_days
from flask_subscriptions.services.usage import import_usage

from .conftest import SAMPLE_CATALOG, at_noon, signed_in, statements
from .factories import add_card, subscribe
from .flows import FIRST_CHARGE_ONLY, VISA
from .hosts import User, db

ROOT = Path(__file__).resolve().parents[1]
TTL = 2.0


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SUBSCRIPTIONS_ENTITLEMENTS_TTL": TTL}


@pytest.fixture
def ticks(app: Flask) -> FakeMonotonic:
    fake = FakeMonotonic()
    cache = get_state(app).entitlement_cache
    assert cache is not None
    cache.clock = fake
    return fake


@pytest.fixture
def views(app: Flask) -> None:
    @app.get("/ops")
    @requires_feature("operation")
    def ops() -> str:
        return "operation console"


def billing_statements(client: FlaskClient, path: str = "/ops") -> tuple[int, list[str]]:
    """The page's status and the statements it sent about billing (the host's own user
    lookup is not ours to count)."""
    db.session.commit()
    with statements() as sent:
        page = client.get(path)
    return page.status_code, [s for s in sent if "subs_" in s]


# --- statements: warm none, cold one, stale one -------------------------------------------


def test_a_warm_check_sends_no_statement_a_cold_one_sends_one_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None, ticks: FakeMonotonic
) -> None:
    subscribe(alice, "small", addons=("operation",))
    client = signed_in(app, alice)
    status, cold = billing_statements(client)
    assert status == 200 and len(cold) == 1, cold
    for _ in range(3):
        ticks.now += TTL / 4
        status, warm = billing_statements(client)
        assert status == 200 and warm == []
    ticks.now += TTL  # stale: one cheap read of the versions, then warm again
    status, stale = billing_statements(client)
    assert status == 200 and len(stale) == 1 and "subs_plans" not in stale[0], stale
    status, warm = billing_statements(client)
    assert status == 200 and warm == []


def test_a_ttl_of_zero_asks_the_versions_on_every_request_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None, ticks: FakeMonotonic
) -> None:
    get_state(app).entitlement_cache.ttl = 0  # type: ignore[union-attr]
    subscribe(alice, "small", addons=("operation",))
    client = signed_in(app, alice)
    assert len(billing_statements(client)[1]) == 1
    assert len(billing_statements(client)[1]) == 1


def test_a_new_billing_day_computes_again_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None, ticks: FakeMonotonic, clock: FrozenClock
) -> None:
    """Entitlements depend on the date (an add-on removed from tomorrow): a new day is cold."""
    subscribe(alice, "small", addons=("operation",))
    client = signed_in(app, alice)
    billing_statements(client)
    assert billing_statements(client)[1] == []
    clock.set(clock.now() + timedelta(days=1))
    assert len(billing_statements(client)[1]) == 1


def test_the_cache_keeps_at_most_its_size_R_USE_3() -> None:
    cache = EntitlementCache(ttl=1, size=2)
    entry: Any = object()
    for n in range(5):
        cache._keep((str(n), "en_US"), entry, cache._generation)
    assert len(cache) == 2
    cache.forget(["4"])
    assert len(cache) == 1


# --- every event that changes entitlements bumps the versions (R-USE-3) ---------------------

Step = Callable[[User, FrozenClock], None]


def _nothing(_alice: User, _clock: FrozenClock) -> None:
    pass


def _small(alice: User, _clock: FrozenClock) -> None:
    subscribe(alice, "small", addons=("operation",))


def _purchase(alice: User, _clock: FrozenClock) -> None:
    subscribe(alice, "small")


def _change(alice: User, _clock: FrozenClock) -> None:
    sub_id = _live_id()
    request = ChangeRequest("medium", "month", ("operation",))
    shown = quote_for(alice, sub_id, request)
    card = add_card(alice, VISA)
    apply_change(alice, sub_id, request, shown.quote.fingerprint, card.id)


def _small_not_renewing(alice: User, clock: FrozenClock) -> None:
    _small(alice, clock)
    update_license(alice, _live_id(), auto_renew=False, renew_with=None)


def _renew(_alice: User, clock: FrozenClock) -> None:
    at_noon(clock, date(2026, 4, 17))
    renew_due()


def _failing(alice: User, _clock: FrozenClock) -> None:
    subscribe(alice, "small", addons=("operation",), card=FIRST_CHARGE_ONLY)


def _failed(alice: User, clock: FrozenClock) -> None:
    _failing(alice, clock)
    _renew(alice, clock)


def _restrict(_alice: User, clock: FrozenClock) -> None:
    at_noon(clock, date(2026, 4, 24))
    run_dunning()


def _restricted(alice: User, clock: FrozenClock) -> None:
    _failed(alice, clock)
    _restrict(alice, clock)


def _settle(alice: User, _clock: FrozenClock) -> None:
    method = add_card(alice, VISA)
    quote = settlement_for(alice.billing_id).quote
    assert quote is not None
    settle(alice, quote.fingerprint, method.id)


def _report(alice: User, _clock: FrozenClock) -> None:
    get_state().extension.report_usage(alice, "mau", 1240)


def _import(alice: User, _clock: FrozenClock) -> None:
    import_usage([["account_id", "metric", "value"], [alice.billing_id, "mau", "1240"]])


def _give_days(alice: User, _clock: FrozenClock) -> None:
    give_days(Actor("sam"), "k1", alice.billing_id, _live_id(), 3, "goodwill")


def _end(alice: User, _clock: FrozenClock) -> None:
    end_license(Actor("sam"), "k2", alice.billing_id, _live_id(), "asked to")


def _new_catalog(_alice: User, _clock: FrozenClock) -> None:
    text = SAMPLE_CATALOG.read_text(encoding="utf-8")
    data = tomllib.loads(text.replace('name = "Small"', 'name = "Small 2"', 1))
    load_catalog(parse_catalog(data))


def _live_id() -> int:
    found = db.session.scalar(select(Subscription.id).where(Subscription.state == "active"))
    assert found is not None
    return found


#: event → (what leads to it, the event itself)
EVENTS: dict[str, tuple[Step, Step]] = {
    "purchase": (_nothing, _purchase),
    "plan change": (_small, _change),
    "renewal": (_small, _renew),
    "expiry": (_small_not_renewing, _renew),
    "payment failed": (_failing, _renew),
    "restriction": (_failed, _restrict),
    "settlement": (_restricted, _settle),
    "usage report": (_small, _report),
    "usage import": (_small, _import),
    "support gives days": (_restricted, _give_days),
    "support ends the license": (_small, _end),
    "new catalog": (_small, _new_catalog),
}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_event_that_changes_entitlements_bumps_their_versions_R_USE_3(
    app: Flask, alice: User, catalog: None, clock: FrozenClock, ticks: FakeMonotonic, name: str
) -> None:
    """Another process sees the event (the versions differ); this one forgets at once."""
    cache = get_state(app).entitlement_cache
    assert cache is not None
    lead, act = EVENTS[name]
    lead(alice, clock)
    db.session.commit()
    before = read_versions(alice.billing_id)
    db.session.commit()
    with app.test_request_context():
        cache.entitlements(alice.billing_id)
    assert len(cache) == 1
    act(alice, clock)
    db.session.commit()
    assert read_versions(alice.billing_id) != before, name
    assert len(cache) == 0, "this process still keeps what the event changed"


# --- another process (R-USE-3) --------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.slow
def test_a_change_made_by_another_process_is_seen_once_the_ttl_has_passed_R_USE_3(
    app: Flask,
    views: None,
    alice: User,
    catalog: None,
    ticks: FakeMonotonic,
    database_url: str,
    sandbox_url: str,
    tmp_path: Path,
) -> None:
    """A usage report imported by ``flask subscriptions usage import`` in a process of its
    own restricts the account: this process, warm, still answers from memory within the
    TTL (no statement), and refuses on the first request after it."""
    subscribe(alice, "small", addons=("operation",))
    client = signed_in(app, alice)
    assert billing_statements(client)[0] == 200  # cold: kept now
    report = tmp_path / "usage.csv"
    report.write_text(f"{alice.billing_id},mau,1240\n", encoding="utf-8")
    now = datetime(2026, 3, 17, 12, tzinfo=UTC).isoformat()
    env = {
        **os.environ,
        "TEST_DATABASE_URL": database_url,
        "TEST_SANDBOX_URL": sandbox_url,
        "TEST_NOW": now,
        "PYTHONPATH": str(ROOT),
    }
    args = ["-m", "flask", "--app", "tests.process_host", "subscriptions", "usage", "import"]
    done = subprocess.run(
        [sys.executable, *args, str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ticks.now += TTL / 2
    status, statements = billing_statements(client)
    assert (status, statements) == (200, [])  # warm: within the bound, from memory
    ticks.now += TTL / 2
    refused = client.get("/ops")
    assert refused.status_code == 402
    assert "MAU 1,240 is over the Small plan's limit of 1,000." in html.unescape(refused.text)
