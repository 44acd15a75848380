"""What a crashed worker leaves behind is healed by the next runs, with real processes
(R-REN-2, R-DUN-1, R-DUN-4, R-DUN-6, R-LIC-3): a stale payment reconciled by two runs at once,
terms charged in their own order after a crash or while one waits for the bank, and
licenses ended inside a killed worker's claimed batch.

The workers are ``flask subscriptions ...`` processes on ``tests/process_host.py``, killed
with SIGKILL before or after Sandbox Pay answered; what they did is read where a person
would see it: Sandbox Pay's own records of charges, invoices, payments and the outbox.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import Flask
from sqlalchemy import select, update

from bench._accounts import CATALOG_TABLES, copy_accounts
from flask_subscriptions import get_state
from flask_subscriptions.clock import FrozenClock
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.sandbox.storage import cards as sandbox_cards
from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
from flask_subscriptions.models import (
    Invoice,
    OutboxMessage,
    Payment,
    Subscription,
)
from flask_subscriptions.models import metadata as billing_metadata
from flask_subscriptions.services.claims import claim
from flask_subscriptions.services.dunning import DunningReport, _handle
from flask_subscriptions.services.licenses import update_license
from flask_subscriptions.services.profiles import gateway_customer
from flask_subscriptions.services.renewal_batch import open_batch

from .conftest import Outbox
from .factories import new_user, subscribe
from .flows import FIRST_CHARGE_ONLY
from .hosts import db
from .test_dunning import _failing_license
from .test_renewal_processes import _count, _flask

pytestmark = pytest.mark.slow


def _renewal_charges(gateway: SandboxGateway, account_id: str) -> list[tuple[str, date]]:
    """The account's renewal charges as Sandbox Pay recorded them, in the order it took
    them: each one's status and the start of the term it paid."""
    terms = dict(
        db.session.execute(
            select(Payment.idempotency_key, Invoice.period_start)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.kind == "renewal", Invoice.account_id == account_id)
        ).all()
    )
    return [
        (c.status, terms[c.idempotency_key])
        for c in gateway.charges(gateway_customer(account_id))
        if c.idempotency_key in terms
    ]


def _invoices(subscription_id: int) -> list[tuple[date, str]]:
    """The license's renewal invoices: the term each is for, and its status."""
    return [
        (start, status)
        for start, status in db.session.execute(
            select(Invoice.period_start, Invoice.status)
            .where(Invoice.subscription_id == subscription_id, Invoice.kind == "renewal")
            .order_by(Invoice.period_start)
        )
    ]


def _mails(kind: str, account_id: str) -> int:
    return _count(OutboxMessage, OutboxMessage.kind == kind, OutboxMessage.account_id == account_id)


def _card_behaves(gateway: SandboxGateway, last4: str, behaviour: str) -> None:
    """The bank changes its mind about a card (``cards.Behaviour``), at the payment service."""
    with gateway.engine().begin() as connection:
        connection.execute(
            update(sandbox_cards).where(sandbox_cards.c.last4 == last4).values(behaviour=behaviour)
        )


def _visa_licenses(gateway: SandboxGateway, count: int) -> None:
    """``count`` Small licenses bought with a Visa on March 17, fast: one bought through the
    real services, then its rows copied ``count - 1`` times as the renewal benchmark builds
    its accounts (each copy its own account, card and Sandbox Pay customer). Call it before
    any other account exists: it copies every account there is."""
    subscribe(new_user("copied"))
    db.session.commit()
    billing = [
        table
        for metadata in (db.metadata, billing_metadata)
        for table in metadata.sorted_tables
        if table.name not in CATALOG_TABLES
    ]
    sandbox = (gateway.engine(), sandbox_metadata.sorted_tables)
    copy_accounts(count - 1, [(db.engine, billing), sandbox])


# --- 1. two runs reconcile the same stale payment ------------------------------------------


