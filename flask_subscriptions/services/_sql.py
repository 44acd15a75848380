"""Small SQL helpers shared by services."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import CursorResult

from ..state import get_state


def updated(statement: Any) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed: conditional UPDATEs are
    how services claim rows (an order, a payment, a coupon use) without table locks."""
    result = cast(CursorResult[Any], get_state().session.execute(statement))
    return result.rowcount


def reserve_ids(table: Table, count: int) -> list[int] | None:
    """``count`` new primary keys for ``table``, so rows go in with a plain executemany."""
    session = get_state().session
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return list(
            session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
                ),
                {"t": table.name, "n": count},
            )
        )
    if dialect == "sqlite":
        # The batch's first statement (the claim) took SQLite's single write lock: no other
        # writer can add a row before this transaction ends.
        first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
        return list(range(first, first + count))
    return None
