"""Feature checks that cost nothing when warm (R-USE-3), and the versions that keep them true.

Each process keeps the entitlements it computed, per account, with the versions they were
read at (``entitlements.Versions``). A check then costs:

* **warm** — the entry was confirmed by the database less than ``SUBSCRIPTIONS_ENTITLEMENTS_TTL``
  seconds ago, on the same billing day: no SQL statement;
* **stale** — older than that: one statement reads the versions (four lookups by unique
  keys); equal, the entry is confirmed again; different, the entitlements are read again;
* **cold** — no entry: one statement reads the entitlements and their versions together.

What keeps it true: every event that changes what an account may use bumps a version in its
own transaction (``touch_entitlements``, ``touch_catalog``; a renewal's executemany already
bumps the license's ``version``), so a change committed by any process is seen by every
check that starts ``TTL`` seconds after that commit or later. This process's own changes
are seen at once: a commit that touched an account drops its entry, and an answer computed
while that happened is not kept.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.entitlements import Entitlements
from ..models import BillingProfile, CatalogVersion
from ..state import get_state
from ._sql import among
from .entitlements import Versions, read_versions, versioned_entitlements
from .profiles import ensure_profile

#: ``session.info`` key: the caches and accounts a transaction touched, forgotten after it.
_TOUCHED = "subs_entitlements_touched"
#: Stands for every account: the catalog changed.
EVERY_ACCOUNT = None


@dataclass(frozen=True)
class _Entry:
    entitlements: Entitlements
    versions: Versions
    today: date
    confirmed_at: float


class EntitlementCache:
    """One app's entitlements in one process: at most ``size`` accounts (least recently
    checked go first), trusted for ``ttl`` seconds after the database last confirmed them."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[tuple[str | None, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        #: Moves on every forget: an answer read before it is not kept after it.
        self._generation = 0

    def entitlements(self, account_id: str | None) -> Entitlements:
        """The account's entitlements, from memory when the database need not be asked."""
        state = get_state()
        key, today = (account_id, state.settings.locale), state.today()
        started = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            generation = self._generation
            if entry is not None and entry.today != today:
                entry = None
            if entry is not None and started - entry.confirmed_at < self.ttl:
                self._entries.move_to_end(key)
                return entry.entitlements
        if entry is not None and read_versions(account_id) == entry.versions:
            self._keep(key, replace(entry, confirmed_at=started), generation)
            return entry.entitlements
        found, versions = versioned_entitlements(account_id)
        self._keep(key, _Entry(found, versions, today, started), generation)
        return found

    def forget(self, account_ids: Iterable[str | None]) -> None:
        """Drop these accounts' entries (``EVERY_ACCOUNT``: all of them)."""
        ids = set(account_ids)
        with self._lock:
            self._generation += 1
            if EVERY_ACCOUNT in ids:
                self._entries.clear()
                return
            for key in [k for k in self._entries if k[0] in ids]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _keep(self, key: tuple[str | None, str], entry: _Entry, generation: int) -> None:
        with self._lock:
            if generation != self._generation:  # a commit touched something meanwhile
                return
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


# --- the versions: bumped in the transaction of the change -------------------------------


def touch_entitlements(*account_ids: str) -> None:
    """What these accounts may use changes in this transaction: bump their versions (one
    UPDATE; a profile is created for an account that has none). Flushes, never commits."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    session = get_state().session
    bumped = session.execute(
        update(BillingProfile)
        .where(among(BillingProfile.account_id, ids))
        .values(entitlements_version=BillingProfile.entitlements_version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(bumped, "rowcount", len(ids)) < len(ids):
        for account_id in ids:  # a new profile's version (0) differs from none (-1)
            ensure_profile(account_id)
    _forget_after_commit(session, ids)


def touch_catalog() -> None:
    """The catalog changed in this transaction: every account's entitlements may have."""
    session = get_state().session
    bump = update(CatalogVersion).where(CatalogVersion.id == 1)
    bumped = session.execute(bump.values(version=CatalogVersion.version + 1))
    if getattr(bumped, "rowcount", 1) == 0:
        try:
            with session.begin_nested():
                session.add(CatalogVersion(id=1, version=1))
        except IntegrityError:  # another load made the row first: bump it
            session.execute(bump.values(version=CatalogVersion.version + 1))
    _forget_after_commit(session, [EVERY_ACCOUNT])


def forget_after_commit(account_ids: Iterable[str]) -> None:
    """For a writer whose own UPDATE already bumps a version (a renewal's executemany moves
    each license's ``version``): no statement, only this process forgets after the commit."""
    _forget_after_commit(get_state().session, list(account_ids))


def _forget_after_commit(session: Session, ids: list[Any]) -> None:
    cache = get_state().entitlement_cache
    if cache is not None:
        session.info.setdefault(_TOUCHED, []).append((cache, ids))


def forget_committed(session: Session) -> None:
    """After a commit, this process forgets what the transaction touched (the other
    processes see the bumped versions when their entries go stale)."""
    for cache, ids in session.info.pop(_TOUCHED, []):
        cache.forget(ids)


def listen_for_commits(session_factory: Any) -> None:
    """Wire ``forget_committed`` to the host's sessions (once per session factory)."""
    if not event.contains(session_factory, "after_commit", forget_committed):
        event.listen(session_factory, "after_commit", forget_committed)
