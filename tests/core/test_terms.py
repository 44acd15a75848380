"""Terms and calendar edges: anchors on the 29th-31st, leap years, day counting (R-TIME)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from flask_subscriptions.core.terms import (
    Interval,
    Term,
    add_interval,
    days_from,
    remaining_days_after,
    term_at,
    term_containing,
    used_days,
)

MONTH, YEAR = Interval.MONTH, Interval.YEAR


def test_interval_values_are_what_the_database_stores() -> None:
    """The enum's values are the stored strings; a stored string reads back as the enum."""
    assert [i.value for i in Interval] == ["month", "year"]
    assert Interval("month") is MONTH
    assert MONTH == "month"


def test_term_is_half_open_R_TIME_2() -> None:
    """R-TIME-2: a term is [start, end): its end is the next term's first day."""
    term = Term(date(2026, 4, 3), date(2026, 5, 3))
    assert term.days == 30
    assert term.last_day == date(2026, 5, 2)
    assert term.contains(date(2026, 4, 3))
    assert term.contains(date(2026, 5, 2))
    assert not term.contains(date(2026, 5, 3))
    assert not term.contains(date(2026, 4, 2))


@pytest.mark.parametrize(
    ("start", "end"), [(date(2026, 4, 3), date(2026, 4, 3)), (date(2026, 4, 3), date(2026, 4, 2))]
)
def test_term_must_be_at_least_one_day(start: date, end: date) -> None:
    """An empty or reversed term would divide by zero in every proration."""
    with pytest.raises(ValueError, match="end after"):
        Term(start, end)


def test_term_refuses_datetimes_R_TIME_1() -> None:
    """R-TIME-1: billing dates are calendar dates; a datetime is a bug upstream."""
    with pytest.raises(TypeError):
        Term(datetime(2026, 4, 3, 12), date(2026, 5, 3))


# R-TIME-2: a monthly anchor on the 31st, 2024 is a leap year. Each date is computed from
# the anchor, so the 31st comes back after every short month.
ANCHOR_31_LEAP = [
    date(2024, 1, 31),
    date(2024, 2, 29),
    date(2024, 3, 31),
    date(2024, 4, 30),
    date(2024, 5, 31),
    date(2024, 6, 30),
    date(2024, 7, 31),
    date(2024, 8, 31),
    date(2024, 9, 30),
    date(2024, 10, 31),
    date(2024, 11, 30),
    date(2024, 12, 31),
    date(2025, 1, 31),
    date(2025, 2, 28),
]


@pytest.mark.parametrize(("count", "expected"), list(enumerate(ANCHOR_31_LEAP)))
def test_monthly_anchor_31_keeps_the_day_R_TIME_2(count: int, expected: date) -> None:
    """R-TIME-2: Jan 31 -> Feb 29 (leap) -> Mar 31 -> Apr 30 ..., computed from the anchor."""
    assert add_interval(date(2024, 1, 31), MONTH, count) == expected


def test_full_year_of_monthly_terms_on_the_31st_R_TIME_2() -> None:
    """R-TIME-2: twelve monthly terms from Jan 31 2025 (common year), exact dates and days."""
    expected = [
        (date(2025, 1, 31), date(2025, 2, 28), 28),
        (date(2025, 2, 28), date(2025, 3, 31), 31),
        (date(2025, 3, 31), date(2025, 4, 30), 30),
        (date(2025, 4, 30), date(2025, 5, 31), 31),
        (date(2025, 5, 31), date(2025, 6, 30), 30),
        (date(2025, 6, 30), date(2025, 7, 31), 31),
        (date(2025, 7, 31), date(2025, 8, 31), 31),
        (date(2025, 8, 31), date(2025, 9, 30), 30),
        (date(2025, 9, 30), date(2025, 10, 31), 31),
        (date(2025, 10, 31), date(2025, 11, 30), 30),
        (date(2025, 11, 30), date(2025, 12, 31), 31),
        (date(2025, 12, 31), date(2026, 1, 31), 31),
    ]
    terms = [term_at(date(2025, 1, 31), MONTH, i) for i in range(12)]
    assert [(t.start, t.end, t.days) for t in terms] == expected
    assert sum(t.days for t in terms) == 365  # the year is covered with no gap or overlap


