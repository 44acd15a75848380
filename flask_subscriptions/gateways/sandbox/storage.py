"""Sandbox Pay's own storage: its tables, on its own ``MetaData`` and engine.

Like a real service's database, nothing here is reachable through the host's
session. Cards hold a token, brand, last 4 digits, expiry and test behaviour,
never a card number or security code (R-SEC-1). Every idempotency key is unique
in its table, so worker processes sharing the database record one row per key.

On SQLite, write transactions start with ``BEGIN IMMEDIATE`` (reads with a plain
``BEGIN``): writers queue on the busy timeout instead of deadlocking when two
readers both try to write.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

__all__ = [
    "SandboxCharge",
    "SetupSession",
    "cards",
    "charges",
    "create_tables",
    "customers",
    "make_engine",
    "metadata",
    "payouts",
    "refunds",
    "setup_sessions",
]

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()

metadata = sa.MetaData()


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(40), primary_key=True)


def _key() -> sa.Column[str]:
    return sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True)


def _at(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


customers = sa.Table(
    "sandbox_customers", metadata, _id(),
    sa.Column("account_id", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320)),
    _at("created_at"),
)  # fmt: skip
setup_sessions = sa.Table(
    "sandbox_setup_sessions", metadata, _id(),
    sa.Column("customer_id", sa.ForeignKey("sandbox_customers.id"), nullable=False),
    sa.Column("return_url", sa.Text, nullable=False),
    sa.Column("card_token", sa.String(40)),
    _at("created_at"), _at("completed_at", nullable=True),
)  # fmt: skip
cards = sa.Table(
    "sandbox_cards", metadata,
    sa.Column("token", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.ForeignKey("sandbox_customers.id"), nullable=False, index=True),
    sa.Column("brand", sa.String(20), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("exp_month", sa.Integer, nullable=False),
    sa.Column("exp_year", sa.Integer, nullable=False),
    sa.Column("behaviour", sa.String(30), nullable=False),
    sa.Column("charge_attempts", sa.Integer, nullable=False, default=0),
    _at("created_at"), _at("removed_at", nullable=True),
)  # fmt: skip
charges = sa.Table(
    "sandbox_charges", metadata, _id(), _key(),
    sa.Column("customer", sa.String(40), nullable=False, index=True),
    sa.Column("payment_method", sa.String(40), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("off_session", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("decline_kind", sa.String(10)),
    sa.Column("decline_code", sa.String(40)),
    sa.Column("message", sa.Text),
    sa.Column("return_url", sa.Text),
    sa.Column("amount_refunded", sa.BigInteger, nullable=False),
    _at("created_at"), _at("updated_at"),
)  # fmt: skip
refunds = sa.Table(
    "sandbox_refunds", metadata, _id(), _key(),
    sa.Column("charge_id", sa.String(40), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("message", sa.Text),
    _at("created_at"),
)  # fmt: skip
payouts = sa.Table(
    "sandbox_payouts", metadata, _id(), _key(),
    sa.Column("customer", sa.String(40), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("message", sa.Text),
    _at("created_at"),
)  # fmt: skip


@dataclass(frozen=True)
class SandboxCharge:
    """A row of ``sandbox_charges``, for tests and the sandbox's own pages."""

    id: str
    idempotency_key: str
    customer: str
    payment_method: str
    amount: int
    currency: str
    description: str
    off_session: bool
    status: str
    decline_kind: str | None
    decline_code: str | None
    message: str | None
    return_url: str | None
    amount_refunded: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SetupSession:
    id: str
    customer_id: str
    return_url: str
    card_token: str | None


def make_engine(url: str, instance_path: str) -> sa.Engine:
    """The sandbox's engine for ``url``: one per database per process.

    Apps created one after another (tests, app factories) share its pool instead
    of each leaving idle connections behind. In-memory SQLite is never shared.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            return _sqlite_engine(parsed, poolclass=StaticPool)
        if not database.startswith("file:") and not os.path.isabs(database):
            # Flask-SQLAlchemy resolves relative SQLite paths against the instance folder.
            parsed = parsed.set(database=str(Path(instance_path) / database))
    key = parsed.render_as_string(hide_password=False)
    with _engines_lock:
        if key not in _engines:
            if parsed.get_backend_name() == "sqlite":
                _engines[key] = _sqlite_engine(parsed)
            else:
                # A burst of calls (a renewal's hundred charges in flight wake together)
                # queue for ten connections, each held for one short transaction, rather
                # than opening and closing one each beyond the pool: a PostgreSQL connection
                # costs a server process and a handshake (4% of the CPU of 10,000 renewals
                # at 200 ms a charge went to connecting). No ping before each use (7% of
                # that CPU): a connection the server has closed fails one call, which the
                # caller takes for a service that did not answer and settles by its key, as
                # it would a remote one; SQLAlchemy then replaces the pool's connections.
                _engines[key] = sa.create_engine(parsed, pool_size=10, max_overflow=0)
        return _engines[key]


def _sqlite_engine(url: sa.URL, **options: Any) -> sa.Engine:
    connect_args = {"timeout": 30, "check_same_thread": False}
    engine = sa.create_engine(url, connect_args=connect_args, **options)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    # A payment service's own storage: readers never wait for the writer, and a commit
    # costs no fsync of its own (WAL; nothing committed is lost when a process dies).
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front: no deadlock between two readers that
    # both want to write, and the busy timeout applies while waiting for it.
    read_only = conn.get_execution_options().get("sandbox_read_only")
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_tables(engine: sa.Engine) -> None:
    """Create what is missing; safe when several workers start at once."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Workers starting together must not race on CREATE TABLE.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7352114)"))
        metadata.create_all(conn, checkfirst=True)
