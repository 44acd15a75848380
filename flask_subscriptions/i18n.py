"""Our words in the person's language, through a Flask-Babel domain of our own (R-I18N-1).

Like Flask-Security-Too, we ship our catalogs inside the package under the domain
``flask_subscriptions`` (``translations/<lang>/LC_MESSAGES/flask_subscriptions.mo``), so a
host's own catalogs and ``gettext`` are untouched, and ours travel with the wheel. Templates
call ``_subs(...)`` / ``_subs_n(...)`` (never the host's ``_``, which reads the host's
domain); Python code calls :func:`gettext`, :func:`ngettext`, :func:`lazy_gettext`.

The language of a request is the host's Flask-Babel locale selector when it has one, else
the best of our languages for the browser's ``Accept-Language``, else
``SUBSCRIPTIONS_LOCALE``. Outside a request (jobs, e-mails) it is the account's preferred
language when the caller says so (:func:`rendering_locale`), else ``SUBSCRIPTIONS_LOCALE``.
Dates and amounts are formatted for the same locale, with formatters remembered per locale:
a renewal batch renders thousands of receipts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any
from unicodedata import east_asian_width

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, has_app_context, has_request_context, request
from flask.globals import _cv_request  # the request context itself: one ContextVar get
from flask_babel import Babel, Domain, get_babel
from flask_babel import get_locale as host_locale
from flask_babel.speaklater import LazyString
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

from .core.money import format_money

DOMAIN = "flask_subscriptions"
TRANSLATIONS = Path(__file__).parent / "translations"
#: The languages we ship, English first (the source, and the fallback).
LANGUAGES = ("en", "ja", "ko")
#: What the language switch of a host may show for each.
LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "ko": "한국어"}
_EXTENSION_KEY = "subscriptions_i18n"


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined (a table); translated where shown."""
    return message


class SubscriptionsDomain(Domain):  # type: ignore[misc]
    """Flask-Babel's ``Domain`` with our directory and name, whose locale is
    :func:`current_locale` (a job's e-mail has no request, and a host's Babel set-up may
    have no selector at all)."""

    def __init__(self) -> None:
        super().__init__(translation_directories=[str(TRANSLATIONS)], domain=DOMAIN)

    def get_translations(self) -> NullTranslations:
        return translations_for(current_locale())


domain = SubscriptionsDomain()


@lru_cache(maxsize=32)
def translations_for(locale: str) -> NullTranslations:
    """Our catalog for ``locale`` (``ja_JP`` finds ``ja``), loaded once per process."""
    fresher = _from_po(_language(locale))
    if fresher is not None:
        return fresher
    return Translations.load(str(TRANSLATIONS), [locale], DOMAIN)


def _from_po(language: str) -> Translations | None:
    """A checkout never built has ``.po`` but no ``.mo``, and one edited since its editable
    install has a ``.mo`` older than its ``.po``: then the ``.po`` is compiled in memory, so
    running from the sources speaks what they say (a wheel ships fresh ``.mo`` files)."""
    po = TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if not po.is_file() or (mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime):
        return None
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext(message: str, /, **values: Any) -> str:
    """``message`` in the current language, ``%(name)s`` filled from ``values``."""
    text: str = _catalog().ugettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, num: int, /, **values: Any) -> str:
    """The plural form for ``num`` (``%(num)s`` is filled in too)."""
    values.setdefault("num", num)
    text: str = _catalog().ungettext(singular, plural, num)
    return text % values


def lazy_gettext(message: str, /, **values: Any) -> LazyString:
    """Translated when shown: a form's labels and messages, defined at import time."""
    return LazyString(gettext, message, **values)


def current_locale() -> str:
    """The locale of what is being rendered now (see the module's docstring). Asked for by
    every word and amount of a page, so the answer is kept in context variables: a renewal
    batch renders thousands of receipts."""
    forced = _forced.get()
    if forced is not None:
        return forced
    request_context = _cv_request.get(None)
    chosen = _chosen.get()
    if chosen is not None and chosen[0] is request_context:
        return chosen[1]
    if not has_app_context():
        return "en_US"
    fallback = _settings_locale()
    if request_context is None:
        return fallback
    locale = _request_locale(fallback)
    _chosen.set((request_context, locale))
    return locale


#: The locale a block renders in (``rendering_locale``), and the one a request chose, with
#: that request's context (a thread's next request, or a test's, chooses again).
_forced: ContextVar[str | None] = ContextVar("subs_forced_locale", default=None)
_chosen: ContextVar[tuple[object, str] | None] = ContextVar("subs_request_locale", default=None)
#: The catalog of ``_forced``: a batch's receipts look their words up without asking again.
_forced_catalog: ContextVar[NullTranslations | None] = ContextVar("subs_catalog", default=None)


def _catalog() -> NullTranslations:
    catalog = _forced_catalog.get()
    return catalog if catalog is not None else domain.get_translations()


def _settings_locale() -> str:
    state = current_app.extensions.get("subscriptions")
    return state.settings.locale if state is not None else "en_US"


