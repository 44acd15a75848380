"""The jobs on real Celery workers (R-OPS-4, R-REN-2, R-DUN-1): a real broker (Redis, and
RabbitMQ), PostgreSQL, and ``celery worker`` processes (two, concurrency 2) started here.

What they did is read where a person would see it: Sandbox Pay's own records of charges,
the invoices, and the outbox. A test needs its broker: on a machine without it the test
skips, and in CI (``CI=true``) it fails instead, as ``make test`` promises nothing skips.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from kombu import Connection
from sqlalchemy import select

from flask_subscriptions.gateways.sandbox import LATENCY_ENV, SandboxGateway
from flask_subscriptions.models import Invoice, OutboxMessage, Payment, Subscription

from .factories import new_user, subscribe
from .flows import FIRST_CHARGE_ONLY
from .hosts import db
from .test_crash_recovery import _visa_licenses
from .test_renewal_processes import _count

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]
ROOT = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI") == "true"
DUE = "2026-04-17T12:00:00"
BROKERS = {
    "redis": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)  # an AMQP URL ends in "//" (the default vhost): parse, don't split
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError:
        return False
    return True


@dataclass
class Cluster:
    """Workers, beat and CLI commands of one test, on one queue of its own."""

    broker: str
    database_url: str
    sandbox_url: str
    logs: Path
    queue: str = field(default_factory=lambda: f"subs-test-{uuid.uuid4().hex[:12]}")
    config: dict[str, object] = field(default_factory=dict)
    latency_ms: int = 0
    since: float = field(default_factory=time.time)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, **more: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEST_DATABASE_URL": self.database_url,
            "TEST_SANDBOX_URL": self.sandbox_url,
            "TEST_NOW": DUE,
            "TEST_NOW_SINCE": str(self.since),  # a ticking clock: leases run out
            "TEST_CONFIG": json.dumps(self.config),
            "TEST_BROKER_URL": self.broker,
            "TEST_CELERY_QUEUE": self.queue,
            LATENCY_ENV: str(self.latency_ms),
            **more,
        }

    def start(self, name: str, *args: str, **env: str) -> None:
        db.session.commit()
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.celery_host", *args],
                cwd=ROOT,
                env=self.env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches every child
            )

    def worker(self, name: str, **env: str) -> None:
        self.start(
            name,
            "worker",
            "--concurrency=2",
            "--pool=prefork",
            f"--hostname={name}@%h",
            f"--queues={self.queue}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            **env,
        )

    def wait_ready(self, *names: str, timeout: float = 60) -> None:
        _until(lambda: all("ready." in self.log(n) for n in names), timeout, self.log_tail)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def log_tail(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.processes)

    def cli(self, *args: str) -> str:
        db.session.commit()
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "tests.celery_host", "subscriptions", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def kill(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        with Connection(self.broker) as connection:  # leave nothing on a shared broker
            connection.default_channel.queue_delete(self.queue)


@pytest.fixture
def cluster_for(
    database_url: str, sandbox_url: str, tmp_path: Path
) -> Iterator[Callable[[str], Cluster]]:
    made: list[Cluster] = []

    def make(broker: str) -> Cluster:
        url = BROKERS[broker]
        if not _reachable(url):
            if CI:
                pytest.fail(f"{broker} is required in CI and is not reachable at {url}")
            pytest.skip(f"{broker} not reachable at {url}")
        made.append(Cluster(url, database_url, sandbox_url, tmp_path))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop()


def _until(done: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout} s\n{why()}")
        time.sleep(0.25)
        db.session.rollback()


def _renewed(n: int) -> Callable[[], bool]:
    """Every renewal invoice written and none of its charges still open."""

    def done() -> bool:
        invoices = _count(Invoice, Invoice.kind == "renewal")
        return invoices >= n and _count(Payment, Payment.status.in_(("pending", "unknown"))) == 0

    return done


def _exactly_once(gateway: SandboxGateway, licenses: int) -> None:
    """Each license has one renewal invoice, paid, and Sandbox Pay took its charge once."""
    db.session.expire_all()
    terms = Counter(
        db.session.scalars(select(Invoice.subscription_id).where(Invoice.kind == "renewal"))
    )
    assert len(terms) == licenses and set(terms.values()) == {1}
    keys = set(
        db.session.scalars(
            select(Payment.idempotency_key)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.kind == "renewal", Invoice.status == "paid")
        )
    )
    assert len(keys) == licenses
    charged = Counter(c.idempotency_key for c in gateway.charges() if c.status == "succeeded")
    assert all(charged[key] == 1 for key in keys)  # Sandbox Pay's own records: once each
    assert sum(charged.values()) == 2 * licenses  # the purchases, then the renewals
    ends = set(db.session.scalars(select(Subscription.current_term_end)))
    assert ends == {date(2026, 5, 17)}


LICENSES = 1000


def test_two_workers_renew_1000_subscriptions_exactly_once_and_a_failing_card_enters_dunning_R_OPS_4_R_REN_2_R_DUN_1(  # noqa: E501
    app: Flask, catalog: None, gateway: SandboxGateway, cluster_for: Callable[[str], Cluster]
) -> None:
    """R-OPS-4, R-REN-2, R-DUN-1: `flask subscriptions renew --on-workers` enqueues one task
    per batch on Redis; two workers (concurrency 2) renew 1,000 licenses, each charged once
    in Sandbox Pay's records; a card that now declines enters dunning from a worker, and
    `dunning --on-workers` hands it to them."""
    _visa_licenses(gateway, LICENSES)
    declining = subscribe(new_user("declining"), card=FIRST_CHARGE_ONLY)
    db.session.commit()
    cluster = cluster_for("redis")
    cluster.config = {
        "SUBSCRIPTIONS_RENEWAL_BATCH_SIZE": 50,
        "SUBSCRIPTIONS_RENEWAL_CONCURRENCY": 4,
    }
    cluster.latency_ms = 2  # one call per charge, as to a remote service
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.wait_ready("w1", "w2")

    out = cluster.cli("renew", "--on-workers")
    assert "Enqueued subscriptions.renew: 1001 due subscriptions, 21 tasks enqueued." in out

    _until(_renewed(LICENSES + 1), 120, cluster.log_tail)
    _until(lambda: _count(Subscription, Subscription.claimed_by.is_not(None)) == 0, 30, str)
    declined = db.session.get_one(Subscription, declining.id)
    db.session.refresh(declined)
    assert declined.payment_failed_on == date(2026, 4, 17)  # in dunning (R-DUN-1)
    failed = _count(
        OutboxMessage,
        OutboxMessage.kind == "payment_failed",
        OutboxMessage.account_id == declined.account_id,
    )
    assert failed == 1
    both = {n for n in ("w1", "w2") if "succeeded" in cluster.log(n)}
    assert both == {"w1", "w2"}, cluster.log_tail()  # the work really was shared

    out = cluster.cli("dunning", "--on-workers")
    assert "Enqueued subscriptions.dunning: 1 unpaid subscriptions, 1 tasks enqueued." in out
    _until(
        lambda: "subscriptions.dunning_batch" in cluster.log("w1") + cluster.log("w2"),
        30,
        cluster.log_tail,
    )
    db.session.rollback()
    _exactly_once_without(gateway, LICENSES, declining.account_id)


def _exactly_once_without(gateway: SandboxGateway, licenses: int, account_id: str) -> None:
    """:func:`_exactly_once`, the declining account's rows aside."""
    db.session.expire_all()
    terms = Counter(
        db.session.scalars(
            select(Invoice.subscription_id).where(
                Invoice.kind == "renewal", Invoice.account_id != account_id
            )
        )
    )
    assert len(terms) == licenses and set(terms.values()) == {1}
    paid = set(
        db.session.scalars(
            select(Payment.idempotency_key)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.kind == "renewal", Invoice.status == "paid")
        )
    )
    assert len(paid) == licenses
    charged = Counter(c.idempotency_key for c in gateway.charges() if c.status == "succeeded")
    assert all(charged[key] == 1 for key in paid)  # Sandbox Pay's own records: once each
    assert sum(charged[key] for key in paid) == licenses


