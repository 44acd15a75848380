"""Filters and globals our templates use, and that a host's overrides can use too."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, has_request_context, url_for

from .core.money import format_money

if TYPE_CHECKING:
    from .extension import State


def register_template_helpers(app: Flask, state: State) -> None:
    """Money is always shown formatted for its currency and the configured locale (R-MON-4)."""

    def money(amount: int, currency: str) -> str:
        return format_money(amount, currency, state.settings.locale)

    def long_date(day: date | None) -> str:
        return "" if day is None else _long_date(day)

    def absolute_url(endpoint: str, **values: Any) -> str:
        """A link for an e-mail: absolute when the app knows its address (a request, or
        ``SERVER_NAME`` for jobs), else the path, rather than failing to send the mail."""
        if has_request_context():
            return url_for(endpoint, _external=True, **values)
        config = current_app.config
        where = (config.get("SERVER_NAME"), config.get("PREFERRED_URL_SCHEME"))
        root = config.get("APPLICATION_ROOT") or "/"
        if any(app.url_default_functions.values()):  # callbacks may add values: per call
            return job_link(endpoint, where, root, values.items())
        try:
            return remembered_job_link(endpoint, where, root, tuple(values.items()))
        except TypeError:  # a value that cannot be remembered
            return job_link(endpoint, where, root, values.items())

    def job_link(
        endpoint: str,
        where: tuple[str | None, str | None],
        root: str,
        values: Iterable[tuple[str, Any]],
    ) -> str:
        if where[0]:
            return url_for(endpoint, _external=True, **dict(values))
        return app.url_map.bind("localhost", script_name=root).build(endpoint, dict(values))

    # Without url_defaults callbacks, a job's link is a function of these arguments:
    # remembered, as every receipt of a renewal batch links to the same page.
    remembered_job_link = lru_cache(maxsize=256)(job_link)

    app.add_template_global(absolute_url, "subs_url")
    app.add_template_filter(money, "subs_money")
    app.add_template_filter(long_date, "subs_date")
    app.jinja_env.globals["subs_base_template"] = state.settings.base_template

    from .entitlements import register_template_helpers as register_entitlement_helpers

    register_entitlement_helpers(app)  # subs_entitlements(), subs_has_feature() (R-USE-3)


@lru_cache(maxsize=1024)
def _long_date(day: date) -> str:
    """``March 17, 2026``; remembered, as a renewal batch's receipts repeat a few dates."""
    return f"{day:%B} {day.day}, {day.year}"
