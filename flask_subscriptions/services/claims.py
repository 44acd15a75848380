"""Claims on subscriptions: how several workers share one job without doing a row twice.

A worker takes rows with one conditional UPDATE that sets its token and a lease (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, so workers pass each other instead of waiting). A row
is free when nobody holds it or its lease has run out: a worker that died gives its rows
back by itself. Renewals and dunning both claim this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, any_, func, or_, select, update

from ..models import Subscription
from ..state import get_state
from ._sql import among


def claim(
    token: str, size: int, *where: ColumnElement[bool], order_by: Sequence[Any] = ()
) -> list[int]:
    """Take up to ``size`` free subscriptions matching ``where``; their ids, sorted.

    Runs in the caller's transaction: the caller commits (and may write in it first).
    """
    return [row.id for row in claim_rows(token, size, *where, order_by=order_by)]


def claim_rows(
    token: str, size: int, *where: ColumnElement[bool], order_by: Sequence[Any] = ()
) -> list[Row[Any]]:
    """As :func:`claim`, returning the claimed subscriptions' rows (all their columns, as
    claimed), sorted by id: a caller that reads them saves a query."""
    state = get_state()
    session = state.session
    now = state.now()
    free = or_(Subscription.claim_expires_at.is_(None), Subscription.claim_expires_at < now)
    wanted = (
        select(Subscription.id).where(*where, free).order_by(*order_by, Subscription.id).limit(size)
    )
    table = cast(Table, Subscription.__table__)
    taken: ColumnElement[bool] = table.c.id.in_(wanted.scalar_subquery())
    if session.get_bind().dialect.name == "postgresql":
        # The ids as one array, read first: as ``id IN (subquery)`` PostgreSQL joined them
        # to a scan of every subscription, a cost that grows with the table.
        locked = wanted.with_for_update(skip_locked=True).scalar_subquery()
        taken = table.c.id == any_(func.array(locked))
    lease = now + timedelta(seconds=state.settings.claim_lease_seconds)
    claimed = session.execute(
        update(table)
        .where(taken, free)
        .values(claimed_by=token, claim_expires_at=lease)
        .returning(*table.c)
    )
    return sorted(claimed, key=lambda row: row.id)


def held() -> int:
    """How many subscriptions a live worker holds now (a lease that has not run out): while
    any is held, a run is still going; a dead worker's claims stop counting by themselves."""
    state = get_state()
    return (
        state.session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                Subscription.claimed_by.is_not(None), Subscription.claim_expires_at >= state.now()
            )
        )
        or 0
    )


def release(subscription_ids: Sequence[int], token: str, *, commit: bool = True) -> None:
    """Give claimed rows back, and commit (or leave that to the caller's transaction)."""
    session = get_state().session
    session.execute(
        update(Subscription)
        .where(among(Subscription.id, subscription_ids), Subscription.claimed_by == token)
        .values(claimed_by=None, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if commit:
        session.commit()
