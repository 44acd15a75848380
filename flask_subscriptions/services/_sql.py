"""Small SQL helpers shared by services."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import CursorResult

from ..extension import get_state


def updated(statement: Any) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed: conditional UPDATEs are
    how services claim rows (an order, a payment, a coupon use) without table locks."""
    result = cast(CursorResult[Any], get_state().session.execute(statement))
    return result.rowcount