KILLED = 300
#: The killed pool process dies at its tenth charge: a fifth of its first batch of 50.
CRASH_AT = 10


def _run_with_a_dying_worker(
    gateway: SandboxGateway, cluster: Cluster, lease: int, **crash: str
) -> tuple[Cluster, Path]:
    """KILLED licenses renewed on two workers, batches of 50, by `renew --on-workers`; w1
    dies at its CRASH_AT-th charge (``crash``: how much of it dies) and writes its pid to
    the mark it returns."""
    _visa_licenses(gateway, KILLED)
    db.session.commit()
    cluster.config = {
        "SUBSCRIPTIONS_RENEWAL_BATCH_SIZE": 50,
        "SUBSCRIPTIONS_RENEWAL_CONCURRENCY": 4,
        "SUBSCRIPTIONS_CLAIM_LEASE_SECONDS": lease,
    }
    cluster.latency_ms = 20
    mark = cluster.logs / "killed-pid"
    cluster.worker("w1", TEST_CRASH_AFTER_CHARGES=str(CRASH_AT), TEST_CRASH_MARK=str(mark), **crash)
    cluster.worker("w2")
    cluster.wait_ready("w1", "w2")
    cluster.cli("renew", "--on-workers")
    return cluster, mark


def test_a_worker_killed_mid_batch_loses_nothing_and_charges_nothing_twice_R_OPS_4_R_REN_2(
    app: Flask, catalog: None, gateway: SandboxGateway, cluster_for: Callable[[str], Cluster]
) -> None:
    """R-OPS-4, R-REN-2: the pool process renewing a batch is SIGKILLed (as the OOM
    killer would) at its tenth charge, after it claimed its 50 licenses and committed their
    terms and pending payments (which gave the claims back: the next terms are not due):
    some charges reached Sandbox Pay, the rest never did, and no outcome is recorded.
    Celery gives its message back at once (``reject_on_worker_lost``); the run's sweep,
    once the dead process's lease has run out, settles its payments from their keys
    (recorded where Sandbox Pay took them, charged now where it never saw them), and the
    run completes: every term renewed once and charged once."""
    cluster, mark = _run_with_a_dying_worker(gateway, cluster_for("redis"), lease=6)

    _until(lambda: mark.exists() and mark.read_text() != "", 60, cluster.log_tail)
    # The other processes finish the run; what stays pending is the dead process's batch,
    # which nothing touches until its lease has run out (its terms were written, its
    # licenses are not due: no other batch claims them).
    pending = Payment.status == "pending"
    _until(
        lambda: (
            _count(Invoice, Invoice.kind == "renewal") == KILLED and _count(Payment, pending) == 50
        ),
        30,
        cluster.log_tail,
    )
    left = set(db.session.scalars(select(Payment.idempotency_key).where(pending)))
    seen = {c.idempotency_key for c in gateway.charges()} & left
    assert CRASH_AT <= len(seen) < len(left)  # mid-batch: some charged, some never sent

    _until(_renewed(KILLED), 90, cluster.log_tail)
    assert "SIGKILL" in cluster.log("w1"), cluster.log_tail()
    _exactly_once(gateway, KILLED)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_whole_worker_killed_mid_batch_loses_nothing_and_charges_nothing_twice_R_OPS_4_R_REN_2(
    app: Flask,
    catalog: None,
    gateway: SandboxGateway,
    cluster_for: Callable[[str], Cluster],
    broker: str,
) -> None:
    """R-OPS-4, R-REN-2: a whole worker, its main process and every pool process, is
    SIGKILLed at once at its tenth charge (its machine lost): no process is left to tell
    the broker. RabbitMQ gives its unacknowledged messages back when its connection drops;
    Redis after their visibility timeout (three leases). Either way the other worker and
    the run's sweep finish the run: every term renewed once and charged once."""
    cluster, _ = _run_with_a_dying_worker(
        gateway, cluster_for(broker), lease=5, TEST_CRASH_WHOLE_GROUP="1"
    )

    _until(lambda: cluster.processes["w1"].poll() is not None, 60, cluster.log_tail)
    assert cluster.processes["w1"].returncode == -signal.SIGKILL
    left = set(
        db.session.scalars(select(Payment.idempotency_key).where(Payment.status == "pending"))
    )
    assert left  # the dead worker's batch was mid-way: its payments still open

    _until(_renewed(KILLED), 120, cluster.log_tail)
    _until(lambda: _count(Subscription, Subscription.claimed_by.is_not(None)) == 0, 30, str)
    _exactly_once(gateway, KILLED)


