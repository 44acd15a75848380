"""What the URL map itself refuses, shown as our pages (R-SEC-4).

Two things happen before any view of ours runs, so a view cannot handle them:

- an id in a URL that the database could not store (``2**31`` and up is "integer out of
  range" on PostgreSQL, a 500 once it reached a query) must not match a route at all:
  :class:`RowId` (``<subs_id:…>``) accepts only 1 … 2**31 - 1;
- a URL under the billing prefix that matches no route (``/billing/licenses/abc``) is
  Werkzeug's NotFound, raised before a blueprint is known: only an app-level handler sees
  it. :func:`register_prefix_errors` installs one that answers for paths under the prefix
  (our pages and a gateway's pages mounted there) and leaves every other path to the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from flask import request
from flask.sansio.app import App
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from ._errors import http_error

#: The largest id a row of ours can have: the primary keys are 32-bit integers everywhere.
MAX_ROW_ID: Final = 2**31 - 1
CONVERTER: Final = "subs_id"


def digits_up_to(highest: int) -> str:
    """A regular expression for 1 … ``highest`` in plain digits (no sign, no leading 0).

    The range lives in the pattern, not only in ``to_python``: Werkzeug answers 405 when a
    path's pattern matches a rule for another method, before that rule's converter has
    refused the value, so ``POST /licenses/0/change`` with ``max=`` alone was a 405.
    """
    top = str(highest)
    shorter = [rf"[1-9]\d{{0,{len(top) - 2}}}"] if len(top) > 1 else []
    same_length = [
        rf"{top[:i]}[{'1' if i == 0 else '0'}-{int(digit) - 1}]\d{{{len(top) - i - 1}}}"
        for i, digit in enumerate(top)
        if int(digit) > (1 if i == 0 else 0)
    ]
    return "|".join([*shorter, *same_length, top])


class RowId(IntegerConverter):
    """A positive id that fits the database's integer column; anything else is a 404."""

    regex = f"(?:{digits_up_to(MAX_ROW_ID)})"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ROW_ID)


def register_converter(app: App) -> None:
    """Before our rules are added (a blueprint's deferred setup runs before its children's)."""
    app.url_map.converters.setdefault(CONVERTER, RowId)


def register_prefix_errors(app: App, url_prefix: str) -> None:
    """An app-level handler for 4xx under ``url_prefix``; elsewhere the host's own answer.

    Billing mounted at the root has no prefix of its own: the host's pages are left alone
    and only our views' refusals are ours. A handler the host registered earlier for every
    HTTPException keeps answering for its own paths; one it registers for a single status
    (``@app.errorhandler(404)``) wins everywhere, which is the host's choice to make.
    """
    earlier: Callable[[HTTPException], Any] | None = app.error_handler_spec[None][None].get(
        HTTPException
    )
    prefix = url_prefix.rstrip("/")

    def under_prefix(error: HTTPException) -> ResponseReturnValue:
        path = request.path
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return http_error(error)
        return earlier(error) if earlier is not None else error

    app.register_error_handler(HTTPException, under_prefix)
