"""Our record of what we asked Stripe to do: one row per idempotency key.

Stripe replays a request sent again with the same ``Idempotency-Key`` for 24 hours, but
exactly-once must not rest on that alone (a fake Stripe does not replay keys, a key
expires, a database is restored). So the adapter keeps, per key, the id of the Stripe
object it made: a charge's PaymentIntent is created *unconfirmed*, its id is written here,
and only then is it confirmed. A key's row is never replaced, so a key can only ever
confirm one PaymentIntent, and a PaymentIntent takes money at most once.

Refunds (and payouts, which are refunds) cannot be created unconfirmed, so their row is
written *first*, as a claim with a time stamp: while a claim is fresh, another caller with
the key is told the outcome is not known yet (``GatewayTimeout``); a stale claim is looked
up at Stripe by the key in the refund's metadata before it is tried again.

This is not a mirror of Stripe's objects: it holds ids and why a request was refused,
never amounts, statuses or card data. Hosts that manage their schema with Alembic add
``flask_subscriptions.gateways.stripe.metadata`` to their ``target_metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

__all__ = ["Ledger", "Sent", "is_fresh", "metadata", "sent_requests"]

metadata = sa.MetaData()

sent_requests = sa.Table(
    "subs_stripe_requests",
    metadata,
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # charge | refund | payout
    # What the key was used for (customer, card, amount, …): a key reused for another
    # request is a caller's bug, refused instead of replayed.
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("target", sa.String(255)),  # the PaymentIntent a refund or payout refunds
    sa.Column("object_id", sa.String(255)),  # pi_… for a charge, re_… for a refund
    sa.Column("failure", sa.Text),  # why Stripe (or we) refused it: replayed as is
    sa.Column("claimed_at", sa.DateTime, nullable=False),
)


@dataclass(frozen=True)
class Sent:
    key: str
    kind: str
    fingerprint: str
    target: str | None
    object_id: str | None
    failure: str | None
    claimed_at: datetime

    @property
    def settled(self) -> bool:
        return self.object_id is not None or self.failure is not None


class Ledger:
    """The rows of one database. Every call is its own short transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> Sent | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sent_requests).where(sent_requests.c.idempotency_key == key)
            ).first()
        if row is None:
            return None
        return Sent(
            key=row.idempotency_key,
            kind=row.kind,
            fingerprint=row.fingerprint,
            target=row.target,
            object_id=row.object_id,
            failure=row.failure,
            claimed_at=row.claimed_at,
        )

    def add(
        self,
        key: str,
        kind: str,
        fingerprint: str,
        *,
        object_id: str | None = None,
        target: str | None = None,
    ) -> tuple[Sent, bool]:
        """Insert the key's row; the row that is there now, and whether it is ours."""
        claimed_at = _now()
        values = {
            "idempotency_key": key,
            "kind": kind,
            "fingerprint": fingerprint,
            "target": target,
            "object_id": object_id,
            "claimed_at": claimed_at,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sent_requests.insert().values(values))
        except sa.exc.IntegrityError:
            found = self.get(key)
            if found is None:
                raise
            return found, False
        return Sent(key, kind, fingerprint, target, object_id, None, claimed_at), True

    def settle(self, key: str, *, object_id: str | None = None, failure: str | None = None) -> None:
        self._update(key, {"object_id": object_id, "failure": failure})

    def set_target(self, key: str, target: str) -> None:
        self._update(key, {"target": target})

    def reclaim(self, sent: Sent) -> bool:
        """Take over a stale claim; False if another caller took it (or settled it) first."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sent_requests.update()
                .where(
                    sent_requests.c.idempotency_key == sent.key,
                    sent_requests.c.claimed_at == sent.claimed_at,
                    sent_requests.c.object_id.is_(None),
                    sent_requests.c.failure.is_(None),
                )
                .values(claimed_at=_now())
            )
        return done.rowcount == 1

    def release(self, key: str) -> None:
        """Forget an unsettled claim whose request never reached Stripe."""
        with self.engine.begin() as conn:
            conn.execute(
                sent_requests.delete().where(
                    sent_requests.c.idempotency_key == key,
                    sent_requests.c.object_id.is_(None),
                    sent_requests.c.failure.is_(None),
                )
            )

    def _update(self, key: str, values: dict[str, str | None]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sent_requests.update()
                .where(sent_requests.c.idempotency_key == key)
                .values(**values)
            )


def is_fresh(sent: Sent, lease: timedelta) -> bool:
    return _now() - sent.claimed_at < lease


def _now() -> datetime:
    # Naive UTC, as every table of ours stores it; microseconds dropped so the value
    # compares equal after a round trip through any database (reclaim matches on it).
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
