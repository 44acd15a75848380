"""An SMTP outage during dunning loses no e-mail (R-DUN-4, R-NOTE-3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from flask_subscriptions.notifications import deliver_due
from flask_subscriptions.services.dunning import run_dunning

from .conftest import Outbox
from .hosts import User
from .smtp import SmtpServer
from .test_dunning import _failing_license

pytestmark = pytest.mark.smtp


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    if server.running:
        server.stop()


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return smtp.mail_config()


def test_dunning_mail_survives_an_smtp_outage_R_DUN_4_R_NOTE_3(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox, smtp: SmtpServer
) -> None:
    """The server is down while the renewal fails and the grace runs out: every e-mail waits
    in the outbox; once the server is back each is delivered exactly once."""
    _failing_license(alice, clock)  # the renewal on April 17 is declined
    for offset in range(1, 8):  # daily retries, the warning, then the restriction on day 7
        clock.set(datetime(2026, 4, 17, 12, tzinfo=UTC) + timedelta(days=offset))
        run_dunning()
        assert deliver_due().sent == 0
    kinds = outbox.kinds()
    for kind in ("purchase_completed", "payment_failed", "grace_ending", "restricted"):
        assert kind in kinds
    assert {m.status for m in outbox.all()} == {"pending"}
    smtp.start()
    clock.set(datetime(2026, 4, 25, 12, tzinfo=UTC))  # past every retry delay
    while deliver_due().sent:
        pass
    assert deliver_due().sent == 0
    subjects = sorted(m.subject for m in smtp.received)
    assert subjects == sorted(m.subject for m in outbox.all())  # each exactly once
    assert len(subjects) == len(kinds)
    assert {m.status for m in outbox.all()} == {"sent"}
