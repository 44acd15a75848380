"""The payment service is called with no database transaction open (R-REN-2, R-OPS-4).

A charge can take seconds (or the 200 ms of a remote service, times a batch): a transaction
held meanwhile would hold its row locks and a pooled connection, and on PostgreSQL show as
"idle in transaction" for as long. The billing pipeline reserves (one transaction, committed),
charges (none), records (another). The gateway here is Sandbox Pay itself, watched: each call
notes how many of the billing database's connections were checked out of the pool at that
moment, which is zero only when no session holds a transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_subscriptions import FrozenClock
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.models import PaymentMethod
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.renewals import renew_due

from .factories import new_user, subscribe
from .flows import FIRST_CHARGE_ONLY
from .hosts import db


@pytest.fixture
def held(gateway: SandboxGateway, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every charge call, with the connections checked out when it was made."""
    calls: list[tuple[str, int]] = []

    def watch(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, db.engine.pool.checkedout()))
            return method(*args, **kwargs)

        return watched

    for name in ("charge", "charge_many"):
        monkeypatch.setattr(gateway, name, watch(name, getattr(gateway, name)))
    return calls


def _on(clock: FrozenClock, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def test_no_connection_is_held_while_the_payment_service_answers_R_REN_2_R_OPS_4(
    app: Flask, catalog: None, clock: FrozenClock, held: list[tuple[str, int]]
) -> None:
    """A purchase, an upgrade, a renewal batch of three (one declined) and the next day's
    dunning retry: every charge made with no billing connection checked out."""
    _on(clock, date(2026, 3, 17))
    owners = [new_user(name) for name in ("ann", "bob")]
    licenses = [subscribe(user, "x_small") for user in owners]
    declining = subscribe(new_user("cid"), card=FIRST_CHARGE_ONLY)
    _on(clock, date(2026, 4, 6))
    method = db.session.scalar(
        select(PaymentMethod.id).where(PaymentMethod.account_id == owners[0].billing_id)
    )
    request = ChangeRequest("small", "month", ())
    shown = quote_for(owners[0], licenses[0].id, request)
    apply_change(owners[0], licenses[0].id, request, shown.quote.fingerprint, method)
    db.session.commit()
    _on(clock, date(2026, 4, 17))
    report = renew_due()
    assert (report.renewed, report.failed) == (2, 1)  # the third declined
    db.session.commit()
    _on(clock, date(2026, 4, 18))
    assert run_dunning().retried == 1
    db.session.refresh(declining)
    assert declining.payment_failed_on == date(2026, 4, 17)  # still declined: in its grace

    assert len(held) >= 6  # 3 purchases, the upgrade, the renewals, the retry
    assert {name for name, _ in held} == {"charge", "charge_many"}
    assert [count for _, count in held] == [0] * len(held), held
