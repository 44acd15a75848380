"""Renewal with real processes (R-REN-2): four workers at once, and a worker killed midway."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_subscriptions.gateways.sandbox import LATENCY_ENV
from flask_subscriptions.models import Invoice, OutboxMessage, Payment, Subscription
from flask_subscriptions.models import Term as TermRow

from .factories import new_user, subscribe
from .hosts import db

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _flask(
    database_url: str,
    sandbox_url: str,
    now: str,
    *args: str,
    crash: bool = False,
    latency_ms: int = 0,
    **switches: str,
) -> subprocess.Popen[str]:
    """``flask subscriptions *args`` in a process of its own; ``switches`` are more of
    ``tests/process_host.py``'s environment variables (``TEST_CRASH_BEFORE_CHARGE="1"``)."""
    db.session.commit()  # hold no SQLite lock against the worker we start
    env = {
        **os.environ,
        "TEST_DATABASE_URL": database_url,
        "TEST_SANDBOX_URL": sandbox_url,
        "TEST_NOW": now,
        "PYTHONPATH": str(ROOT),
        LATENCY_ENV: str(latency_ms),
        **switches,
    }
    if crash:
        env["TEST_CRASH_AFTER_CHARGE"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "tests.process_host", "subscriptions", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _count(model: type, *where: object) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))  # type: ignore[arg-type]


@pytest.mark.parametrize("latency_ms", [0, 2], ids=["batch-in-one-call", "one-call-per-charge"])
def test_four_processes_renew_200_subscriptions_exactly_once_R_REN_2(
    app: Flask,
    catalog: None,
    database_url: str,
    sandbox_url: str,
    gateway: object,
    is_postgres: bool,
    latency_ms: int,
) -> None:
    """R-REN-2: four `flask subscriptions renew` at once: each term invoiced once and
    charged once (counted in Sandbox Pay's own records), none skipped. 200 subscriptions on
    PostgreSQL, the production target; 50 on SQLite, whose writers take turns anyway. Sandbox
    Pay takes each batch in one call when instant, one call per charge with a latency."""
    n = 200 if is_postgres else 50
    owners = [new_user(f"p{i}") for i in range(n)]
    for owner in owners:
        subscribe(owner)
    db.session.commit()
    threads = "4" if is_postgres else "1"  # SQLite has one write lock for everybody
    workers = [
        _flask(
            database_url,
            sandbox_url,
            "2026-04-17T12:00:00",
            "renew",
            "--concurrency",
            threads,
            latency_ms=latency_ms,
        )
        for _ in range(4)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    renewed = sum(int(out.split("Renewed ")[1].split(",")[0]) for out in outputs)
    assert renewed == n, outputs
    assert all("Renewed" in out for out in outputs)  # every worker ran and reported
    db.session.expire_all()
    assert _count(Invoice, Invoice.kind == "renewal") == n
    assert _count(Invoice, Invoice.kind == "renewal", Invoice.status == "paid") == n
    assert _count(TermRow) == 2 * n
    assert _count(Payment) == 2 * n
    ends = set(db.session.scalars(select(Subscription.current_term_end)))
    assert ends == {date(2026, 5, 17)}
    charges = gateway.charges()  # type: ignore[attr-defined]
    assert len(charges) == 2 * n
    assert len({c.idempotency_key for c in charges}) == 2 * n
    receipts = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "renewal_receipt")
    ).all()
    assert sorted(m.recipients for m in receipts) == sorted([o.email] for o in owners)


@pytest.mark.parametrize("latency_ms", [0, 2], ids=["batch-in-one-call", "one-call-per-charge"])
def test_worker_killed_after_the_charge_is_healed_without_charging_again_R_REN_2(
    app: Flask,
    catalog: None,
    database_url: str,
    sandbox_url: str,
    gateway: object,
    latency_ms: int,
) -> None:
    """R-REN-2: SIGKILL after the gateway charged and before the outcome was recorded; the
    next run looks the charge up by its key: no second charge, and the term is renewed."""
    subscription = subscribe(new_user("crashy"))
    db.session.commit()
    killed = _flask(
        database_url,
        sandbox_url,
        "2026-04-17T12:00:00",
        "renew",
        crash=True,
        latency_ms=latency_ms,
    )
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    db.session.expire_all()
    [pending] = db.session.scalars(select(Payment).where(Payment.status == "pending")).all()
    assert gateway.charge_count(pending.idempotency_key) == 1  # type: ignore[attr-defined]
    rerun = _flask(database_url, sandbox_url, "2026-04-17T12:10:00", "renew")
    output = rerun.communicate(timeout=120)[0]
    assert rerun.returncode == 0, output
    db.session.expire_all()
    assert db.session.get(Payment, pending.id).status == "succeeded"
    assert gateway.charge_count(pending.idempotency_key) == 1  # type: ignore[attr-defined]
    assert gateway.charge_count() == 2  # type: ignore[attr-defined]
    invoice = db.session.scalar(select(Invoice).where(Invoice.kind == "renewal"))
    assert (invoice.status, invoice.period_start) == ("paid", date(2026, 4, 17))
    assert db.session.get(Subscription, subscription.id).current_term_end == date(2026, 5, 17)
    assert _count(OutboxMessage, OutboxMessage.kind == "renewal_receipt") == 1


def test_worker_killed_before_the_charge_charges_on_the_next_run_R_REN_2(
    app: Flask, catalog: None, database_url: str, sandbox_url: str, gateway: object
) -> None:
    """A worker that died before the gateway saw the charge: the next run sends it, once."""
    from flask_subscriptions.services.renewal_batch import open_batch

    subscribe(new_user("early"))
    from datetime import UTC, datetime

    from flask_subscriptions import get_state

    get_state().clock.set(datetime(2026, 4, 17, 12, tzinfo=UTC))  # type: ignore[attr-defined]
    batch = open_batch("dead-worker", 10)  # committed; then the process "dies"
    assert batch is not None
    [step] = batch.reserved
    rerun = _flask(database_url, sandbox_url, "2026-04-17T12:10:00", "renew")
    output = rerun.communicate(timeout=120)[0]
    assert rerun.returncode == 0, output
    db.session.expire_all()
    assert db.session.get(Payment, step.payment_id).status == "succeeded"
    assert gateway.charge_count() == 2  # type: ignore[attr-defined]
