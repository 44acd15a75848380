"""Payment failure and dunning (R-DUN-1..4), both policies, on the test clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import select

from flask_subscriptions.core.dunning import Action, Facts, decide
from flask_subscriptions.gateways.sandbox.storage import cards as sandbox_cards
from flask_subscriptions.models import Invoice, Payment, PaymentMethod, Subscription
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.settlement import settle, settlement_for

from .conftest import Outbox, csrf_token, sign_in, signed_in
from .factories import add_card, new_user, subscribe, team_member
from .flows import FIRST_CHARGE_ONLY, VISA
from .hosts import User, db


def _at(clock: object, day: date, hour: int = 12, minute: int = 0) -> None:
    clock.set(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC))  # type: ignore[attr-defined]


def _days(clock: object, first: date, count: int) -> list[date]:
    """Run renewals and dunning on each day from ``first``, as the scheduler would."""
    seen = []
    for offset in range(count):
        day = first + timedelta(days=offset)
        _at(clock, day)
        renew_due()
        run_dunning()
        seen.append(day)
    return seen


def _failing_license(user: User, clock: object, card: str = FIRST_CHARGE_ONLY) -> Subscription:
    """Small bought on March 17; its April 17 renewal is declined."""
    subscription = subscribe(user, card=card)
    _at(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    return db.session.get(Subscription, subscription.id)


def _bank_approves(gateway: Any, last4: str) -> None:
    """The card starts working again (funds arrived), at the payment service."""
    with gateway.engine().begin() as connection:
        connection.execute(
            sa.update(sandbox_cards)
            .where(sandbox_cards.c.last4 == last4)
            .values(behaviour="succeed")
        )


def _sub() -> Subscription:
    db.session.expire_all()
    return db.session.scalar(select(Subscription))


def _attempts() -> list[tuple[date, str]]:
    rows = db.session.execute(
        select(Payment.created_at, Payment.status)
        .join(Invoice)
        .where(Invoice.kind == "renewal")
        .order_by(Payment.id)
    ).all()
    return [(created.date(), status) for created, status in rows]


# --- the pure decision ------------------------------------------------------------------


def _facts(**kw: Any) -> Facts:
    base: dict[str, Any] = dict(
        policy="restrict",
        today=date(2026, 4, 20),
        now=datetime(2026, 4, 20, 12),
        grace_ends_on=date(2026, 4, 24),
        restricted=False,
        last_attempt_on=date(2026, 4, 19),
        last_attempt_at=datetime(2026, 4, 19, 12),
        method_updated_at=None,
        warning_days=2,
        warned=False,
    )
    return Facts(**{**base, **kw})


def test_decisions_R_DUN_1_R_DUN_2() -> None:
    """R-DUN-1: once a day in the grace, restrict after; R-DUN-2: retry after an update,
    Free after the grace; the warning two days before the end, once."""
    assert decide(_facts()).actions == (Action.RETRY,)
    assert decide(_facts(last_attempt_on=date(2026, 4, 20))).actions == (Action.WAIT,)
    assert decide(_facts(today=date(2026, 4, 22))).actions == (Action.RETRY, Action.WARN)
    assert decide(_facts(today=date(2026, 4, 22), warned=True)).actions == (Action.RETRY,)
    assert decide(_facts(today=date(2026, 4, 24))).actions == (Action.RESTRICT,)
    assert decide(_facts(restricted=True, today=date(2026, 5, 1))).actions == (Action.WAIT,)
    assert decide(_facts(policy="free")).actions == (Action.WAIT,)
    updated = datetime(2026, 4, 20, 9)
    assert decide(_facts(policy="free", method_updated_at=updated)).actions == (Action.RETRY,)
    assert decide(_facts(policy="free", today=date(2026, 4, 24))).actions == (Action.MOVE_TO_FREE,)


# --- policy "grace then restrict" (the default) ----------------------------------------


def test_daily_retries_succeed_on_day_3_R_DUN_1(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: Any
) -> None:
    """R-DUN-1: retried once a day in the grace, features working; paid on day 3."""
    _failing_license(alice, clock)
    assert status_of(_sub()) == "Payment failed"
    _days(clock, date(2026, 4, 17), 2)  # the failure day, then day 2: a retry that fails
    assert status_of(_sub()) == "Payment failed"
    _bank_approves(gateway, "1232")
    _days(clock, date(2026, 4, 19), 3)  # day 3 pays; nothing more after
    assert [d for d, _ in _attempts()] == [date(2026, 4, 17), date(2026, 4, 18), date(2026, 4, 19)]
    assert [s for _, s in _attempts()] == ["declined", "declined", "succeeded"]
    subscription = _sub()
    assert (status_of(subscription), subscription.payment_failed_on) == ("Enabled", None)
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "renewal")) == "paid"
    assert outbox.kinds().count("payment_failed") == 1  # once per unpaid renewal (R-DUN-4)
    assert outbox.kinds()[-1] == "renewal_receipt"


def test_never_paid_restricted_after_7_days_then_open_invoices_then_settled_R_DUN_1_R_DUN_3(
    app: Flask,
    client: Any,
    alice: User,
    catalog: None,
    clock: object,
    outbox: Outbox,
    gateway: Any,
) -> None:
    """R-DUN-1: restricted when the grace ends; the plan is kept and two more terms renew as
    open invoices; R-DUN-3: one settlement pays all three and lifts the restriction."""
    subscription = _failing_license(alice, clock)
    _days(clock, date(2026, 4, 17), 7)  # April 17 .. 23: six daily retries, all declined
    assert status_of(_sub()) == "Payment failed"
    assert len(_attempts()) == 7
    assert "grace_ending" in outbox.kinds()
    _days(clock, date(2026, 4, 24), 1)
    restricted = _sub()
    assert (status_of(restricted), restricted.restricted_on) == ("Restricted", date(2026, 4, 24))
    assert restricted.plan_id == subscription.plan_id and restricted.state == "active"
    assert "restricted" in outbox.kinds()
    for day in (date(2026, 5, 17), date(2026, 6, 17)):
        _days(clock, day, 1)
    assert len(_attempts()) == 7  # no charges after the grace: only the owner settles
    invoices = db.session.scalars(
        select(Invoice).where(Invoice.kind == "renewal").order_by(Invoice.period_start)
    ).all()
    assert [(i.period_start, i.status, i.amount_due) for i in invoices] == [
        (date(2026, 4, 17), "open", 10000),
        (date(2026, 5, 17), "open", 10000),
        (date(2026, 6, 17), "open", 10000),
    ]
    # the owner settles through the history page with a working card
    sign_in(client, alice)
    add_card(alice, VISA)
    visa = db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == "4242"))
    page = client.get("/billing/history")
    assert "Pay all unpaid" in page.text and "<strong>$300.00</strong>" in page.text
    assert f'name="payment_method" value="{visa.id}"' in page.text  # offered to pay with
    fingerprint = settlement_for(alice.billing_id).quote.fingerprint  # type: ignore[union-attr]
    done = client.post(
        "/billing/history/settle",
        data={
            "csrf_token": csrf_token(page.text),
            "fingerprint": fingerprint,
            "payment_method": visa.id,
        },
        follow_redirects=True,
    )
    assert "everything unpaid is settled" in done.text
    assert "Pay all unpaid" not in done.text
    settled = _sub()
    assert (status_of(settled), settled.restricted_on, settled.payment_failed_on) == (
        "Enabled",
        None,
        None,
    )
    assert {
        i.status for i in db.session.scalars(select(Invoice).where(Invoice.kind == "renewal"))
    } == {"paid"}
    [payment] = db.session.scalars(
        select(Payment).join(Invoice).where(Invoice.kind == "settlement")
    ).all()
    assert (payment.amount, payment.status) == (30000, "succeeded")
    [mail] = outbox.of_kind("settled")
    assert "Amount paid:  $300.00" in mail.text_body


def test_failed_settlement_changes_nothing_and_says_why_R_DUN_3(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    _failing_license(alice, clock)
    _days(clock, date(2026, 4, 17), 8)
    method = db.session.scalar(select(PaymentMethod))
    fingerprint = settlement_for(alice.billing_id).quote.fingerprint  # type: ignore[union-attr]
    from flask_subscriptions.services.settlement import SettlementDeclined

    with pytest.raises(SettlementDeclined, match="declined"):
        settle(alice, fingerprint, method.id)
    assert status_of(_sub()) == "Restricted"
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "renewal")) == "open"
    assert db.session.scalar(select(Invoice.status).where(Invoice.kind == "settlement")) == "void"
    assert settlement_for(alice.billing_id).quote.card_amount == 10000  # type: ignore[union-attr]


def test_soft_and_hard_declines_are_told_apart_R_DUN_4(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: Any
) -> None:
    """R-DUN-4: the failure e-mail says whether the card may work later or must be replaced;
    a retry that fails says nothing new, whatever its reason."""
    _failing_license(alice, clock)
    [hard] = outbox.of_kind("payment_failed")
    assert "The card cannot be charged" in hard.text_body
    assert "once a day through April 23, 2026" in hard.text_body
    with gateway.engine().begin() as connection:
        connection.execute(sa.update(sandbox_cards).values(behaviour="insufficient_funds"))
    _days(clock, date(2026, 4, 18), 1)
    assert outbox.of_kind("payment_failed") == [hard]
    db.session.expire_all()
    assert [p.decline_kind for p in db.session.scalars(select(Payment).order_by(Payment.id))][
        -2:
    ] == ["hard", "soft"]


def test_a_soft_decline_is_told_as_temporary_R_DUN_4(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: Any
) -> None:
    subscribe(alice, card=FIRST_CHARGE_ONLY)
    with gateway.engine().begin() as connection:
        connection.execute(sa.update(sandbox_cards).values(behaviour="insufficient_funds"))
    _at(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    [soft] = outbox.of_kind("payment_failed")
    assert "insufficient funds" in soft.text_body.lower()
    assert "This looks temporary" in soft.text_body


def test_four_processes_never_retry_an_invoice_twice_a_day_R_DUN_1(
    app: Flask,
    alice: User,
    catalog: None,
    clock: object,
    gateway: Any,
    database_url: str,
    sandbox_url: str,
) -> None:
    """Four `flask subscriptions dunning` processes at once: one retry per invoice per day."""
    from .test_renewal_processes import _flask

    _failing_license(alice, clock)
    for now in ("2026-04-18T09:00:00", "2026-04-18T15:00:00"):
        workers = [_flask(database_url, sandbox_url, now, "dunning") for _ in range(4)]
        outputs = [w.communicate(timeout=120)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    db.session.expire_all()
    assert [d for d, _ in _attempts()] == [date(2026, 4, 17), date(2026, 4, 18)]
    assert gateway.charge_count() == 3  # type: ignore[attr-defined]


def test_one_run_retries_every_unpaid_license_batch_by_batch_R_DUN_1(
    app: Flask, catalog: None, clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-DUN-1: more unpaid licenses than one claim takes (``DUNNING_BATCH_SIZE``): a run
    still retries each of them, once; a second run that day retries none."""
    from dataclasses import replace

    from flask_subscriptions import get_state

    state = get_state()
    monkeypatch.setattr(state, "settings", replace(state.settings, dunning_batch_size=2))
    for i in range(5):
        subscribe(new_user(f"unpaid{i}"), card=FIRST_CHARGE_ONLY)
    _at(clock, date(2026, 4, 17))
    assert renew_due().failed == 5
    _at(clock, date(2026, 4, 18))
    assert run_dunning().retried == 5
    assert run_dunning().retried == 0
    per_day = [day for day, _status in _attempts()]
    assert (per_day.count(date(2026, 4, 17)), per_day.count(date(2026, 4, 18))) == (5, 5)


def test_member_and_other_accounts_cannot_settle_R_SEC_2(
    team_app: Flask, catalog: None, clock: object
) -> None:
    """Only owners see the history page; members get 403."""
    client = signed_in(team_app, team_member())
    assert client.get("/billing/history").status_code == 403
    assert client.post("/billing/history/settle", data={}).status_code == 403
