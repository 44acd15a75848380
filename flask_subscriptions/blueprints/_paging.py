"""The cursor of a paged list, from the link's ``before`` / ``after`` (``services/paging.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from flask import abort, make_response, request

from ..errors import RequestRefused
from ..services.paging import Cursor, parse_cursor
from ._errors import refuse


def page_cursor(kinds: Sequence[type], prefix: str = "") -> Cursor:
    """The page the link asks for; a link no page of ours wrote gets a 400 that says so
    (R-SEC-4). ``prefix`` tells apart the lists of one page (``emails_before``)."""
    try:
        return parse_cursor(
            request.args.get(f"{prefix}before"), request.args.get(f"{prefix}after"), kinds
        )
    except RequestRefused as exc:
        abort(make_response(refuse(exc)))