@pytest.mark.parametrize(
    ("anchor", "count", "expected"),
    [
        (date(2025, 1, 29), 1, date(2025, 2, 28)),  # no Feb 29 in 2025
        (date(2025, 1, 29), 2, date(2025, 3, 29)),  # and back to the 29th
        (date(2024, 1, 29), 1, date(2024, 2, 29)),  # leap year keeps the 29th
        (date(2028, 1, 29), 1, date(2028, 2, 29)),
        (date(2025, 1, 30), 1, date(2025, 2, 28)),
        (date(2025, 1, 30), 2, date(2025, 3, 30)),
        (date(2024, 1, 30), 1, date(2024, 2, 29)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
        (date(2025, 12, 31), 2, date(2026, 2, 28)),  # across a year end
        (date(2025, 11, 15), 14, date(2027, 1, 15)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),  # backwards works too
        (date(2025, 5, 17), 0, date(2025, 5, 17)),
    ],
)
def test_monthly_edges_R_TIME_2(anchor: date, count: int, expected: date) -> None:
    """R-TIME-2: anchors on the 29th, 30th and 31st in leap (2024, 2028) and common years."""
    assert add_interval(anchor, MONTH, count) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, date(2024, 2, 29)),
        (1, date(2025, 2, 28)),
        (2, date(2026, 2, 28)),
        (3, date(2027, 2, 28)),
        (4, date(2028, 2, 29)),  # back to the 29th in the next leap year
        (8, date(2032, 2, 29)),
    ],
)
def test_yearly_feb_29_R_TIME_2(count: int, expected: date) -> None:
    """R-TIME-2: yearly terms anchored on Feb 29 end on Feb 28 in common years."""
    assert add_interval(date(2024, 2, 29), YEAR, count) == expected


def test_yearly_terms_from_feb_29_R_TIME_2() -> None:
    """R-TIME-2: the yearly terms from Feb 29 2024 have 365, 365, 365 and 366 days."""
    terms = [term_at(date(2024, 2, 29), YEAR, i) for i in range(4)]
    assert [t.days for t in terms] == [365, 365, 365, 366]
    assert terms[3] == Term(date(2027, 2, 28), date(2028, 2, 29))


def test_yearly_term_days_leap_and_common_R_TIME_2() -> None:
    """R-TIME-2: a year is 366 days when it holds a Feb 29, else 365."""
    assert term_at(date(2024, 1, 1), YEAR, 0).days == 366
    assert term_at(date(2025, 1, 1), YEAR, 0).days == 365
    assert term_at(date(2027, 3, 1), YEAR, 0).days == 366  # holds Feb 29 2028


