"""Terms: half-open ranges of calendar dates and how they follow each other (R-TIME).

A term is ``[start, end)``: it includes its first day and excludes its end, which is the
next term's start. Counting days is then a subtraction with no off-by-one, and two
consecutive terms never share or skip a day.

Every term is computed from the subscription's anchor date, never by adding a month to
the previous term's end: chaining would turn Jan 31 into Feb 28 and then Mar 28 forever,
while R-TIME-2 says the billing day returns to the 31st whenever a month has one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

__all__ = [
    "Interval",
    "Term",
    "add_interval",
    "days_from",
    "remaining_days_after",
    "term_at",
    "term_containing",
    "used_days",
]

_ONE_DAY = timedelta(days=1)


class Interval(StrEnum):
    """How long one term lasts. The values are what the database stores."""

    MONTH = "month"
    YEAR = "year"


def _require_date(value: object, what: str) -> date:
    # A datetime is a date subclass, but comparing one with a date raises, and a time of
    # day has no meaning for billing dates (R-TIME-1): refuse it up front.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Term:
    """One paid period ``[start, end)`` of a subscription, at least one day long."""

    start: date
    end: date

    def __post_init__(self) -> None:
        _require_date(self.start, "term start")
        _require_date(self.end, "term end")
        if self.end <= self.start:
            raise ValueError(f"a term must end after it starts: {self.start} .. {self.end}")

    @property
    def days(self) -> int:
        """How many days the term has: the denominator of every proration (R-PRO-4/5)."""
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        """The last day that belongs to the term (the day before ``end``), for display."""
        return self.end - _ONE_DAY

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls inside the term (its end belongs to the next one)."""
        return self.start <= _require_date(day, "day") < self.end


def add_interval(anchor: date, interval: Interval, count: int) -> date:
    """The date ``count`` intervals after ``anchor``, keeping the anchor's day (R-TIME-2).

    The day is clamped to the last day of a shorter month: Jan 31 + 1 month is Feb 29 in
    a leap year, Feb 28 otherwise, and Jan 31 + 2 months is Mar 31 again. A yearly anchor
    on Feb 29 lands on Feb 28 in common years and on Feb 29 again in leap years.
    """
    _require_date(anchor, "anchor")
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, not {type(count).__name__}")
    interval = Interval(interval)
    if interval is Interval.YEAR:
        year, month = anchor.year + count, anchor.month
    else:
        months = anchor.month - 1 + count
        year, month = anchor.year + months // 12, months % 12 + 1
    if not date.min.year <= year <= date.max.year:
        raise ValueError(f"{anchor} + {count} {interval.value}(s) is out of the calendar")
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def term_at(anchor: date, interval: Interval, index: int) -> Term:
    """The ``index``-th term of a subscription anchored on ``anchor`` (0 starts at it)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"term index must be an int >= 0, got {index!r}")
    return Term(add_interval(anchor, interval, index), add_interval(anchor, interval, index + 1))


def term_containing(anchor: date, interval: Interval, day: date) -> tuple[int, Term]:
    """The index and the term of the subscription anchored on ``anchor`` that holds ``day``.

    Renewal uses it to work out which terms should exist by now (and create the missing
    ones); a day before the anchor belongs to no term.
    """
    _require_date(anchor, "anchor")
    _require_date(day, "day")
    if day < anchor:
        raise ValueError(f"{day} is before the anchor {anchor}")
    interval = Interval(interval)
    index = day.year - anchor.year
    if interval is Interval.MONTH:
        index = index * 12 + day.month - anchor.month
    # The term starting in day's month (or year) starts on or before day, or else the
    # previous one holds it: add_interval is monotonic in its count.
    if add_interval(anchor, interval, index) > day:
        index -= 1
    return index, term_at(anchor, interval, index)


def _inside(term: Term, day: date) -> None:
    if not term.contains(day):
        raise ValueError(f"{day} is not within the term {term.start} .. {term.last_day}")


def used_days(term: Term, day: date) -> int:
    """Days used from the term's start through ``day`` itself (R-TIME-3, R-PRO-5).

    A day touched is a day used: a change on ``day`` counts ``day`` under the old terms.
    """
    _inside(term, day)
    return (day - term.start).days + 1


def remaining_days_after(term: Term, day: date) -> int:
    """Days from the day after ``day`` to the term's end: what a credit covers (R-PRO-2/4)."""
    _inside(term, day)
    return (term.end - day).days - 1


def days_from(term: Term, day: date) -> int:
    """Days from ``day`` itself to the term's end: what a new charge covers (R-PRO-2)."""
    _inside(term, day)
    return (term.end - day).days


@lru_cache(maxsize=1024)
def term_after(anchor: date, interval: Interval, start: date, end: date) -> Term:
    """The term after ``[start, end)``, computed from the anchor (R-TIME-2), never chained
    from ``end``. Remembered: a renewal batch asks it for many licenses anchored alike."""
    index, _ = term_containing(anchor, interval, start)
    return Term(end, add_interval(anchor, interval, index + 2))
