"""Renewal benchmark: ``renew_due`` for N due subscriptions, against a floor. Run by hand::

    .venv/bin/python bench/renewals.py [--db sqlite|postgres|both] [--n 1000 10000]
        [--latency-ms 0 200] [--concurrency 100] [--credit-cents 500] [--repeat 1]
        [--gateway-calls batch|each] [--profile]

Each case (backend × N × gateway latency × concurrency) gets a fresh database: a temporary
SQLite file (Sandbox Pay in a second file, as in the tests), or a throwaway PostgreSQL
database as user ``postgres`` on the local server's Unix socket, else 127.0.0.1:5432
(``--pg-url``; see ``_default_pg_url`` for why the socket), dropped afterwards. The
rows are built in one process and renewed in another, so the renewal's memory peak is its
own.

What it builds (``bench/_accounts.py``). One account buys Small ($100.00 a month) through
the real services (``tests.factories.subscribe``: Sandbox Pay customer and Visa card, order,
subscription, plan item, first term, paid purchase invoice and payment, receipt in the
outbox) and gets a balance credit of ``--credit-cents`` through ``append_entry``, so each
renewal uses the balance first and then charges the card (R-REN-1). Its rows, billing and
Sandbox Pay's, are then copied N - 1 times with SQLAlchemy Core.

What it measures: ``renew_due(concurrency=...)`` in an app context with a FrozenClock on
the due day, with Sandbox Pay answering at once or after ``--latency-ms`` per call:

- total seconds, ms per subscription, and the CPU seconds of the process (``cpu s``): the
  renewal is CPU-bound when ``cpu s`` is close to ``total s``;
- SQL statements per subscription on the billing engine (a ``before_cursor_execute``
  listener on the engine, so the pool's threads count; SQLite's ``BEGIN IMMEDIATE`` is a
  statement there, PostgreSQL's BEGIN is not), and Sandbox Pay's apart;
- peak memory: how far the process's peak RSS rose above its RSS before the run (Linux:
  the peak is reset through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``);
  ``--tracemalloc`` adds the Python heap peak, and slows the timed run;
- afterwards, that every subscription has exactly one renewal invoice, paid, with one
  payment, succeeded (the case fails loudly otherwise).

The floor (``bench/_floor.py``): the rows a renewal leaves, for the same N, written with
SQLAlchemy Core in ONE transaction with executemany and no gateway: one read of the
subscriptions, then the term, invoice (already paid), invoice line, payment (already
succeeded), balance entry (when the renewal used a balance), outbox message (a real
receipt's text), and the subscription and item updates; written after the renewal, for the
term after. ``ratio`` = total / floor. The renewal's figure includes Sandbox Pay, which
runs in the same process (its CPU and its own statements); the floor has no gateway.

``--repeat R`` runs each case R times, each on a fresh database, and reports the run with
the median total (its floor, statements and memory with it), listing every run's total:
on a shared machine one run in a few can stall for a moment.

``--gateway-calls each`` has an instant Sandbox Pay answer one call per charge, from the
renewal's threads, as a remote service would (it takes a batch in one call by default: it is
in-process, and the floor has no gateway at all).

Targets: within 3x the floor with the instant gateway; 10,000 renewals in under a minute
with 200 ms per charge; memory flat as N grows. Verdicts are printed under the table,
with the load average: the figures are only as quiet as the machine. ``--profile`` then
runs, per backend, ``renew_due(concurrency=1)`` with the instant gateway under cProfile,
and prints the SQL of one renewal grouped by statement, with its time.

The default run (8 cases) takes a few minutes on a 2-CPU machine, most of it the four
10,000 cases; ``--n`` and ``--latency-ms`` limit it. Not collected by pytest (no ``test_``
prefix). It imports the tests' host app (``tests.hosts``) and purchase factory, so it runs
from a checkout.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # ``tests`` and ``bench``; spawned children inherit sys.path

CATALOG_FILE = ROOT / "example_app" / "catalog.toml"
PURCHASE_DAY = datetime(2026, 3, 17, 12, tzinfo=UTC)
DUE_DAY = datetime(2026, 4, 17, 12, tzinfo=UTC)  # the first term ends: every one is due
PG_SOCKET_DIR = "/var/run/postgresql"
TARGET_RATIO = 3.0
TARGET_SECONDS = 60.0
FLAT_GROWTH = 1.25  # "flat": the largest N peaks at most 25% (+ 5 MB) above the smallest


@dataclass(frozen=True)
class Case:
    backend: str
    n: int
    latency_ms: float
    concurrency: int
    credit_cents: int
    pg_url: str
    tracemalloc: bool = False
    batches: bool = True  # an instant Sandbox Pay takes a batch's charges in one call


@dataclass
class Result:
    case: Case
    setup_s: float = 0.0
    total_s: float = 0.0
    cpu_s: float = 0.0
    statements: int = 0
    gateway_statements: int = 0
    peak_rss_mb: float = 0.0
    peak_heap_mb: float | None = None
    floor_s: float = 0.0
    load: float = 0.0
    verified: str = ""
    runs: list[float] = field(default_factory=list)  # every run's total, with --repeat

    @property
    def ms_per_sub(self) -> float:
        return 1000 * self.total_s / self.case.n

    @property
    def ratio(self) -> float:
        return self.total_s / self.floor_s if self.floor_s else float("nan")


# --- a case: build in one process, renew in another ----------------------------------------


def run_case(case: Case, work: Callable[[Case, str, str], Any] | None = None) -> Any:
    with _databases(case) as urls:
        setup_s = _in_child(build, case, *urls)
        _say(f"{_label(case)}: {case.n} due subscriptions built in {setup_s:.1f} s")
        result = _in_child(work or measure, case, *urls)
    if isinstance(result, Result):
        result.setup_s = setup_s
    return result


def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


@contextmanager
def _databases(case: Case) -> Iterator[tuple[str, str]]:
    """The billing and Sandbox Pay URLs: two SQLite files, or one throwaway PG database."""
    if case.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-renewals-") as tmp:
            yield f"sqlite:///{tmp}/billing.sqlite", f"sqlite:///{tmp}/sandbox-pay.sqlite"
        return
    import psycopg

    admin = sa.make_url(case.pg_url)
    conninfo = {
        "host": admin.host,
        "port": admin.port,
        "user": admin.username,
        "password": admin.password,
        "dbname": admin.database or "postgres",
    }
    name = f"bench_renewals_{secrets.token_hex(4)}"
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(drivername="postgresql+psycopg", database=name)
        text = url.render_as_string(hide_password=False)
        yield text, text
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Host:
    app: Any
    clock: Any
    gateway: Any


@contextmanager
def _host(url: str, sandbox_url: str) -> Iterator[Host]:
    """The tests' host app (payer: the user) in an app context; its pools closed after."""
    from flask_subscriptions import FrozenClock
    from flask_subscriptions.gateways.sandbox import SandboxGateway
    from tests.hosts import create_host, db

    clock = FrozenClock(PURCHASE_DAY)
    gateway = SandboxGateway(sandbox_url, today=lambda: clock.now().date())
    app, _ = create_host(url, clock, gateway, payer="user")
    with app.app_context():
        try:
            yield Host(app, clock, gateway)
        finally:
            db.session.remove()
            gateway.engine().dispose()
            for engine in db.engines.values():
                engine.dispose()


