"""Filters and globals our templates use, and that a host's overrides can use too."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from flask import Flask

from .core.money import format_money

if TYPE_CHECKING:
    from .extension import State


def register_template_helpers(app: Flask, state: State) -> None:
    """Money is always shown formatted for its currency and the configured locale (R-MON-4)."""

    def money(amount: int, currency: str) -> str:
        return format_money(amount, currency, state.settings.locale)

    def long_date(day: date | None) -> str:
        return "" if day is None else f"{day:%B} {day.day}, {day.year}"

    app.add_template_filter(money, "subs_money")
    app.add_template_filter(long_date, "subs_date")
    app.jinja_env.globals["subs_base_template"] = state.settings.base_template
