"""The one clock everything reads (R-TIME-1).

Billing dates are calendar dates in one configured time zone, and "now" must be movable:
tests and the example app's test clock advance time to watch renewals and dunning happen.
So no module calls ``datetime.now()`` or ``date.today()`` itself; they ask the clock.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """What the extension needs to know about time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...


def today(clock: Clock, timezone: str) -> date:
    """The billing date of ``clock.now()`` in the configured time zone (R-TIME-1)."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()


def utcnow_naive(clock: Clock) -> datetime:
    """``now`` as a naive UTC datetime, which is what the tables store on every database."""
    return clock.now().astimezone(UTC).replace(tzinfo=None)


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to: for tests."""

    def __init__(self, start: datetime | date | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime | date) -> None:
        with self._lock:
            self._now = _aware(when)

    def advance(self, days: int = 0, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(days=days, **delta)
            return self._now


class OffsetClock:
    """Real time plus an offset kept in a file: the example app's test clock (R-EX-2).

    The offset lives on disk so every worker process and CLI command of the example app
    sees the same moved time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def offset(self) -> timedelta:
        try:
            seconds = json.loads(self.path.read_text())["offset_seconds"]
        except (FileNotFoundError, ValueError, KeyError):
            return timedelta(0)
        return timedelta(seconds=float(seconds))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, days: int = 0, **delta: float) -> datetime:
        offset = self.offset + timedelta(days=days, **delta)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"offset_seconds": offset.total_seconds()}))
        return self.now()

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)


def _aware(when: datetime | date) -> datetime:
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, 12, tzinfo=UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