def build(case: Case, url: str, sandbox_url: str) -> float:
    """N active subscriptions due on DUE_DAY, each with a Visa card Sandbox Pay charges."""
    from bench._accounts import CATALOG_TABLES, copy_accounts
    from flask_subscriptions.core.catalog import load_catalog_file
    from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
    from flask_subscriptions.models import metadata as billing_metadata
    from flask_subscriptions.services.balance import append_entry
    from flask_subscriptions.services.catalog import load_catalog
    from tests.factories import new_user, subscribe
    from tests.hosts import db

    started = time.perf_counter()
    with _host(url, sandbox_url) as host:
        db.metadata.create_all(db.engine)
        billing_metadata.create_all(db.engine)
        sandbox_metadata.create_all(host.gateway.engine())  # no table is made at app start
        load_catalog(load_catalog_file(CATALOG_FILE))
        user = new_user("bench")
        subscribe(user)
        if case.credit_cents:
            append_entry(user.billing_id, "credit", case.credit_cents, "USD", "Bench credit")
        db.session.commit()
        billing = [
            t
            for m in (db.metadata, billing_metadata)
            for t in m.sorted_tables
            if t.name not in CATALOG_TABLES
        ]
        sandbox = host.gateway.engine()
        copy_accounts(case.n - 1, [(db.engine, billing), (sandbox, sandbox_metadata.sorted_tables)])
        for engine in (db.engine, sandbox):
            with engine.begin() as conn:  # fresh statistics, as autovacuum would leave them
                conn.exec_driver_sql("ANALYZE")
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as conn:  # the copied rows on disk now, not mid-run
                conn.exec_driver_sql("CHECKPOINT")
    return time.perf_counter() - started


