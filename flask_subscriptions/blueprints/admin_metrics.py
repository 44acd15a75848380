"""Metrics for maintainers (R-OPS-2) at ``<prefix>/admin/metrics``: the figures, an MRR
chart drawn on the server as SVG (no script, nothing to load), and every table as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, abort, render_template, request

from ..access import SupportAccess, support_required
from ..core.money import format_money
from ..services.metrics import Metrics, MrrPoint, metrics
from ..state import get_state

bp = Blueprint("metrics", __name__, url_prefix="/metrics")

#: The chart's drawing box, in SVG units.
WIDTH, HEIGHT, LEFT, BOTTOM = 640, 240, 70, 30
DEFAULT_DAYS = 30


def _period() -> tuple[date, date]:
    """``from``/``to`` (inclusive) from the query, by default the last 30 days."""
    today = get_state().today()
    try:
        start = date.fromisoformat(request.args.get("from") or str(today - timedelta(DEFAULT_DAYS)))
        last = date.fromisoformat(request.args.get("to") or str(today))
    except ValueError:
        abort(400, description="Dates are written like 2026-04-01.")
    if last < start or (last - start).days > 3660:
        abort(400, description="The period's end must follow its start, within ten years.")
    return start, last + timedelta(days=1)


@bp.get("")
@support_required()
def page(access: SupportAccess) -> str:
    start, end = _period()
    figures = metrics(start, end)
    return render_template(
        "subscriptions/admin/metrics.html",
        m=figures,
        last_day=end - timedelta(days=1),
        charts=[_chart(figures.history, c) for c in _currencies(figures)],
    )


@dataclass(frozen=True)
class Chart:
    """One currency's MRR line: SVG coordinates and the labels beside them."""

    currency: str
    points: str
    dots: list[tuple[float, float, str, str]]
    top: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM


def _currencies(figures: Metrics) -> list[str]:
    return sorted({c for point in figures.history for c in point.mrr})


def _chart(history: list[MrrPoint], currency: str) -> Chart:
    locale = get_state().settings.locale
    values = [point.mrr.get(currency, 0) for point in history]
    top = max(values) or 1
    step = (WIDTH - LEFT - 10) / max(len(values) - 1, 1)
    dots = []
    for i, (point, value) in enumerate(zip(history, values, strict=True)):
        x = LEFT + i * step
        y = HEIGHT - BOTTOM - (HEIGHT - BOTTOM - 10) * value / top
        dots.append(
            (
                round(x, 1),
                round(y, 1),
                point.day.strftime("%b"),
                format_money(value, currency, locale),
            )
        )
    return Chart(
        currency,
        " ".join(f"{x},{y}" for x, y, _, _ in dots),
        dots,
        format_money(top, currency, locale),
    )


#: The CSV tables: each a header and its rows.
TABLES = ("recurring", "plans", "movements", "dunning", "recovered", "balances", "history")


@bp.get("/<table>.csv")
@support_required()
def table_csv(access: SupportAccess, table: str) -> Response:
    if table not in TABLES:
        abort(404)
    start, end = _period()
    figures = metrics(start, end)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in _rows(figures, table):
        writer.writerow(row)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{table}.csv"'},
    )


Row = list[object]


def _table(head: Row, rows: list[Row]) -> list[Row]:
    return [head, *rows]


def _rows(m: Metrics, table: str) -> list[Row]:
    """Amounts in minor units, as integers (R-MON-1): a spreadsheet divides if it likes."""
    if table == "recurring":
        return _table(
            ["currency", "mrr_minor", "arr_minor", "licenses"],
            [[r.currency, r.mrr, r.arr, r.licenses] for r in m.recurring],
        )
    if table == "plans":
        return _table(
            ["plan", "interval", "licenses"], [[p.plan, p.interval, p.licenses] for p in m.plans]
        )
    if table == "movements":
        last = m.end - timedelta(days=1)
        return _table(
            ["from", "to", "new", "ended", "reactivated"],
            [[m.start, last, m.movements.new, m.movements.ended, m.movements.reactivated]],
        )
    if table in ("dunning", "recovered", "balances"):
        rows = {"dunning": m.in_dunning, "recovered": m.recovered, "balances": m.balances}[table]
        return _table(
            ["currency", "count", "amount_minor"], [[r.currency, r.count, r.amount] for r in rows]
        )
    return _table(
        ["day", "currency", "mrr_minor"],
        [[p.day, c, v] for p in m.history for c, v in sorted(p.mrr.items())],
    )