BEAT = 40


def test_beat_renews_and_delivers_the_receipts_on_rabbitmq_R_OPS_4_R_REN_3(
    app: Flask, catalog: None, gateway: SandboxGateway, cluster_for: Callable[[str], Cluster]
) -> None:
    """R-OPS-4, R-REN-3: nobody runs a command: `celery beat` dispatches every job each
    second (RabbitMQ as the broker), a worker renews, and the receipts are delivered by
    mail tasks fanned out the same way. Runs dispatched over each other do nothing twice."""
    _visa_licenses(gateway, BEAT)
    db.session.commit()
    cluster = cluster_for("rabbitmq")
    cluster.config = {"SUBSCRIPTIONS_RENEWAL_BATCH_SIZE": 10, "SUBSCRIPTIONS_MAIL_BATCH_SIZE": 10}
    cluster.worker("w1")
    cluster.wait_ready("w1")
    schedule = cluster.logs / "beat-schedule"
    cluster.start(
        "beat", "beat", f"--schedule={schedule}", "--loglevel=INFO", TEST_BEAT_SECONDS="1"
    )

    _until(_renewed(BEAT), 60, cluster.log_tail)
    receipts = (OutboxMessage.kind == "renewal_receipt", OutboxMessage.status == "sent")
    _until(lambda: _count(OutboxMessage, *receipts) == BEAT, 60, cluster.log_tail)
    assert "Sending due task subscriptions.renew" in cluster.log("beat")
    _exactly_once(gateway, BEAT)
