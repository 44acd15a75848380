"""Keyset pagination for the long lists (history, ledger, e-mails, the console's lists).

A page is the ``size`` rows just older (``before``) or just newer (``after``) than a
*cursor*: the sort key of a row, written into the link. Reading a page is one indexed range
scan of ``size + 1`` rows, whatever the number of rows before it (no OFFSET), and a row
added meanwhile never shifts the pages. Lists are newest first; the key ends with the id,
so it is unique and the order stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import and_, or_

from ..errors import RequestRefused
from ..state import get_state

T = TypeVar("T")
Direction = Literal["before", "after"]
#: A key's parts as a link writes them: a time to the microsecond, or a whole number.
_PART = re.compile(r"[0-9]{20}|[0-9]{1,18}")
_TIME = "%Y%m%d%H%M%S%f"


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: rows older (``before``) or newer (``after``) than ``key``;
    no direction is the newest page."""

    direction: Direction | None = None
    key: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, with the cursors of the pages beside it."""

    items: list[T]
    newer: str | None = None  # the link's ``after``
    older: str | None = None  # the link's ``before``


def page_size() -> int:
    return get_state().settings.page_size


def parse_cursor(before: str | None, after: str | None, kinds: Sequence[type]) -> Cursor:
    """The cursor of a link's ``before`` or ``after``; anything else a link cannot hold is
    refused with ``page_link_invalid`` (R-SEC-4), and nothing is read."""
    if before is None and after is None:
        return Cursor()
    if before is not None and after is not None:
        raise RequestRefused(code="page_link_invalid")
    direction: Direction = "before" if before is not None else "after"
    text = before if before is not None else after
    assert text is not None
    parts = text.split("-")
    if len(parts) != len(kinds) or not all(_PART.fullmatch(p) for p in parts):
        raise RequestRefused(code="page_link_invalid")
    try:
        key = tuple(_decode(part, kind) for part, kind in zip(parts, kinds, strict=True))
    except ValueError:
        raise RequestRefused(code="page_link_invalid") from None
    return Cursor(direction, key)


def encode(key: Sequence[Any]) -> str:
    return "-".join(
        value.strftime(_TIME) if isinstance(value, datetime) else str(value) for value in key
    )


def _decode(part: str, kind: type) -> Any:
    if kind is datetime:
        if len(part) != 20:
            raise ValueError(part)
        return datetime.strptime(part, _TIME)
    if len(part) > 18:
        raise ValueError(part)
    return int(part)


def keyset(
    query: Any,
    columns: Sequence[Any],
    cursor: Cursor,
    size: int,
    params: Mapping[str, Any] | None = None,
) -> tuple[list[Any], bool]:
    """``query`` limited to one page by ``columns`` (the sort key, id last), newest first,
    and whether more rows lie beyond the page in the direction read. ``params``: the values
    of ``query``'s bound parameters, for a query built once (module-level): its first
    page's statement is then built once too."""
    if cursor.direction == "after":
        query = query.where(_beyond(columns, cursor.key, newer=True))
        query = query.order_by(*(c.asc() for c in columns)).limit(size + 1)
    elif cursor.direction == "before":
        query = query.where(_beyond(columns, cursor.key, newer=False))
        query = query.order_by(*(c.desc() for c in columns)).limit(size + 1)
    elif params is not None:
        query = _first_page(query, tuple(columns), size)
    else:
        query = query.order_by(*(c.desc() for c in columns)).limit(size + 1)
    rows = list(get_state().session.execute(query, params or {}))
    more = len(rows) > size
    rows = rows[:size]
    if cursor.direction == "after":
        rows.reverse()
    return rows, more


#: (id of a query built once, size) → the query (kept, so that its id stays its own), and
#: its first page's statement.
_FIRST_PAGES: dict[tuple[int, int], tuple[Any, Any]] = {}


def _first_page(query: Any, columns: tuple[Any, ...], size: int) -> Any:
    """Most page views are a list's first page: building a statement costs about as much
    as running it, so a query built once gets its first page built once (per page size)."""
    key = (id(query), size)
    kept = _FIRST_PAGES.get(key)
    if kept is not None and kept[0] is query:
        return kept[1]
    statement = query.order_by(*(c.desc() for c in columns)).limit(size + 1)
    _FIRST_PAGES[key] = (query, statement)
    return statement


def page_of(
    items: list[T], key: Callable[[T], Sequence[Any]], cursor: Cursor, more: bool
) -> Page[T]:
    """The page, with the cursors of its neighbours: a page read going older has newer
    pages when it started from a cursor, and older ones when more rows were left; a page
    read going newer, the other way round."""
    if not items:
        return Page(items)
    newest, oldest = encode(key(items[0])), encode(key(items[-1]))
    if cursor.direction == "after":
        return Page(items, newer=newest if more else None, older=oldest)
    return Page(
        items,
        newer=newest if cursor.direction == "before" else None,
        older=oldest if more else None,
    )


def _beyond(columns: Sequence[Any], key: Sequence[Any], *, newer: bool) -> Any:
    """Rows whose key is after (``newer``) or before ``key``, as plain comparisons every
    database can serve from an index on the columns."""
    first, value = columns[0], key[0]
    if len(columns) == 1:
        return first > value if newer else first < value
    rest = _beyond(columns[1:], key[1:], newer=newer)
    return or_(first > value if newer else first < value, and_(first == value, rest))
