"""N due subscriptions, fast: one account buys through the real services, then every row
it has is copied N - 1 times with SQLAlchemy Core (for ``bench/renewals.py``).

Copying by columns, not by a list of fields, keeps it working when a column is added:
integer keys are shifted, references to copied rows follow them, account ids follow the
host user, and strings that must stay unique (card tokens, Sandbox Pay customer and charge
ids, idempotency keys, invoice numbers, dedupe keys, …) get a suffix wherever they appear,
so a copied card is charged by Sandbox Pay as its own customer's card.
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import TopologicalSorter
from typing import Any

import sqlalchemy as sa

#: Shared by every account: not copied.
CATALOG_TABLES = {
    "subs_plans",
    "subs_addons",
    "subs_prices",
    "subs_plan_change_options",
    "subs_coupons",
}
ACCOUNT_COLUMNS = {"account_id", "live_account_id"}
USERS_TABLE = "host_users"
CHUNK = 1000  # accounts per executemany


def copy_accounts(copies: int, sources: list[tuple[sa.Engine, list[sa.Table]]]) -> None:
    """Copy every row of the only account ``copies`` times, each copy a new account.

    ``sources`` are the engines and their tables (billing and Sandbox Pay may be two
    databases); the host's users table must be among them.
    """
    rows: dict[sa.Table, list[dict[str, Any]]] = {}
    for engine, tables in sources:
        with engine.connect() as conn:
            for table in tables:
                rows[table] = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
            conn.rollback()
    stride = {t: max((r["id"] for r in rs), default=0) for t, rs in rows.items() if _int_id(t)}
    tokens = {
        value
        for table, table_rows in rows.items()
        for column in table.columns
        if _identifies(table, column)
        for row in table_rows
        if isinstance(value := row[column.key], str)
    }
    users = next(t for t in rows if t.name == USERS_TABLE)
    shift = _Shift(stride, tokens, users)
    order = list(TopologicalSorter(_dependencies(list(rows))).static_order())
    for engine, tables in sources:
        with engine.begin() as conn:
            for start in range(1, copies + 1, CHUNK):
                batch = range(start, min(start + CHUNK, copies + 1))
                for table in (t for t in order if t in tables and rows[t]):
                    copied = [shift.row(table, row, copy) for copy in batch for row in rows[table]]
                    conn.execute(table.insert(), copied)
            if conn.dialect.name == "postgresql":  # explicit ids did not move the sequences
                for table in (t for t in tables if t in stride):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT max(id) FROM {table.name}))"
                        )
                    )


@dataclass(frozen=True)
class _Shift:
    stride: dict[sa.Table, int]
    tokens: set[str]
    users: sa.Table

    def row(self, table: sa.Table, row: dict[str, Any], copy: int) -> dict[str, Any]:
        return {c.key: self.value(table, c, row[c.key], copy) for c in table.columns}

    def value(self, table: sa.Table, column: sa.Column[Any], value: Any, copy: int) -> Any:
        if value is None:
            return None
        if column.primary_key and table in self.stride:
            return value + copy * self.stride[table]
        target = next((fk.column.table for fk in column.foreign_keys), None)
        if target in self.stride:
            return value + copy * self.stride[target]
        if column.name in ACCOUNT_COLUMNS:
            return str(int(value) + copy * self.stride[self.users])
        if isinstance(value, str) and value in self.tokens:
            return f"{value}.{copy}"
        return value


def _int_id(table: sa.Table) -> bool:
    keys = list(table.primary_key.columns)
    return len(keys) == 1 and keys[0].name == "id" and keys[0].type.python_type is int


def _identifies(table: sa.Table, column: sa.Column[Any]) -> bool:
    """A string that must stay unique: a string key, or a column unique on its own."""
    if column.name in ACCOUNT_COLUMNS or not isinstance(column.type, sa.String):
        return False
    alone = {
        tuple(c.name for c in constraint.columns)
        for constraint in [*table.constraints, *table.indexes]
        if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint)
        or (isinstance(constraint, sa.Index) and constraint.unique)
    }
    return bool(column.unique) or (column.name,) in alone


def _dependencies(tables: list[sa.Table]) -> dict[sa.Table, set[sa.Table]]:
    """Every foreign key, ``use_alter`` ones too (PostgreSQL checks them at once)."""
    return {
        t: {fk.column.table for fk in t.foreign_keys if fk.column.table in tables} - {t}
        for t in tables
    }
