"""Filters and globals our templates use, and that a host's overrides can use too."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, has_request_context, request, url_for
from werkzeug.routing import BuildError

from . import i18n, wording
from .features import register_template_helpers as register_entitlement_helpers
from .links import app_url

if TYPE_CHECKING:
    from .state import State


PACKAGE = Path(__file__).parent

#: The endpoint of our static files: ``url_for(ASSETS + ".static", filename=...)``.
ASSETS = "subscriptions_assets"


def register_assets(app: Flask, url_prefix: str) -> None:
    """Our templates and static files, registered whatever else is: e-mails, the
    feature-refused page and the banner render the same with or without our views
    (``SUBSCRIPTIONS_REGISTER_BLUEPRINTS = False``) and whatever the gateway. Registered
    after the host's own blueprints' templates only by order of calls, never before the
    app's ``templates/`` folder, so a host's file of the same name still wins."""
    assets = Blueprint(
        ASSETS,
        __name__,
        template_folder=str(PACKAGE / "templates"),
        static_folder=str(PACKAGE / "static"),
        static_url_path="/static",
    )
    prefix = "" if url_prefix == "/" else url_prefix
    app.register_blueprint(assets, url_prefix=prefix)


def register_template_helpers(app: Flask, state: State) -> None:
    """Our words through our own translation domain, and money and dates formatted for the
    currency and the person's locale (R-I18N-1, R-MON-4): ``_subs``, ``subs_money``,
    ``subs_date`` (:mod:`.i18n`)."""
    i18n.register(app)
    app.add_template_global(wording.line_description, "subs_line")
    app.add_template_global(wording.ledger_reason, "subs_ledger_reason")
    app.add_template_global(wording.change_summary, "subs_change_summary")
    app.add_template_global(wording.reason, "subs_reason")

    def absolute_url(endpoint: str, **values: Any) -> str:
        """A link for an e-mail: absolute when the app knows its address (a request, or
        ``SERVER_NAME`` for jobs), else the path, rather than failing to send the mail."""
        if endpoint not in app.view_functions:
            return ""  # a host that mounts its own views has no such page of ours
        if has_request_context() or any(app.url_default_functions.values()):
            return app_url(endpoint, **values)  # url_defaults callbacks may add values
        config = app.config
        where = (
            config.get("SERVER_NAME"),
            config.get("PREFERRED_URL_SCHEME"),
            config.get("APPLICATION_ROOT"),
        )
        try:
            return job_link(endpoint, where, values)
        except TypeError:  # a value that cannot be remembered
            return app_url(endpoint, **values)

    def job_link(endpoint: str, where: tuple[Any, ...], values: dict[str, Any]) -> str:
        """A batch's links differ only in their values (each receipt's invoice number): the
        link is built once per endpoint with placeholders, then filled in. A value that a
        URL would spell differently (it needs quoting) is built the ordinary way."""
        pattern = link_pattern(endpoint, where, tuple(values))
        if pattern is None:
            return app_url(endpoint, **values)
        for placeholder, value in zip(_PLACEHOLDERS, values.values(), strict=False):
            text = str(value)
            if not _unquoted(text):
                return app_url(endpoint, **values)
            pattern = pattern.replace(placeholder, text)
        return pattern

    @lru_cache(maxsize=256)
    def link_pattern(endpoint: str, _where: tuple[Any, ...], keys: tuple[str, ...]) -> str | None:
        """The link with a placeholder for each value, remembered per endpoint and config;
        None when a converter refuses the placeholder (an integer id), or for more values
        than there are placeholders."""
        if len(keys) > len(_PLACEHOLDERS):
            return None
        placeholders: dict[str, Any] = dict(zip(keys, _PLACEHOLDERS, strict=False))
        try:
            return app_url(endpoint, **placeholders)
        except (BuildError, ValueError):
            return None

    app.add_template_global(absolute_url, "subs_url")
    app.add_template_global(page_url, "subs_page_url")
    app.jinja_env.globals["subs_base_template"] = state.settings.base_template

    register_entitlement_helpers(app)  # subs_entitlements(), subs_has_feature() (R-USE-3)


def page_url(prefix: str, direction: str, cursor: str, endpoint: str | None = None) -> str:
    """This page's link to the next page of one of its lists (``_pager.html``): the same
    view (or ``endpoint``, for a page a form's POST rendered) and query, with that list's
    cursor replaced."""
    names = (f"{prefix}before", f"{prefix}after")
    args = {k: v for k, v in request.args.items() if k not in names}
    values: dict[str, Any] = {**(request.view_args or {}), **args, f"{prefix}{direction}": cursor}
    return url_for(endpoint or request.endpoint or "", **values)


#: What a remembered link holds in place of each value, in order.
_PLACEHOLDERS = tuple(f"subs-link-value-{i}-" for i in range(16))
#: What a URL spells as it is (``urllib.parse.quote(text, safe="")`` leaves it unchanged).
_unquoted = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
