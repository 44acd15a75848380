"""Metrics benchmark (R-OPS-2): the metrics page for N subscriptions. Run by hand::

    .venv/bin/python bench/metrics.py [--db sqlite|postgres|both] [--n 10000 100000]
        [--repeat 3]

Each case gets a fresh database, built as ``bench/renewals.py`` builds it (one account buys
Small through the real services, its rows copied N - 1 times with SQLAlchemy Core), so
every subscription is an active Small license with its term, invoice and payment.

What it measures, in the tests' host app with a support person signed in:

- ``metrics()`` (every figure, the MRR history included): seconds, the median of
  ``--repeat`` runs, and its SELECT statements on the billing engine;
- ``GET <prefix>/admin/metrics`` (the page, chart and all) and one CSV: seconds and
  statements;
- that the figures are right: N licenses, MRR = N × $100.00.

The statement count must be the same at every N (aggregate SQL only): the verdict under
the table says whether it is. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._measure import counting  # noqa: E402
from bench.renewals import Case, _databases, _default_pg_url, _host, build  # noqa: E402

PERIOD = (date(2026, 3, 1), date(2026, 4, 1))


@dataclass(frozen=True)
class Result:
    backend: str
    n: int
    metrics_s: float
    metrics_statements: int
    page_s: float
    page_statements: int
    csv_s: float
    mrr: int


def run(case: Case, repeat: int) -> Result:
    with _databases(case) as (url, sandbox_url):
        build(case, url, sandbox_url)
        return _measure(case, url, sandbox_url, repeat)


def _measure(case: Case, url: str, sandbox_url: str, repeat: int) -> Result:
    from flask_subscriptions.services.metrics import metrics
    from tests.hosts import User, db

    with _host(url, sandbox_url) as host:
        sam = User(name="sam", email="sam@support.example", role="support")
        db.session.add(sam)
        db.session.commit()
        times = []
        for _ in range(repeat):
            db.session.commit()
            with counting(db.engine) as count:
                started = time.perf_counter()
                figures = metrics(*PERIOD)
                times.append(time.perf_counter() - started)
                statements = count()
        [usd] = figures.recurring
        assert (usd.licenses, usd.mrr) == (case.n, case.n * 10000), usd
        client = host.app.test_client()
        assert client.post(f"/test-login/{sam.id}").status_code == 200
        page_s, page_statements = _timed(client, db, "/billing/admin/metrics")
        csv_s, _ = _timed(client, db, "/billing/admin/metrics/recurring.csv")
        return Result(
            case.backend,
            case.n,
            statistics.median(times),
            statements,
            page_s,
            page_statements,
            csv_s,
            usd.mrr,
        )


def _timed(client: Any, db: Any, path: str) -> tuple[float, int]:
    with counting(db.engine) as count:
        started = time.perf_counter()
        response = client.get(path, query_string={"from": "2026-03-01", "to": "2026-03-31"})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return elapsed, count()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    base = Case("sqlite", 1, 0.0, 1, 0, args.pg_url)
    results = []
    for backend in backends:
        for n in args.n:
            result = run(replace(base, backend=backend, n=n), args.repeat)
            print(_row(result), flush=True)
            results.append(result)
    print("\n" + "\n".join(_row(r) for r in results))
    for backend in backends:
        counts = {r.metrics_statements for r in results if r.backend == backend}
        flat = "the same at every N" if len(counts) == 1 else f"NOT flat: {sorted(counts)}"
        print(f"{backend}: metrics() statements {flat}")
    return 0


def _row(r: Result) -> str:
    return (
        f"{r.backend:8} N={r.n:>7,}  metrics() {r.metrics_s:7.3f} s, {r.metrics_statements} "
        f"statements  ·  page {r.page_s:7.3f} s, {r.page_statements} statements  ·  "
        f"CSV {r.csv_s:7.3f} s  ·  MRR ${r.mrr / 100:,.2f}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", default=_default_pg_url())
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