# --- the renewal ---------------------------------------------------------------------------


def measure(case: Case, url: str, sandbox_url: str) -> Result:
    from bench._measure import counting, memory_peak
    from flask_subscriptions.services.renewals import count_due, renew_due
    from tests.hosts import db

    result = Result(case, load=os.getloadavg()[0])
    with _host(url, sandbox_url) as host:
        host.clock.set(DUE_DAY)
        host.gateway.latency = case.latency_ms / 1000
        host.gateway.takes_batches = case.batches
        due = count_due()
        db.session.commit()  # no transaction held during the run (SQLite: no write lock)
        assert due == case.n, (due, case.n)
        progress = _progress(due)
        with (
            counting(db.engine) as billing_count,
            counting(host.gateway.engine()) as gateway_count,
            memory_peak(case.tracemalloc) as peak,
        ):
            started, cpu = time.perf_counter(), time.process_time()
            report = renew_due(concurrency=case.concurrency, progress=progress)
            result.total_s = time.perf_counter() - started
            result.cpu_s = time.process_time() - cpu
        print(file=sys.stderr)
        result.statements, result.gateway_statements = billing_count(), gateway_count()
        result.peak_rss_mb, result.peak_heap_mb = peak()
        assert (report.renewed, report.failed, report.pending) == (case.n, 0, 0), str(report)
        result.verified = verify()
        result.floor_s = floor(case.credit_cents > 0)
    return result


def _progress(due: int) -> Callable[[int], None]:
    started, done = time.perf_counter(), 0

    def progress(count: int) -> None:
        nonlocal done
        done += count
        elapsed = time.perf_counter() - started
        print(f"  renewed {done}/{due} in {elapsed:.1f} s", end="\r", file=sys.stderr)

    return progress


def verify() -> str:
    """Exactly one renewal invoice per subscription, paid, with one succeeded payment."""
    from flask_subscriptions.models import Invoice, Payment, Subscription
    from tests.hosts import db

    session = db.session
    renewal = Invoice.kind == "renewal"
    invoices = Counter(
        dict(
            session.execute(
                sa.select(Invoice.subscription_id, sa.func.count())
                .where(renewal)
                .group_by(Invoice.subscription_id)
            ).all()
        )
    )
    payments = Counter(
        session.execute(
            sa.select(Invoice.subscription_id, Payment.status)
            .join(Payment, Payment.invoice_id == Invoice.id)
            .where(renewal)
        ).all()
    )
    unpaid = session.scalar(
        sa.select(sa.func.count()).select_from(Invoice).where(renewal, Invoice.status != "paid")
    )
    subscriptions = session.scalars(sa.select(Subscription.id)).all()
    session.commit()
    problems = [
        f"subscription {s}: {invoices[s]} invoices" for s in subscriptions if invoices[s] != 1
    ]
    problems += [f"subscription {s}: {n} {status} payments" for (s, status), n in payments.items()]
    problems = [p for p in problems if not p.endswith(": 1 succeeded payments")]
    if unpaid:
        problems.append(f"{unpaid} renewal invoices not paid")
    if sum(payments.values()) != len(subscriptions):
        problems.append(f"{sum(payments.values())} payments for {len(subscriptions)} renewals")
    assert not problems, "; ".join(problems[:5])
    return f"{len(subscriptions)} × (1 renewal invoice, paid; 1 payment, succeeded)"


