"""Fixtures: ``app``, ``db``, ``clock``, ``outbox``, ``gateway``, ``client`` and people.

The database comes from ``TEST_DATABASE_URL`` (a temporary SQLite file when unset), so the
same suite runs on SQLite and on PostgreSQL. Tables are created once per run and emptied
after each test, which also lets tests run real concurrent processes against them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, delete, event, select, text

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
from flask_subscriptions.models import OutboxMessage
from flask_subscriptions.models import metadata as billing_metadata

from .hosts import Team, User, create_host
from .hosts import db as host_db

CI = os.environ.get("CI") == "true"
T = TypeVar("T")
START = datetime(2026, 3, 17, 12, tzinfo=UTC)


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"billing database: {_redact(os.environ.get('TEST_DATABASE_URL', 'temporary SQLite file'))}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A ``postgres_only`` test is about something only PostgreSQL can do (two writers
    committing at once): on SQLite it does not apply, so it is deselected, not skipped, and
    the PostgreSQL pass (required in CI) runs it. A ``sqlite_only`` one is about SQLite's
    own engine (its planner, counted in its virtual-machine steps): the SQLite pass runs it."""
    other = (
        "sqlite_only"
        if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
        else "postgres_only"
    )
    chosen = [item for item in items if item.get_closest_marker(other) is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen


def _redact(url: str) -> str:
    return re.sub(r"//([^:@/]+):[^@/]+@", r"//\1:***@", url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'billing.sqlite'}"
    _fresh_tables(url, host_db.metadata, billing_metadata)
    return url


@pytest.fixture(scope="session")
def sandbox_url(database_url: str) -> str:
    """Sandbox Pay's own storage: its own file on SQLite, as a remote service would have;
    on PostgreSQL the same database (its ``sandbox_*`` tables), as the example app does."""
    url = database_url
    if url.startswith("sqlite"):
        url = url.replace("billing.sqlite", "sandbox-pay.sqlite")
    _fresh_tables(url, sandbox_metadata)
    return url


def _fresh_tables(url: str, *all_metadata: Any) -> None:
    engine = create_engine(url)
    for metadata in all_metadata:
        metadata.drop_all(engine)
    for metadata in all_metadata:
        metadata.create_all(engine)
    engine.dispose()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def gateway(sandbox_url: str, clock: FrozenClock) -> SandboxGateway:
    return SandboxGateway(sandbox_url, today=lambda: clock.now().date())


def _empty_tables(url: str, *all_metadata: Any) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # A connection a test left inside a transaction would make TRUNCATE wait forever.
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND pid <> pg_backend_pid() AND "
                    "state LIKE 'idle in transaction%'"
                )
            )
            names = [t.name for m in all_metadata for t in m.sorted_tables]
            connection.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for metadata in all_metadata:
                for table in reversed(metadata.sorted_tables):
                    connection.execute(delete(table))
    engine.dispose()


def _make(
    database_url: str,
    sandbox_url: str,
    clock: FrozenClock,
    gateway: SandboxGateway,
    payer: str,
    config: dict[str, Any],
) -> Iterator[Flask]:
    app, _ = create_host(database_url, clock, gateway, payer=payer, **config)
    with app.app_context():
        yield app
        host_db.session.remove()
        gateway.engine().dispose()
        for engine in host_db.engines.values():
            engine.dispose()
    _empty_tables(database_url, billing_metadata, host_db.metadata)
    _empty_tables(sandbox_url, sandbox_metadata)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a module to start the host with other settings."""
    return {}


@pytest.fixture
def app(
    database_url: str,
    sandbox_url: str,
    clock: FrozenClock,
    gateway: SandboxGateway,
    app_config: dict[str, Any],
) -> Iterator[Flask]:
    """A host whose payer is the signed-in user, with an app context pushed."""
    yield from _make(database_url, sandbox_url, clock, gateway, "user", app_config)


@pytest.fixture
def team_app(
    database_url: str,
    sandbox_url: str,
    clock: FrozenClock,
    gateway: SandboxGateway,
    app_config: dict[str, Any],
) -> Iterator[Flask]:
    """A host whose payer is a team with several owners."""
    yield from _make(database_url, sandbox_url, clock, gateway, "team", app_config)


@pytest.fixture
def db(app: Flask) -> Any:
    return host_db


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def alice(app: Flask) -> User:
    user = User(name="alice", email="alice@example.com")
    host_db.session.add(user)
    host_db.session.commit()
    return user


@pytest.fixture
def acme(team_app: Flask) -> Team:
    team = Team(name="Acme")
    team.members = [
        User(name="olivia", email="olivia@acme.example", role="owner"),
        User(name="oscar", email="oscar@acme.example", role="owner"),
        User(name="mike", email="mike@acme.example", role="member"),
    ]
    host_db.session.add(team)
    host_db.session.commit()
    return team


class Outbox:
    """The billing e-mails recorded so far, as a test reads them."""

    def all(self) -> list[OutboxMessage]:
        return list(host_db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def kinds(self) -> list[str]:
        return [m.kind for m in self.all()]

    def of_kind(self, kind: str) -> list[OutboxMessage]:
        return [m for m in self.all() if m.kind == kind]


@pytest.fixture
def outbox() -> Outbox:
    """Ask for it after ``app`` or ``team_app``: it reads the host the test runs."""
    return Outbox()


SAMPLE_CATALOG = Path(__file__).resolve().parents[1] / "example_app" / "catalog.toml"


@pytest.fixture
def catalog() -> None:
    """The SPEC's sample catalog, loaded through the CLI as a host would, into the host the
    test runs (ask for it after ``app`` or ``team_app``)."""
    from flask import current_app

    result = current_app.test_cli_runner().invoke(
        args=["subscriptions", "catalog", "load", str(SAMPLE_CATALOG)]
    )
    assert result.exit_code == 0, result.output


def sign_in(client: FlaskClient, user: User) -> None:
    assert client.post(f"/test-login/{user.id}").status_code == 200


def signed_in(app: Flask, user: User) -> FlaskClient:
    """A browser of its own, signed in as ``user``."""
    client = app.test_client()
    sign_in(client, user)
    return client


def at_noon(clock: FrozenClock, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def snapshot(gateway: SandboxGateway) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every billing and Sandbox Pay table: "nothing changed" means equal."""
    host_db.session.commit()
    rows: dict[str, list[tuple[str, ...]]] = {}
    with host_db.engine.connect() as conn:
        for table in billing_metadata.sorted_tables:
            rows[table.name] = sorted(tuple(map(repr, r)) for r in conn.execute(select(table)))
    with gateway.engine().connect() as conn:
        for table in sandbox_metadata.sorted_tables:
            rows[table.name] = sorted(tuple(map(repr, r)) for r in conn.execute(select(table)))
    return rows


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


def at_once(app: Flask, workers: int, work: Callable[[int], T]) -> list[T]:
    """``work(0) … work(workers - 1)``, each in its own thread and app context, released
    together by a barrier; their answers in worker order. A worker's exception is raised."""
    barrier = threading.Barrier(workers, timeout=60)
    answers: list[T | None] = [None] * workers
    errors: list[BaseException] = []

    def worker(me: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                answers[me] = work(me)
            except BaseException as exc:  # raised below, in the test's thread
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(me,)) for me in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return cast(list[T], answers)


@contextmanager
def statements(engine: Engine | None = None) -> Iterator[list[str]]:
    """Every statement sent to the database (the host's by default) while inside, SQLite's
    BEGIN included: what a page or a job costs, counted."""
    engine = engine or host_db.engine
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)
