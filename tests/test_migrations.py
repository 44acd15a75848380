"""R-OPS-3: the tables ship as an Alembic branch, and the library makes no table at start.

Each test gets an empty database of the run's kind (a new SQLite file; on PostgreSQL a new
database, dropped afterwards), so the shared test database is never migrated in place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.migrations import SANDBOX
from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
from flask_subscriptions.gateways.stripe.storage import metadata as stripe_metadata
from flask_subscriptions.jobs import hold_lease
from flask_subscriptions.migrations import (
    VERSIONS,
    VERSIONS_RESOURCE,
    add_version_location,
    current,
    upgrade,
)
from flask_subscriptions.models import metadata as billing_metadata

from .conftest import START
from .hosts import create_host
from .hosts import db as host_db

HEAD = "subs_0008"
PREVIOUS = "subs_0001"  # the first release's schema: the chain's upgrades start here


def new_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """An empty database of ``base_url``'s kind, and how to drop it."""
    url = sa.make_url(base_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("SQLite databases are new files: use tmp_path")
    name = f"subs_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    url, drop = new_database(database_url)
    yield url
    drop()


@pytest.fixture
def engine(empty_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(empty_url)
    yield engine
    engine.dispose()


def differences(engine: sa.Engine, metadata: Any, prefix: str, version_table: str) -> list[Any]:
    """What Alembic's autogenerate would write to make the database match ``metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": version_table,
                "compare_type": True,
                "compare_server_default": True,
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or str(name).startswith(prefix)
                ),
            },
        )
        return list(compare_metadata(context, metadata))


def test_an_empty_database_upgraded_to_head_matches_the_models_exactly(
    engine: sa.Engine,
) -> None:
    """Ours (the Stripe ledger is in the same branch) and Sandbox Pay's, on their own
    version tables: autogenerate finds nothing to add, drop or alter."""
    assert upgrade(engine) == HEAD
    assert upgrade(engine, SANDBOX) == "sandbox_0001"
    assert (
        differences(engine, [billing_metadata, stripe_metadata], "subs_", "alembic_version") == []
    )
    assert differences(engine, sandbox_metadata, "sandbox_", "sandbox_alembic_version") == []
    assert upgrade(engine) == HEAD  # again: nothing to do
    with engine.connect() as conn:
        assert current(conn) == HEAD and current(conn, SANDBOX) == "sandbox_0001"


#: Columns added to existing tables since the first release, by the revision named.
NEW_COLUMNS = {"subs_billing_profiles": {"entitlements_version", "locale"}}  # subs_0006, subs_0008


def _row_counts(conn: sa.Connection, tables: list[sa.Table]) -> dict[str, list[Any]]:
    """Every row of each table, in the columns the first release had."""
    return {
        t.name: sorted(
            map(
                tuple,
                conn.execute(
                    sa.select(*(c for c in t.c if c.name not in NEW_COLUMNS.get(t.name, ())))
                ),
            )
        )
        for t in tables
    }


def test_a_database_at_the_previous_revision_keeps_every_row_R_OPS_3(engine: sa.Engine) -> None:
    """The first release's schema, with a renewal in flight and an e-mail waiting, upgrades
    to head: every row is still there, unchanged, and the new index serves the claim."""
    upgrade(engine, target=PREVIOUS)
    now = datetime(2026, 3, 17, 12)
    t = {name: billing_metadata.tables[name] for name in billing_metadata.tables}
    with engine.begin() as conn:
        conn.execute(t["subs_plans"].insert(), [
            {"id": 1, "code": "small", "name": "Small", "description": "", "rank": 1,
             "is_free": False, "features": ["reports"], "limits": {"mau": 1000},
             "addon_codes": [], "active": True, "position": 1},
        ])  # fmt: skip
        conn.execute(t["subs_subscriptions"].insert(), [
            {"id": 1, "account_id": "7", "live_account_id": "7", "plan_id": 1,
             "interval": "month", "currency": "USD", "state": "active", "auto_renew": True,
             "anchor_date": date(2026, 2, 17), "current_term_start": date(2026, 2, 17),
             "current_term_end": date(2026, 3, 17), "coupon_terms_used": 0, "version": 1,
             "created_at": now},
        ])  # fmt: skip
        conn.execute(t["subs_invoices"].insert(), [
            {"id": 1, "account_id": "7", "subscription_id": 1, "kind": "renewal",
             "status": "open", "currency": "USD", "total": 10000, "balance_applied": 0,
             "amount_due": 10000, "created_at": now},
        ])  # fmt: skip
        conn.execute(t["subs_payments"].insert(), [
            {"id": 1, "idempotency_key": "renewal:1:1", "account_id": "7", "invoice_id": 1,
             "purpose": "charge", "attempt": 1, "gateway": "sandbox", "amount": 10000,
             "currency": "USD", "status": "unknown", "created_at": now, "updated_at": now},
        ])  # fmt: skip
        conn.execute(t["subs_outbox"].insert(), [
            {"id": 1, "dedupe_key": "receipt:1", "account_id": "7", "kind": "renewal_receipt",
             "recipients": ["a@example.com"], "subject": "Receipt", "text_body": "Paid.",
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now},
        ])  # fmt: skip
        conn.execute(  # written as the first release wrote it: none of today's columns
            sa.text(
                "INSERT INTO subs_billing_profiles (id, account_id, created_at) "
                "VALUES (1, '7', :now)"
            ),
            {"now": now},
        )
        conn.execute(stripe_metadata.tables["subs_stripe_requests"].insert(), [
            {"idempotency_key": "renewal:1:1", "kind": "charge", "fingerprint": "f",
             "object_id": "pi_1", "claimed_at": now},
        ])  # fmt: skip
    tables = [*billing_metadata.sorted_tables, *stripe_metadata.sorted_tables]
    new_since = {"subs_job_leases", "subs_audit_entries", "subs_catalog_version"}  # 0003–0005
    tables = [table for table in tables if table.name not in new_since]
    with engine.connect() as conn:
        before = _row_counts(conn, tables)
    assert sum(map(len, before.values())) == 7

    assert upgrade(engine) == HEAD
    with engine.connect() as conn:
        assert _row_counts(conn, tables) == before
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("subs_payments")}
        assert "ix_subs_payments_open" in indexes
        profile = t["subs_billing_profiles"]
        assert conn.execute(sa.select(profile.c.entitlements_version)).scalar() == 0
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t["subs_job_leases"])).scalar() == 0
        )
    assert (
        differences(engine, [billing_metadata, stripe_metadata], "subs_", "alembic_version") == []
    )


def _empty_host(url: str, tmp_path: Path, **config: Any) -> Flask:
    gateway = SandboxGateway(url, today=lambda: START.date())
    app, _ = create_host(url, FrozenClock(START), gateway, payer="user", **config)
    return app


def _dispose(app: Flask) -> None:
    with app.app_context():
        host_db.session.remove()
        app.extensions["sandbox_pay"].engine.dispose()
        for engine in host_db.engines.values():
            engine.dispose()


def test_no_table_is_made_at_import_or_when_the_app_starts(
    empty_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    """Workers starting together raced on CREATE TABLE: now only `db upgrade` makes them,
    ours and Sandbox Pay's, and running it again changes nothing."""
    app = _empty_host(empty_url, tmp_path)
    try:
        assert sa.inspect(engine).get_table_names() == []
        runner = app.test_cli_runner()
        for _ in range(2):
            done = runner.invoke(args=["subscriptions", "db", "upgrade"])
            assert done.exit_code == 0, done.output
            assert f"Billing tables at revision {HEAD}." in done.output
            assert "SandboxGateway storage ready (sandbox_0001)." in done.output
        names = set(sa.inspect(engine).get_table_names())
        assert set(billing_metadata.tables) | set(sandbox_metadata.tables) <= names
        assert not any(name.startswith("host_") for name in names)  # the host's business
    finally:
        _dispose(app)


def test_db_upgrade_refuses_a_database_whose_migrations_are_the_hosts(
    empty_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    """A version table naming the host's revision, or tables `db create` made: told what to
    do, and nothing is touched."""
    app = _empty_host(empty_url, tmp_path)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
            )
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('host_0007')")
        done = app.test_cli_runner().invoke(args=["subscriptions", "db", "upgrade"])
        assert done.exit_code == 1
        assert "holds revision host_0007, which is not ours" in done.output
        assert "flask db upgrade heads" in done.output
        assert sa.inspect(engine).get_table_names() == ["alembic_version"]

        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        created = app.test_cli_runner().invoke(args=["subscriptions", "db", "create"])
        assert created.exit_code == 0, created.output
        done = app.test_cli_runner().invoke(args=["subscriptions", "db", "upgrade"])
        assert done.exit_code == 1 and "made by `db create`" in done.output
    finally:
        _dispose(app)


ENV_PY = """
from alembic import context
from sqlalchemy import create_engine

from flask_subscriptions import metadata as billing

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=[billing])
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""


def test_a_hosts_own_alembic_runs_our_branch_beside_its_own(
    empty_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    """The README's bare-Alembic set-up: the host's own revisions on their own base, ours
    through ``version_locations``, one ``upgrade heads``; then our command steps aside."""
    here = tmp_path / "migrations"
    (here / "versions").mkdir(parents=True)
    (here / "env.py").write_text(ENV_PY)
    (here / "versions" / "host_0001.py").write_text(
        'revision = "host_0001"\ndown_revision = None\nbranch_labels = ("app",)\n'
        "depends_on = None\n\nfrom alembic import op\nimport sqlalchemy as sa\n\n\n"
        "def upgrade():\n    op.create_table('host_users', sa.Column('id', sa.Integer,"
        " primary_key=True))\n\n\ndef downgrade():\n    op.drop_table('host_users')\n"
    )
    config = Config()
    config.set_main_option("script_location", str(here))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", f"{here / 'versions'}")
    config.set_main_option("sqlalchemy.url", empty_url)
    add_version_location(config)  # what a Flask-Migrate host's @migrate.configure calls
    assert config.get_version_locations_list() == [str(here / "versions"), VERSIONS]

    command.upgrade(config, "heads")
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    assert heads == {"host_0001", HEAD}
    assert (
        differences(engine, [billing_metadata, stripe_metadata], "subs_", "alembic_version") == []
    )

    # The same from an alembic.ini that names our revisions as a package resource.
    config.set_main_option("path_separator", "space")
    config.set_main_option("version_locations", f"{here / 'versions'} {VERSIONS_RESOURCE}")
    command.upgrade(config, "heads")  # nothing to do, and nothing unknown


def test_one_process_at_a_time_runs_the_in_app_jobs_R_OPS_4(
    app: Flask, database_url: str, clock: FrozenClock, gateway: SandboxGateway
) -> None:
    """Two app instances on one database (two web workers): the first to tick holds the
    scheduler lease and renews it; the other skips until the lease has run out."""
    other, _ = create_host(database_url, clock, gateway, payer="user")
    now = datetime.now(UTC).replace(tzinfo=None)
    seconds = 180
    assert hold_lease("worker-1", seconds, now=now)
    with other.app_context():
        assert not hold_lease("worker-2", seconds, now=now + timedelta(seconds=60))
    assert hold_lease("worker-1", seconds, now=now + timedelta(seconds=61))  # renewed
    with other.app_context():
        assert not hold_lease("worker-2", seconds, now=now + timedelta(seconds=240))
        # worker-1 died after its last tick: its lease runs out, worker-2 takes over
        assert hold_lease("worker-2", seconds, now=now + timedelta(seconds=242))
    assert not hold_lease("worker-1", seconds, now=now + timedelta(seconds=243))
    with other.app_context():
        for engine in host_db.engines.values():
            engine.dispose()
