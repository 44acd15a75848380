"""Renewals on Celery workers: charges per second on 1, 2 and 4 worker processes. By hand::

    .venv/bin/python bench/workers.py [--n 10000] [--workers 1 2 4] [--latency-ms 200]
        [--broker redis://127.0.0.1:6379/0] [--batch 100] [--concurrency 8]

Each case gets a fresh PostgreSQL database built as ``bench/renewals.py`` builds it (one
account bought through the real services, copied N - 1 times), then starts W ``celery
worker`` processes (``tests/celery_host.py``, one pool process each), dispatches the run
(``dispatch_renewals``, what ``renew --on-workers`` does) and waits until every renewal
invoice is written and no charge is open. It samples ``pg_stat_activity`` meanwhile: the
longest a connection was seen ``idle in transaction`` (a transaction open while the process
computes between two statements: rendering receipts, quoting) must stay well under the
gateway's latency, because a batch in flight holds no transaction while it waits for the
gateway (``tests/test_gateway_outside_transactions.py`` proves that directly). The
speed-up per added worker is each case's charges/s over the one-worker case's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.renewals import Case, _databases, _in_child, build  # noqa: E402


def run(n: int, workers: int, args: argparse.Namespace) -> dict[str, float]:
    case = Case("postgres", n, args.latency_ms, args.concurrency, 0, args.pg_url)
    with _databases(case) as (url, sandbox_url):
        _in_child(build, case, url, sandbox_url)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEST_DATABASE_URL": url,
            "TEST_SANDBOX_URL": sandbox_url,
            "TEST_NOW": "2026-04-17T12:00:00",
            "TEST_CONFIG": json.dumps(
                {
                    "SUBSCRIPTIONS_RENEWAL_BATCH_SIZE": args.batch,
                    "SUBSCRIPTIONS_RENEWAL_CONCURRENCY": args.concurrency,
                }
            ),
            "TEST_BROKER_URL": args.broker,
            "TEST_CELERY_QUEUE": queue,
            "SANDBOX_PAY_LATENCY_MS": str(args.latency_ms),
        }
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.celery_host",
                    "worker",
                    "--concurrency=1",
                    f"--hostname=b{i}@%h",
                    f"--queues={queue}",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=WARNING",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )
            for i in range(workers)
        ]
        engine = sa.create_engine(url)
        try:
            time.sleep(5)  # the workers start
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "tests.celery_host",
                    "subscriptions",
                    "renew",
                    "--on-workers",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
            idle_in_tx = 0.0
            while True:
                with engine.connect() as conn:
                    done = (
                        conn.scalar(
                            sa.text("SELECT count(*) FROM subs_invoices WHERE kind = 'renewal'")
                        )
                        >= n
                    )
                    open_ = conn.scalar(
                        sa.text(
                            "SELECT count(*) FROM subs_payments "
                            "WHERE status IN ('pending','unknown')"
                        )
                    )
                    idle_in_tx = max(
                        idle_in_tx,
                        conn.scalar(
                            sa.text(
                                "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)"
                                " FROM pg_stat_activity WHERE datname = current_database()"
                                " AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
                            )
                        )
                        * 1000,
                    )
                if done and not open_:
                    break
                time.sleep(0.5)
            seconds = time.perf_counter() - started
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                p.wait(timeout=60)
            engine.dispose()
    return {"seconds": seconds, "per_s": n / seconds, "idle_in_tx": idle_in_tx}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.2f} (a shared machine: figures are only as quiet as it)")
    print(
        f"{'n':>7} {'workers':>7} {'seconds':>8} {'charges/s':>10}"
        f" {'speed-up':>8} {'idle-in-tx ms':>13}"
    )
    for n in args.n:
        base = None
        for w in args.workers:
            r = run(n, w, args)
            base = base or r["per_s"] / w
            print(
                f"{n:>7} {w:>7} {r['seconds']:>8.1f} {r['per_s']:>10.1f} "
                f"{r['per_s'] / base:>8.2f} {r['idle_in_tx']:>13.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