# --- the floor -----------------------------------------------------------------------------


def floor(balance: bool) -> float:
    """Seconds to write what a renewal leaves, for every subscription, in one transaction."""
    from bench._floor import write_floor
    from tests.hosts import db

    with db.engine.connect() as conn:
        receipt = conn.execute(
            sa.text(
                "SELECT subject, text_body, html_body, recipients FROM subs_outbox "
                "WHERE kind = 'renewal_receipt' LIMIT 1"
            )
        ).one()
        conn.rollback()
    started = time.perf_counter()
    with db.engine.begin() as conn:
        write_floor(conn, balance, receipt._mapping)
    return time.perf_counter() - started


# --- the profile ---------------------------------------------------------------------------


def profile(case: Case, url: str, sandbox_url: str) -> None:
    """``renew_due(concurrency=1)`` under cProfile, and the SQL of one renewal."""
    from bench._measure import statement_log
    from flask_subscriptions.services.renewals import renew_due
    from tests.hosts import db

    with _host(url, sandbox_url) as host:
        host.clock.set(DUE_DAY)
        host.gateway.latency = 0
        db.session.commit()
        profiler = cProfile.Profile()
        with statement_log(db.engine) as log:
            started = time.perf_counter()
            profiler.runcall(renew_due, concurrency=1)
            elapsed = time.perf_counter() - started
    n = case.n
    stats_file = Path(tempfile.gettempdir()) / f"renewals-{case.backend}-{n}.prof"
    profiler.dump_stats(stats_file)
    print(f"\n=== profile: {case.backend} N={n}, concurrency 1, instant gateway ===")
    print(f"(the whole profile: python -m pstats {stats_file})")
    print(f"{elapsed:.1f} s under cProfile: {1000 * elapsed / n:.1f} ms per subscription")
    print("\nSQL of one renewal, by statement: count, ms (billing engine)")
    for sql, (count, seconds) in sorted(log.items(), key=lambda kv: -kv[1][1]):
        print(f"  {count / n:5.2f} {1000 * seconds / n:6.3f} ms  {sql}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(30)
        print(f"\n--- top 30 by {order} ---")
        print(out.getvalue().split("\n", 6)[-1].rstrip())


# --- the command ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    cases = [
        Case(
            b,
            n,
            latency,
            c,
            args.credit_cents,
            args.pg_url,
            tracemalloc=args.tracemalloc,
            batches=args.gateway_calls == "batch",
        )
        for b in backends
        for latency in args.latency_ms
        for c in args.concurrency
        for n in args.n
    ]
    results = []
    for case in cases:
        runs = []
        for _ in range(args.repeat):
            runs.append(run_case(case))
            _say(_summary(runs[-1]))
        results.append(_median(runs))
    print("\n" + _table(results) + "\n\n" + "\n".join(_verdicts(results)), flush=True)
    if args.profile:
        for backend in backends:
            run_case(replace(cases[0], backend=backend, n=min(args.n)), profile)
    return 0