def _request_locale(fallback: str) -> str:
    """The host's selector, else the browser's best of our languages, else the setting."""
    babel = current_app.extensions.get("babel")
    if babel is not None and babel.locale_selector not in (None, browser_locale):
        return str(host_locale() or fallback)
    return browser_locale() or fallback


def browser_locale() -> str | None:
    """The best of our languages for ``Accept-Language``; the configured locale when it
    speaks that language (``en_GB`` formats like a British host wants)."""
    if not has_request_context():
        return None
    best = request.accept_languages.best_match(LANGUAGES)
    if best is None:
        return None
    fallback = _settings_locale()
    return fallback if _language(fallback) == best else best


@contextmanager
def rendering_locale(locale: str | None) -> Iterator[None]:
    """Render in ``locale`` (an account's preferred language) inside the block; None keeps
    the current one. A job's e-mails and PDFs have no request to choose for them."""
    chosen = locale if locale is not None else current_locale()
    token, catalog = _forced.set(chosen), _forced_catalog.set(translations_for(chosen))
    try:
        yield
    finally:
        _forced_catalog.reset(catalog)
        _forced.reset(token)


def normalize_locale(value: str | None) -> str | None:
    """A locale Babel knows, as ``ja`` or ``ko_KR``; None for anything else."""
    if not value or not isinstance(value, str) or len(value) > 35:
        return None
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0].lower()


# --- formatting: dates, amounts and numbers for the locale (R-MON-4) ----------------------


def money(amount: int, currency: str) -> str:
    """``$13.00``, ``￥15,000``, ``₩150,000``: the currency's minor unit, the locale's way."""
    return format_money(amount, currency, current_locale())


def long_date(day: date | None) -> str:
    """``January 2, 2027``, ``2027年1月2日``, ``2027년 1월 2일``."""
    return "" if day is None else _long_date(day, current_locale())


def medium_date(day: date | None) -> str:
    """``Jan 2, 2027``, ``2027/01/02``, ``2027. 1. 2.``: the shorter date of a quote line."""
    return "" if day is None else _date(day, "medium", current_locale())


def _long_date(day: date, locale: str) -> str:
    return _date(day, "long", locale)


@lru_cache(maxsize=4096)
def _date(day: date, width: str, locale: str) -> str:
    """Remembered per locale and width: a renewal batch's receipts repeat a few dates."""
    return str(format_date(day, format=width, locale=locale))


def number(value: int) -> str:
    """``1,000`` in the locale's way."""
    return _number(value, current_locale())


@lru_cache(maxsize=1024)
def _number(value: int, locale: str) -> str:
    return str(format_decimal(value, locale=locale))


@lru_cache(maxsize=1024)
def pad(text: str, width: int) -> str:
    """``Amount paid:  ``: a label padded to ``width`` columns, so a text e-mail's values line
    up; a wide (CJK) character takes two columns. Remembered: every receipt of a batch pads
    the same few labels (a fifth of a receipt's rendering)."""
    columns = sum(2 if east_asian_width(char) in "WF" else 1 for char in str(text))
    return str(text) + " " * max(1, width - columns)


# --- templates -----------------------------------------------------------------------------


@pass_eval_context
def template_gettext(eval_ctx: EvalContext, message: str, /, **values: Any) -> str:
    """``{{ _subs("Pay %(amount)s now", amount=...) }}``: our domain's words. In an HTML
    template the message may hold markup (ours, reviewed like code) and the values are
    escaped; a text e-mail gets plain text."""
    text = _catalog().ugettext(message)
    return _filled(eval_ctx, text, values)


@pass_eval_context
def template_ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **values: Any
) -> str:
    """``{{ _subs_n("%(num)s day", "%(num)s days", n) }}``: the plural form for ``num``."""
    values.setdefault("num", num)
    text = _catalog().ungettext(singular, plural, num)
    return _filled(eval_ctx, text, values)


def _filled(eval_ctx: EvalContext, text: str, values: dict[str, Any]) -> str:
    if eval_ctx.autoescape:
        safe = {key: escape(value) for key, value in values.items()}
        # The message is ours (reviewed like code, in the catalogs we ship); values are escaped.
        return Markup(text % safe) if values else Markup(text)  # noqa: S704
    return text % values if values else text


def register(app: Flask) -> None:
    """Our translation helpers on ``app``'s templates, and Flask-Babel on the app when the
    host has not set it up (ours then chooses from ``Accept-Language``). A host's own
    Babel, its selector and its catalogs are left as they are. Calling it again (Sandbox
    Pay's pages register it too) changes nothing."""
    if _EXTENSION_KEY in app.extensions:
        return
    try:
        get_babel(app)
    except KeyError:
        Babel(app, locale_selector=browser_locale)
    app.extensions[_EXTENSION_KEY] = domain
    app.add_template_global(template_gettext, "_subs")
    app.add_template_global(template_ngettext, "_subs_n")
    app.add_template_global(current_locale, "subs_locale")
    app.add_template_filter(money, "subs_money")
    app.add_template_filter(long_date, "subs_date")
    app.add_template_filter(medium_date, "subs_medium_date")
    app.add_template_filter(number, "subs_number")
    app.add_template_filter(pad, "subs_pad")