def test_add_interval_refuses_bad_input() -> None:
    """Counts are ints and anchors are dates; the calendar has an end."""
    with pytest.raises(TypeError):
        add_interval(date(2024, 1, 31), MONTH, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add_interval(datetime(2024, 1, 31), MONTH, 1)
    with pytest.raises(ValueError, match="out of the calendar"):
        add_interval(date(9999, 12, 1), MONTH, 1)


def test_term_at_refuses_negative_index() -> None:
    """Terms before the anchor do not exist."""
    with pytest.raises(ValueError, match="index"):
        term_at(date(2024, 1, 31), MONTH, -1)


@pytest.mark.parametrize(
    ("day", "index", "start", "end"),
    [
        (date(2025, 1, 31), 0, date(2025, 1, 31), date(2025, 2, 28)),
        (date(2025, 2, 27), 0, date(2025, 1, 31), date(2025, 2, 28)),
        (date(2025, 2, 28), 1, date(2025, 2, 28), date(2025, 3, 31)),
        (date(2025, 3, 30), 1, date(2025, 2, 28), date(2025, 3, 31)),
        (date(2025, 3, 31), 2, date(2025, 3, 31), date(2025, 4, 30)),
        (date(2026, 1, 1), 11, date(2025, 12, 31), date(2026, 1, 31)),
    ],
)
def test_term_containing_monthly_R_TIME_2(day: date, index: int, start: date, end: date) -> None:
    """R-TIME-2 / R-REN-2: which term of a subscription anchored Jan 31 holds a day."""
    assert term_containing(date(2025, 1, 31), MONTH, day) == (index, Term(start, end))


def test_term_containing_yearly_feb_29_R_TIME_2() -> None:
    """R-TIME-2: a yearly Feb 29 anchor; Feb 28 2025 already starts the second term."""
    anchor = date(2024, 2, 29)
    assert term_containing(anchor, YEAR, date(2025, 2, 27))[0] == 0
    assert term_containing(anchor, YEAR, date(2025, 2, 28))[0] == 1
    assert term_containing(anchor, YEAR, date(2028, 2, 28)) == (
        3,
        Term(date(2027, 2, 28), date(2028, 2, 29)),
    )
    assert term_containing(anchor, YEAR, date(2028, 2, 29))[0] == 4


def test_term_containing_every_day_of_five_years_R_TIME_2() -> None:
    """R-TIME-2: every day from 2024 to 2028 falls in exactly the term that holds it."""
    anchor, day = date(2024, 1, 31), date(2024, 1, 31)
    previous = -1
    while day < date(2029, 1, 1):
        index, term = term_containing(anchor, MONTH, day)
        assert term.contains(day)
        assert term == term_at(anchor, MONTH, index)
        assert index in (previous, previous + 1)
        previous = index
        day += timedelta(days=1)


def test_term_containing_refuses_a_day_before_the_anchor() -> None:
    """A day before the subscription started belongs to no term."""
    with pytest.raises(ValueError, match="before the anchor"):
        term_containing(date(2025, 1, 31), MONTH, date(2025, 1, 30))


E1_TERM = Term(date(2026, 4, 3), date(2026, 5, 3))  # SPEC E1: Apr 3 - May 3, 30 days


@pytest.mark.parametrize(
    ("day", "used", "after", "from_day"),
    [
        (date(2026, 4, 3), 1, 29, 30),  # first day: it is used, the rest remain
        (date(2026, 4, 20), 18, 12, 13),  # E1: charged Apr 20 - May 2, 13 days
        (date(2026, 5, 2), 30, 0, 1),  # last day: nothing remains after it
    ],
)
def test_day_counts_R_TIME_3_R_PRO_2(day: date, used: int, after: int, from_day: int) -> None:
    """R-TIME-3 / R-PRO-2: the change day is used under the old terms and charged by the new."""
    assert used_days(E1_TERM, day) == used
    assert remaining_days_after(E1_TERM, day) == after
    assert days_from(E1_TERM, day) == from_day
    assert used + after == E1_TERM.days
    assert from_day == after + 1


def test_day_counts_E3_R_PRO_4() -> None:
    """R-PRO-4: E3's term Mar 17 - Apr 17 (31 days), change on Apr 6: 21 used, 10 after, 11 from."""
    term = Term(date(2026, 3, 17), date(2026, 4, 17))
    day = date(2026, 4, 6)
    assert (term.days, used_days(term, day)) == (31, 21)
    assert (remaining_days_after(term, day), days_from(term, day)) == (10, 11)


@pytest.mark.parametrize("day", [date(2026, 4, 2), date(2026, 5, 3)])
@pytest.mark.parametrize("count", [used_days, remaining_days_after, days_from])
def test_day_counts_refuse_days_outside_the_term_R_TIME_3(day: date, count: object) -> None:
    """R-TIME-3: counting days of a term only makes sense for a day within it."""
    with pytest.raises(ValueError, match="not within"):
        count(E1_TERM, day)  # type: ignore[operator]
