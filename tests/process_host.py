"""A host app for tests that run real processes (``flask --app tests.process_host ...``).

Configured from the environment: ``TEST_DATABASE_URL``, ``TEST_SANDBOX_URL``, ``TEST_NOW``
(the billing clock, an ISO date-time in UTC) and ``TEST_CRASH_AFTER_CHARGE`` (kill this
process with SIGKILL right after the payment service answered, before the outcome is
recorded).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from datetime import UTC, datetime

from flask import Flask

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.base import ChargeRequest, ChargeResult, GatewayError
from flask_subscriptions.gateways.sandbox import SandboxGateway

from .hosts import create_host


class CrashingGateway(SandboxGateway):
    """Sandbox Pay, and then the process dies as if the machine lost power."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        result = super().charge(request)
        _crash_if_asked()
        return result

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | GatewayError]:
        answers = super().charge_many(requests)
        _crash_if_asked()
        return answers


def _crash_if_asked() -> None:
    if os.environ.get("TEST_CRASH_AFTER_CHARGE"):
        os.kill(os.getpid(), signal.SIGKILL)


def create_app() -> Flask:
    now = datetime.fromisoformat(os.environ["TEST_NOW"]).replace(tzinfo=UTC)
    clock = FrozenClock(now)
    gateway = CrashingGateway(os.environ["TEST_SANDBOX_URL"], today=now.date)
    app, _ = create_host(os.environ["TEST_DATABASE_URL"], clock, gateway, payer="user")
    return app