def _default_pg_url() -> str:
    """The local server's Unix socket when it has one, else 127.0.0.1:5432.

    Over loopback TCP, a batch's pipelined INSERT of several hundred kilobytes (the receipts)
    now and then overflows the server's receive buffer and waits out TCP's 200 ms minimum
    retransmission timeout: noise of the machine's network stack, in both the renewal and
    the floor. ``--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` measures it.
    """
    if Path(PG_SOCKET_DIR).is_dir():
        return f"postgresql+psycopg://postgres@/postgres?host={PG_SOCKET_DIR}"
    return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _median(runs: list[Result]) -> Result:
    """The run with the median total, keeping every run's total: one run on a shared machine
    can stall for a moment (a disk, the database's background work)."""
    ordered = sorted(runs, key=lambda r: r.total_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    return replace(chosen, runs=[r.total_s for r in runs])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add = parser.add_argument
    add("--db", choices=["sqlite", "postgres", "both"], default="both")
    add("--n", type=int, nargs="+", default=[1000, 10000], help="due subscriptions")
    add("--latency-ms", type=float, nargs="+", default=[0, 200], help="per gateway call")
    add(
        "--concurrency",
        type=int,
        nargs="+",
        default=[100],
        help="charges in flight (renew_due's threads)",
    )
    add("--credit-cents", type=int, default=500, help="each account's balance (0: none)")
    add(
        "--gateway-calls",
        choices=["batch", "each"],
        default="batch",
        help="an instant Sandbox Pay takes each batch in one call, or one call per charge",
    )
    add("--repeat", type=int, default=1, help="runs per case, each on a fresh database; the median")
    add("--pg-url", default=_default_pg_url())
    add("--tracemalloc", action="store_true", help="also the Python heap peak (slower run)")
    add("--profile", action="store_true", help="then profile renewals, per backend")
    return parser


HEADER = (
    "backend", "N", "latency ms", "conc", "total s", "ms/sub", "cpu s", "stmts/sub",
    "gw stmts/sub", "peak MB", "floor s", "ratio", "load",
)  # fmt: skip


def _cells(r: Result) -> tuple[str, ...]:
    c = r.case
    peak = f"{r.peak_rss_mb:.1f}" + (f" ({r.peak_heap_mb:.1f} heap)" if r.peak_heap_mb else "")
    return (
        c.backend, str(c.n), f"{c.latency_ms:g}", str(c.concurrency), f"{r.total_s:.2f}",
        f"{r.ms_per_sub:.2f}", f"{r.cpu_s:.1f}", f"{r.statements / c.n:.1f}",
        f"{r.gateway_statements / c.n:.1f}", peak, f"{r.floor_s:.2f}", f"{r.ratio:.1f}x",
        f"{r.load:.1f}",
    )  # fmt: skip


def _table(results: list[Result]) -> str:
    rows = [HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [" | ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _summary(r: Result) -> str:
    return (
        f"{_label(r.case)}: {r.total_s:.2f} s ({r.ms_per_sub:.2f} ms/sub, cpu {r.cpu_s:.1f} s), "
        f"floor {r.floor_s:.2f} s, ratio {r.ratio:.1f}x, peak {r.peak_rss_mb:.1f} MB, "
        f"load {r.load:.1f}; verified {r.verified}"
    )


def _verdicts(results: list[Result]) -> list[str]:
    lines = [f"machine: {os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}"]
    for r in results:
        if len(r.runs) > 1:
            totals = ", ".join(f"{t:.2f}" for t in r.runs)
            lines.append(f"runs, {_label(r.case)}: {totals} s; the median is in the table")
    for r in results:
        c, label = r.case, _label(r.case)
        if c.latency_ms == 0:
            met = "met" if r.ratio <= TARGET_RATIO else "NOT met"
            lines.append(f"within {TARGET_RATIO:g}x floor, {label}: {r.ratio:.1f}x — {met}")
        if c.n >= 10_000 and c.latency_ms >= 200:
            met = "met" if r.total_s < TARGET_SECONDS else "NOT met"
            lines.append(f"10,000 in < {TARGET_SECONDS:g} s, {label}: {r.total_s:.1f} s — {met}")
    groups: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for r in results:
        groups[(r.case.backend, r.case.latency_ms, r.case.concurrency)].append(r)
    for (backend, latency, concurrency), rs in groups.items():
        small, large = min(rs, key=lambda r: r.case.n), max(rs, key=lambda r: r.case.n)
        if small is large:
            continue
        flat = large.peak_rss_mb <= small.peak_rss_mb * FLAT_GROWTH + 5
        lines.append(
            f"memory flat, {backend} latency={latency:g}ms concurrency={concurrency}: "
            f"N={small.case.n} {small.peak_rss_mb:.1f} MB, N={large.case.n} "
            f"{large.peak_rss_mb:.1f} MB — {'met' if flat else 'NOT met'}"
        )
    return lines


def _label(c: Case) -> str:
    calls = "" if c.batches or c.latency_ms else " one-call-per-charge"
    return f"{c.backend} N={c.n} latency={c.latency_ms:g}ms concurrency={c.concurrency}{calls}"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