@pytest.mark.parametrize("slower", ["renew", "run-jobs"])
def test_two_runs_reconciling_one_stale_payment_both_exit_0_and_charge_once_R_REN_2(
    app: Flask,
    catalog: None,
    clock: FrozenClock,
    database_url: str,
    sandbox_url: str,
    gateway: SandboxGateway,
    slower: str,
) -> None:
    """R-REN-2 ("safe to run in every worker at once"): a worker died before Sandbox Pay saw
    its renewal charge; two runs find the payment stale and both hear "never seen". One
    sends the charge and records it; the other's answer arrives after that (a slow network
    on the way back) and must find the payment settled, not fail: both exit 0, one charge."""
    owner = new_user("twice")
    subscription = subscribe(owner)
    clock.set(datetime(2026, 4, 17, 12, tzinfo=UTC))
    batch = open_batch("dead-worker", 10)  # committed; then the process died
    assert batch is not None
    [step] = batch.reserved
    key = step.request.idempotency_key
    after_lease = "2026-04-17T12:10:00"
    # The first takes 1 s per call; the second reads at once, and hears 4 s later.
    first = _flask(database_url, sandbox_url, after_lease, "renew", latency_ms=1000)
    second = _flask(
        database_url, sandbox_url, after_lease, slower, TEST_LOOKUP_ANSWER_DELAY_MS="4000"
    )
    outputs = [w.communicate(timeout=120)[0] for w in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert "Traceback" not in outputs[1], outputs[1]
    db.session.expire_all()
    assert gateway.charge_count(key) == 1
    assert gateway.charge_count() == 2  # the purchase, then this renewal
    assert db.session.get(Payment, step.payment_id).status == "succeeded"
    assert _invoices(subscription.id) == [(date(2026, 4, 17), "paid")]
    assert _mails("renewal_receipt", owner.billing_id) == 1


# --- 2. terms charged in their order after a crash -----------------------------------------

#: More stale payments than one reconciliation batch settled before (200).
LICENSES = 205
DECLINING = 5


def test_after_a_crash_no_term_is_charged_before_the_earlier_one_R_REN_2_R_DUN_1_R_DUN_4(
    app: Flask,
    catalog: None,
    database_url: str,
    sandbox_url: str,
    gateway: SandboxGateway,
    outbox: Outbox,
) -> None:
    """R-REN-2, R-DUN-1, R-DUN-4: the scheduler was down a month (two terms due on May 17)
    and the run that wrote the April terms was killed before Sandbox Pay saw any charge.
    The next run settles every stale payment (more than 200), then renews May, so each
    license's terms are charged in their order; a card that now declines is tried once that
    day, and its owner gets one "payment failed" e-mail; its May term waits in dunning."""
    _visa_licenses(gateway, LICENSES - DECLINING)
    for i in range(DECLINING):  # bought last: their stale payments come last too
        subscribe(new_user(f"declining{i}"), card=FIRST_CHARGE_ONLY)
    licenses = list(db.session.scalars(select(Subscription).order_by(Subscription.id)))
    declining = licenses[-DECLINING:]
    killed = _flask(
        database_url, sandbox_url, "2026-05-17T12:00:00", "renew", TEST_CRASH_BEFORE_CHARGE="1"
    )
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    assert _count(Payment, Payment.status == "pending") == LICENSES
    assert gateway.charge_count() == LICENSES  # the purchases only

    heal = _flask(database_url, sandbox_url, "2026-05-17T12:10:00", "renew")
    output = heal.communicate(timeout=180)[0]
    assert heal.returncode == 0, output
    db.session.expire_all()
    assert _count(Payment, Payment.status.in_(("pending", "unknown"))) == 0  # none left behind
    for license_ in licenses:
        assert [start for _s, start in _renewal_charges(gateway, license_.account_id)] in (
            [date(2026, 4, 17), date(2026, 5, 17)],
            [date(2026, 4, 17)],
        ), license_.account_id  # in the order of their terms, each once
        if license_ not in declining:
            assert _invoices(license_.id) == [
                (date(2026, 4, 17), "paid"),
                (date(2026, 5, 17), "paid"),
            ]
    # Cron runs every job a little later: nothing is tried twice, nothing told twice.
    again = _flask(database_url, sandbox_url, "2026-05-17T12:20:00", "run-jobs")
    output = again.communicate(timeout=120)[0]
    assert again.returncode == 0, output
    db.session.expire_all()
    for license_ in declining:
        assert _renewal_charges(gateway, license_.account_id) == [("declined", date(2026, 4, 17))]
        assert _mails("payment_failed", license_.account_id) == 1
        assert _invoices(license_.id) == [(date(2026, 4, 17), "open"), (date(2026, 5, 17), "open")]
        subscription = db.session.get(Subscription, license_.id)
        assert subscription.payment_failed_on == date(2026, 5, 17)
    renewed = LICENSES - DECLINING
    assert gateway.charge_count() == LICENSES + 2 * renewed + DECLINING
    assert len(outbox.of_kind("renewal_receipt")) == 2 * renewed


def test_no_term_is_charged_while_an_earlier_one_waits_for_the_bank_R_REN_2_R_DUN_6(
    app: Flask,
    catalog: None,
    database_url: str,
    sandbox_url: str,
    gateway: SandboxGateway,
) -> None:
    """R-REN-2, R-DUN-6: the scheduler was down a month; on May 17 the April term's charge
    waits for the card holder (3-D Secure). The May term is not charged before it (not by
    the renewal, nor by the next day's dunning retry): it is renewed once April is paid,
    and Sandbox Pay takes the terms in their order."""
    owner = new_user("bank")
    subscription = subscribe(owner)
    _card_behaves(gateway, "4242", "requires_action")
    for now in ("2026-05-17T12:00:00", "2026-05-18T12:00:00"):  # cron, two days running
        run = _flask(database_url, sandbox_url, now, "run-jobs")
        output = run.communicate(timeout=120)[0]
        assert run.returncode == 0, output
    db.session.expire_all()
    assert _renewal_charges(gateway, owner.billing_id) == [("requires_action", date(2026, 4, 17))]
    assert _mails("payment_action_required", owner.billing_id) == 1
    [waiting] = gateway.charges(gateway_customer(owner.billing_id))[-1:]
    _card_behaves(gateway, "4242", "succeed")
    gateway.complete_authentication(waiting.id, succeeded=True)  # the card holder confirms
    run = _flask(database_url, sandbox_url, "2026-05-18T12:10:00", "run-jobs")
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 0, output
    db.session.expire_all()
    assert _renewal_charges(gateway, owner.billing_id) == [
        ("succeeded", date(2026, 4, 17)),
        ("succeeded", date(2026, 5, 17)),
    ]
    assert _invoices(subscription.id) == [(date(2026, 4, 17), "paid"), (date(2026, 5, 17), "paid")]
    assert db.session.get(Subscription, subscription.id).payment_failed_on is None


# --- 3. no claim outlives its lease on an expired license ------------------------------------


def test_a_license_expired_by_a_killed_worker_keeps_no_claim_R_LIC_3_R_REN_2(
    app: Flask,
    catalog: None,
    database_url: str,
    sandbox_url: str,
    gateway: SandboxGateway,
) -> None:
    """R-LIC-3, R-REN-2: one batch renews a license and expires a Disabled one; the worker
    is killed after Sandbox Pay charged. The expired license is Expired, told once, and
    holds no claim: nothing would ever claim an ended license again to give it back."""
    renewing_owner, leaving_owner = new_user("stays"), new_user("leaves")
    renewing = subscribe(renewing_owner)
    leaving = subscribe(leaving_owner)
    update_license(leaving_owner, leaving.id, auto_renew=False, renew_with=None)
    killed = _flask(database_url, sandbox_url, "2026-04-17T12:00:00", "renew", crash=True)
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    heal = _flask(database_url, sandbox_url, "2026-04-17T12:10:00", "renew")
    output = heal.communicate(timeout=120)[0]
    assert heal.returncode == 0, output
    db.session.expire_all()
    ended = db.session.get(Subscription, leaving.id)
    assert (ended.state, ended.ended_on) == ("ended", date(2026, 4, 17))
    assert (ended.claimed_by, ended.claim_expires_at) == (None, None)
    assert _mails("license_expired", leaving_owner.billing_id) == 1
    assert _invoices(renewing.id) == [(date(2026, 4, 17), "paid")]
    assert gateway.charge_count() == 3  # two purchases, one renewal
    assert _count(Subscription, Subscription.claimed_by.is_not(None)) == 0


@pytest.mark.parametrize("app_config", [{"SUBSCRIPTIONS_DUNNING_POLICY": "free"}])
def test_a_license_moved_to_free_by_a_worker_killed_before_its_release_keeps_no_claim_R_DUN_2(
    app: Flask, catalog: None, clock: FrozenClock, gateway: SandboxGateway
) -> None:
    """R-DUN-2: dunning ends an unpaid license at the end of its grace inside a claimed
    batch; a worker killed right after that commit (before it gave the claim back) must
    leave no claim on the ended license, which no job would ever claim again."""
    subscription = _failing_license(new_user("unpaid"), clock)  # declined on April 17
    clock.set(datetime(2026, 4, 27, 12, tzinfo=UTC))  # the grace (10 days) has ended
    assert claim("killed-dunner", 10, Subscription.id == subscription.id) == [subscription.id]
    get_state().session.commit()
    _handle(subscription.id, "killed-dunner", DunningReport())  # and then: SIGKILL
    db.session.expire_all()
    ended = db.session.get(Subscription, subscription.id)
    assert (ended.state, ended.end_reason) == ("ended", "unpaid")
    assert (ended.claimed_by, ended.claim_expires_at) == (None, None)
