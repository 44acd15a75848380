"""A host app for tests that run real processes (``flask --app tests.process_host ...``).

Configured from the environment: ``TEST_DATABASE_URL``, ``TEST_SANDBOX_URL``, ``TEST_NOW``
(the billing clock, an ISO date-time in UTC), ``TEST_CRASH_AFTER_CHARGE`` (kill this
process with SIGKILL right after the payment service answered, before the outcome is
recorded), ``TEST_CRASH_BEFORE_CHARGE`` (kill it right before the payment service is
called: the pending payments are committed, the service never saw them),
``TEST_CRASH_AFTER_CHARGES`` with ``TEST_CRASH_MARK`` (the first process of those sharing
the mark file to have made that many charges is killed, in the middle of its batch: some of
its pending payments reached the service, some never did; the mark, which names the dead
process, spares the others and the pool process started in its place) and
``TEST_LOOKUP_ANSWER_DELAY_MS`` (the answer to a charge lookup reaches this process that
much later: it was true when the service read it, and may be stale when it arrives).

``TEST_NOW_SINCE`` (a Unix time) makes the clock tick: it reads ``TEST_NOW`` at that real
moment and moves with real time, the same in every process, so claim leases run out while
workers run. ``TEST_CONFIG`` is JSON of more app settings (``SUBSCRIPTIONS_*``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from flask import Flask

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.base import ChargeRequest, ChargeResult, GatewayError
from flask_subscriptions.gateways.sandbox import SandboxGateway

from .hosts import create_host


class CrashingGateway(SandboxGateway):
    """Sandbox Pay, and then the process dies as if the machine lost power."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        _crash_if_asked("TEST_CRASH_BEFORE_CHARGE")
        result = super().charge(request)
        _crash_if_asked("TEST_CRASH_AFTER_CHARGE")
        _crash_once_after_charges()
        return result

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | GatewayError]:
        _crash_if_asked("TEST_CRASH_BEFORE_CHARGE")
        answers = super().charge_many(requests)
        _crash_if_asked("TEST_CRASH_AFTER_CHARGE")
        return answers

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        """Read now, answered later: a slow network on the way back."""
        answer = super().lookup_charge(idempotency_key)
        time.sleep(float(os.environ.get("TEST_LOOKUP_ANSWER_DELAY_MS") or 0) / 1000)
        return answer


def _crash_if_asked(switch: str) -> None:
    if os.environ.get(switch):
        os.kill(os.getpid(), signal.SIGKILL)


#: This process's charges so far (``next`` is atomic: charges run on several threads).
_charges_made = itertools.count(1)


def _crash_once_after_charges() -> None:
    """A worker's pool process dies mid-batch, once per test: the mark is created
    exclusively, so of the processes that reach the count only the first one dies."""
    after, mark = os.environ.get("TEST_CRASH_AFTER_CHARGES"), os.environ.get("TEST_CRASH_MARK")
    if not after or not mark:
        return
    if next(_charges_made) < int(after):
        return
    try:
        fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    if os.environ.get("TEST_CRASH_WHOLE_GROUP"):  # the worker and its pool: a lost machine
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class TickingClock:
    """``start`` at the real moment ``since`` (a Unix time), moving with real time."""

    def __init__(self, start: datetime, since: float) -> None:
        self.start, self.since = start, since

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.time() - self.since)


def create_app() -> Flask:
    now = datetime.fromisoformat(os.environ["TEST_NOW"]).replace(tzinfo=UTC)
    since = os.environ.get("TEST_NOW_SINCE")
    clock = TickingClock(now, float(since)) if since else FrozenClock(now)
    gateway = CrashingGateway(os.environ["TEST_SANDBOX_URL"], today=lambda: clock.now().date())
    config = json.loads(os.environ.get("TEST_CONFIG") or "{}")
    app, _ = create_host(os.environ["TEST_DATABASE_URL"], clock, gateway, payer="user", **config)
    return app
