"""Sandbox Pay's own schema history: its tables, on its own database and version table.

Sandbox Pay stands in for a remote payment service, so its storage is not the host's: it
may be another database altogether (its own SQLite file by default in the example app and
the tests), and a host's migration chain never includes it. ``flask subscriptions db
upgrade`` applies it through :meth:`SandboxGateway.upgrade_storage` when the app uses it.
"""

from __future__ import annotations

from pathlib import Path

from ....migrations import History

__all__ = ["SANDBOX"]

#: Its own version table: on PostgreSQL it shares the host's database in the example app.
SANDBOX = History(
    versions=str(Path(__file__).with_name("versions")),
    branch="sandbox_pay",
    table_prefix="sandbox_",
    version_table="sandbox_alembic_version",
)
