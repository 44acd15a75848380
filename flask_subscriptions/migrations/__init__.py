"""Our schema history (R-OPS-3): an Alembic branch of its own, shipped inside the package.

The revisions live in ``flask_subscriptions/migrations/versions`` (Alembic resource
``flask_subscriptions:migrations/versions``), form one branch labelled ``subscriptions``
and create every ``subs_*`` table, the Stripe adapter's ``subs_stripe_requests``
included: that table lives in the billing database, is empty unless Stripe is used, and
a host that switches gateway then needs no migration step of its own.

A host applies them one of two ways:

* with its own Flask-Migrate / Alembic: add :data:`VERSIONS` to ``version_locations``
  (:func:`add_version_location` does it for Flask-Migrate) and ``upgrade heads``;
* without migrations of its own: ``flask subscriptions db upgrade`` (:func:`upgrade`).

Both record our revisions in the same ``alembic_version`` table, so a host may start with
the command and adopt Flask-Migrate later without stamping anything.

Sandbox Pay, a stand-in for a remote payment service, keeps its own history on its own
database (``gateways/sandbox/migrations``, its own version table): it is never part of a
host's chain. This module runs either with Alembic's API directly, so neither needs an
``env.py`` of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = [
    "BILLING",
    "BRANCH",
    "VERSIONS",
    "VERSIONS_RESOURCE",
    "History",
    "MigrationsError",
    "add_version_location",
    "current",
    "upgrade",
]

#: The branch label of our revisions: ``flask db upgrade subscriptions@head``.
BRANCH = "subscriptions"
#: Where our revision files are, as a path (Flask-Migrate, ``Config.set_main_option``)…
VERSIONS = str(Path(__file__).with_name("versions"))
#: … and as an Alembic resource, for an ``alembic.ini`` that must not name site-packages.
VERSIONS_RESOURCE = "flask_subscriptions:migrations/versions"


class MigrationsError(RuntimeError):
    """The database's recorded revisions are not ours to move (the host's own chain)."""


@dataclass(frozen=True)
class History:
    """One schema history: where its revision files are, its branch and version table."""

    versions: str
    branch: str
    #: What every table of this history is named like (to tell a ``db create`` database).
    table_prefix: str
    version_table: str = "alembic_version"

    def script(self) -> ScriptDirectory:
        config = Config()
        config.set_main_option("path_separator", "os")
        config.set_main_option("script_location", str(Path(self.versions).parent))
        config.set_main_option("version_locations", self.versions)
        return ScriptDirectory.from_config(config)


BILLING = History(VERSIONS, BRANCH, "subs_")


def upgrade(engine: sa.Engine, history: History = BILLING, target: str | None = None) -> str:
    """Bring ``engine``'s database to ``target`` (default: the branch's head); the revision
    it is at afterwards. Safe when several processes run it at once on PostgreSQL (they
    queue on an advisory lock, and the later ones find nothing to do)."""
    script = history.script()
    destination = target or f"{history.branch}@head"

    def steps(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs(destination, revision)

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two deploys migrating at once must not both CREATE TABLE (pg_type races).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7352115)"))
        _refuse_foreign_revisions(connection, history, script)
        with EnvironmentContext(Config(), script, fn=steps, destination_rev=destination) as env:
            env.configure(
                connection=connection,
                version_table=history.version_table,
            )
            with env.begin_transaction():
                env.run_migrations()
        return current(connection, history) or ""


def current(connection: sa.Connection, history: History = BILLING) -> str | None:
    """The revision of ``history`` the database is at (None: none of it applied)."""
    context = MigrationContext.configure(connection, opts={"version_table": history.version_table})
    ours = _revisions(history.script())
    heads = [head for head in context.get_current_heads() if head in ours]
    return heads[0] if heads else None


def add_version_location(config: Config) -> Config:
    """For Flask-Migrate's ``@migrate.configure``: our revisions beside the host's own.

    Setting ``version_locations`` replaces Alembic's default ``<script_location>/versions``,
    so the host's own directory is kept in the list explicitly.
    """
    locations: Sequence[str] = config.get_version_locations_list() or [
        str(Path(config.get_main_option("script_location") or "migrations") / "versions")
    ]
    if VERSIONS not in locations and VERSIONS_RESOURCE not in locations:
        locations = [*locations, VERSIONS]
    # One location a line: a host's own list may hold ``package:path`` resources, which
    # the POSIX "os" separator (":") would cut in two.
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", "\n".join(locations))
    return config


def _revisions(script: ScriptDirectory) -> set[str]:
    return {revision.revision for revision in script.walk_revisions()}


def _refuse_foreign_revisions(
    connection: sa.Connection, history: History, script: ScriptDirectory
) -> None:
    """The version table names a revision we do not ship: the host's own migrations run
    ours too (their version location lists ours), so ours must move with theirs."""
    context = MigrationContext.configure(connection, opts={"version_table": history.version_table})
    heads = set(context.get_current_heads())
    foreign = sorted(heads - _revisions(script))
    if not heads:
        tables = sa.inspect(connection).get_table_names()
        made = sorted(t for t in tables if t.startswith(history.table_prefix))
        if made:
            raise MigrationsError(
                f"Table {made[0]} exists but {history.version_table} records no revision: "
                "the tables were made by `db create`, which is for development. Start from "
                "an empty database, or, if they match the latest release exactly, record it "
                f"with `alembic stamp {history.branch}@head`."
            )
    if foreign:
        raise MigrationsError(
            f"{history.version_table} holds revision {foreign[0]}, which is not ours: this "
            "database's migrations are the host's own. Add our version location to them and "
            "run `flask db upgrade heads` (see the README, 'Database and migrations')."
        )
