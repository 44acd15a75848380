"""Automatic renewal (R-REN-1..3), with exact dates and amounts, on the test clock."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, insert, select

from flask_subscriptions.models import (
    BalanceEntry,
    Coupon,
    Invoice,
    Payment,
    Plan,
    Subscription,
    SubscriptionItem,
)
from flask_subscriptions.models import Term as TermRow
from flask_subscriptions.services.balance import append_entry, current_balance
from flask_subscriptions.services.licenses import status_of
from flask_subscriptions.services.renewals import renew_batch, renew_due

from .conftest import Outbox, at_noon, statements
from .factories import new_user, subscribe
from .flows import FIRST_CHARGE_ONLY
from .hosts import User, db


def _renewal_invoices(subscription_id: int) -> list[Invoice]:
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.subscription_id == subscription_id, Invoice.kind == "renewal")
            .order_by(Invoice.period_start)
        )
    )


def test_a_year_of_monthly_renewals_on_the_31st_R_REN_1_R_REN_3_R_TIME_2(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: object
) -> None:
    """R-TIME-2: Jan 31 → Feb 28 → Mar 31 → Apr 30 …, each term $100.00; R-REN-3: each with
    a receipt e-mail (items, amount, card, next renewal date)."""
    at_noon(clock, date(2026, 1, 31))
    subscription = subscribe(alice)
    for _ in range(12):
        at_noon(clock, db.session.get(Subscription, subscription.id).current_term_end)
        report = renew_due()
        assert (report.renewed, report.failed) == (1, 0)
    invoices = _renewal_invoices(subscription.id)
    assert [(i.period_start, i.period_end) for i in invoices][:4] == [
        (date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 4, 30), date(2026, 5, 31)),
        (date(2026, 5, 31), date(2026, 6, 30)),
    ]
    assert [i.period_start.day for i in invoices] == [
        28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
        31,
    ]
    assert invoices[-1].period_end == date(2027, 2, 28)
    assert {(i.status, i.amount_due) for i in invoices} == {("paid", 10000)}
    assert gateway.charge_count() == 13  # type: ignore[attr-defined]
    receipts = outbox.of_kind("renewal_receipt")
    assert len(receipts) == 12
    assert "Amount paid:  $100.00" in receipts[0].text_body
    assert "Next renewal: March 31, 2026" in receipts[0].text_body
    assert "Visa ending in 4242" in receipts[0].text_body


def test_nothing_is_renewed_before_the_term_end_R_REN_1(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    subscribe(alice)
    at_noon(clock, date(2026, 4, 16))
    assert renew_due().renewed == 0
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    assert renew_due().renewed == 0  # a second run finds nothing left to do (R-REN-2)


def test_scheduled_plan_change_takes_effect_at_renewal_R_REN_1_R_LIC_5(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    """R-LIC-5: the current plan stays until the term ends; then it renews as Medium."""
    from flask_subscriptions.services.licenses import update_license

    subscription = subscribe(alice)
    update_license(alice, subscription.id, auto_renew=True, renew_with="medium")
    assert db.session.get(Subscription, subscription.id).plan_id == _plan("small").id
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    renewed = db.session.get(Subscription, subscription.id)
    assert (renewed.plan_id, renewed.next_plan_id) == (_plan("medium").id, None)
    [invoice] = _renewal_invoices(subscription.id)
    assert invoice.amount_due == 20000 and invoice.status == "paid"
    item = db.session.scalar(
        select(SubscriptionItem).where(
            SubscriptionItem.subscription_id == subscription.id,
            SubscriptionItem.removed_on.is_(None),
        )
    )
    assert (item.plan_id, item.paid_amount, item.period_start) == (
        _plan("medium").id,
        20000,
        date(2026, 4, 17),
    )


def test_add_ons_renew_with_the_plan_R_REN_1(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    subscription = subscribe(alice, addons=("operation", "marketing"))
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    [invoice] = _renewal_invoices(subscription.id)
    assert invoice.amount_due == 10000 + 3000 + 4000


def test_coupon_for_three_terms_stops_discounting_on_the_fourth_R_CPN_1(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    """R-CPN-1: a repeating coupon discounts the purchase and the next two renewals."""
    db.session.add(
        Coupon(code="THREE", kind="percent", value=20, duration="repeating", duration_terms=3)
    )
    db.session.commit()
    subscription = subscribe(alice, coupon="THREE")
    for _ in range(3):
        at_noon(clock, db.session.get(Subscription, subscription.id).current_term_end)
        renew_due()
    first = db.session.scalar(select(Invoice).where(Invoice.kind == "purchase"))
    amounts = [first.amount_due] + [i.amount_due for i in _renewal_invoices(subscription.id)]
    assert amounts == [8000, 8000, 8000, 10000]


def test_once_coupon_never_discounts_a_renewal_R_CPN_1(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    subscription = subscribe(alice, coupon="WELCOME10")
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    assert [i.amount_due for i in _renewal_invoices(subscription.id)] == [10000]


@pytest.mark.parametrize(("balance", "card", "left"), [(2500, 7500, 0), (15000, 0, 5000)])
def test_balance_is_used_before_the_card_R_REN_1_R_PRO_3(
    app: Flask,
    alice: User,
    catalog: None,
    clock: object,
    gateway: object,
    balance: int,
    card: int,
    left: int,
) -> None:
    """R-REN-1: the balance first, then the default card for the rest."""
    subscription = subscribe(alice)
    append_entry(alice.billing_id, "credit", balance, "USD", "Goodwill credit")
    db.session.commit()
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    [invoice] = _renewal_invoices(subscription.id)
    assert (invoice.balance_applied, invoice.amount_due, invoice.status) == (
        balance - left,
        card,
        "paid",
    )
    assert current_balance(alice.billing_id).amount == left
    charged = [c.amount for c in gateway.charges()]  # type: ignore[attr-defined]
    assert charged == ([10000, card] if card else [10000])


def test_a_balance_entry_written_by_another_writer_meanwhile_makes_the_batch_read_again_R_REN_2(
    app: Flask,
    alice: User,
    catalog: None,
    clock: object,
    gateway: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-REN-2, R-BAL-3: the batch read the balance, then another writer appended a ledger
    entry before the batch wrote its own (shown by a first read one entry behind). The
    unique (account, seq) key refuses the batch's entry; the batch rolls back, reads again and
    renews once, using the balance once."""
    from dataclasses import replace

    from flask_subscriptions.services import renewal_batch

    subscription = subscribe(alice)
    append_entry(alice.billing_id, "credit", 2500, "USD", "Goodwill credit")
    db.session.commit()
    real, reads = renewal_batch.latest_balances, []

    def balances(accounts: list[str]) -> dict[str, object]:
        rows = real(accounts)
        reads.append(len(reads))
        if len(reads) > 1:
            return rows  # type: ignore[return-value]
        return {a: replace(b, seq=b.seq - 1) for a, b in rows.items()}

    monkeypatch.setattr(renewal_batch, "latest_balances", balances)
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    assert len(reads) == 2  # the stale read, then the one that wrote
    [invoice] = _renewal_invoices(subscription.id)
    assert (invoice.balance_applied, invoice.amount_due, invoice.status) == (2500, 7500, "paid")
    assert current_balance(alice.billing_id).amount == 0
    uses = select(func.count()).select_from(BalanceEntry).where(BalanceEntry.kind == "use")
    assert db.session.scalar(uses) == 1
    assert [c.amount for c in gateway.charges()] == [10000, 7500]  # type: ignore[attr-defined]


def test_disabled_license_expires_and_the_account_returns_to_free_R_LIC_3(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: object
) -> None:
    """R-LIC-3: usable until the term ends, then Expired; the account may buy again."""
    from flask_subscriptions.services.licenses import update_license

    subscription = subscribe(alice)
    update_license(alice, subscription.id, auto_renew=False, renew_with=None)
    at_noon(clock, date(2026, 4, 16))
    renew_due()
    assert status_of(db.session.get(Subscription, subscription.id)) == "Disabled"
    at_noon(clock, date(2026, 4, 17))
    report = renew_due()
    assert report.expired == 1
    ended = db.session.get(Subscription, subscription.id)
    assert (status_of(ended), ended.live_account_id, ended.ended_on) == (
        "Expired",
        None,
        date(2026, 4, 17),
    )
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]
    assert outbox.kinds() == ["purchase_completed", "auto_renewal_disabled", "license_expired"]
    assert "now on the Free plan" in outbox.of_kind("license_expired")[0].text_body
    assert subscribe(alice, "medium").state == "active"


def test_renewing_as_free_ends_the_license_R_LIC_4(
    app: Flask, alice: User, catalog: None, clock: object
) -> None:
    from flask_subscriptions.services.licenses import update_license

    subscription = subscribe(alice)
    update_license(alice, subscription.id, auto_renew=True, renew_with="free")
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().expired == 1
    assert db.session.get(Subscription, subscription.id).end_reason == "renewed_as_free"


def test_scheduler_down_for_three_months_renews_each_missed_term_in_order_R_REN_2(
    app: Flask, alice: User, catalog: None, clock: object, gateway: object
) -> None:
    """R-REN-2: never skipped: three terms, in order, each with its own invoice and charge."""
    subscription = subscribe(alice)
    at_noon(clock, date(2026, 7, 1))
    report = renew_due()
    assert report.renewed == 3
    invoices = _renewal_invoices(subscription.id)
    assert [(i.period_start, i.period_end, i.status) for i in invoices] == [
        (date(2026, 4, 17), date(2026, 5, 17), "paid"),
        (date(2026, 5, 17), date(2026, 6, 17), "paid"),
        (date(2026, 6, 17), date(2026, 7, 17), "paid"),
    ]
    terms = db.session.scalars(
        select(TermRow.start)
        .where(TermRow.subscription_id == subscription.id)
        .order_by(TermRow.start)
    ).all()
    assert terms == [date(2026, 3, 17), date(2026, 4, 17), date(2026, 5, 17), date(2026, 6, 17)]
    assert gateway.charge_count() == 4  # type: ignore[attr-defined]
    assert _claimed() == []  # every claim given back, the last term's with its payment


def test_missed_terms_of_a_declined_card_are_invoiced_in_order_and_charged_once_R_REN_2(
    app: Flask, alice: User, catalog: None, clock: object, gateway: object
) -> None:
    """R-REN-2 with a card that fails: after three months down, the first missed term's charge
    is declined and the license enters dunning; the next two terms are still invoiced, in
    order, and wait there instead of charging the failing card again. No claim is left."""
    subscription = subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 7, 1))
    report = renew_due()
    assert (report.renewed, report.failed) == (2, 1)
    invoices = _renewal_invoices(subscription.id)
    assert [(i.period_start, i.status) for i in invoices] == [
        (date(2026, 4, 17), "open"),
        (date(2026, 5, 17), "open"),
        (date(2026, 6, 17), "open"),
    ]
    assert gateway.charge_count() == 2  # type: ignore[attr-defined]  # purchase, 1st renewal
    assert status_of(db.session.get(Subscription, subscription.id)) == "Payment failed"
    assert _claimed() == []


def test_a_claim_comes_back_once_its_term_is_written_unless_more_terms_are_due_R_REN_2(
    app: Flask, catalog: None, clock: object, gateway: object
) -> None:
    """R-REN-2: while a batch's charges are in flight, a license renewed into a term that is
    not due yet is free again (no job wants it); one with more missed terms stays claimed
    until its charge is recorded, so a second worker cannot renew its next term first."""
    from flask_subscriptions.services.dunning import run_dunning
    from flask_subscriptions.services.pipeline import charge
    from flask_subscriptions.services.renewal_batch import open_batch
    from flask_subscriptions.services.renewals import record_batch

    at_noon(clock, date(2026, 5, 20))
    current = subscribe(new_user("current"))  # due June 20: one term to renew on June 20
    at_noon(clock, date(2026, 3, 17))
    behind = subscribe(new_user("behind"))  # due April 17: three terms by June 20
    at_noon(clock, date(2026, 6, 20))
    batch = open_batch("first-worker", 10)
    assert batch is not None and len(batch.reserved) == 2
    claims = dict(db.session.execute(select(Subscription.id, Subscription.claimed_by)).all())
    assert claims == {current.id: None, behind.id: "first-worker"}
    assert open_batch("second-worker", 10) is None  # nothing free is due
    assert run_dunning().retried == 0  # nothing is unpaid
    record_batch(batch, charge([r.request for r in batch.reserved]))
    assert _claimed() == []
    assert renew_due().renewed == 2  # the license behind renews its other two terms, in order
    assert [i.period_start for i in _renewal_invoices(behind.id)] == [
        date(2026, 4, 17),
        date(2026, 5, 17),
        date(2026, 6, 17),
    ]
    assert len(_renewal_invoices(current.id)) == 1


def _claimed() -> list[int]:
    return list(
        db.session.scalars(select(Subscription.id).where(Subscription.claimed_by.is_not(None)))
    )


def test_failed_renewal_is_recorded_emailed_and_not_retried_by_a_second_run_R_REN_2(
    app: Flask, alice: User, catalog: None, clock: object, outbox: Outbox, gateway: object
) -> None:
    """A renewal the card declines: Payment failed, the e-mail, one attempt only."""
    subscription = subscribe(alice, card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    assert renew_due().failed == 0
    failed = db.session.get(Subscription, subscription.id)
    assert status_of(failed) == "Payment failed"
    assert (failed.payment_failed_on, failed.grace_ends_on) == (
        date(2026, 4, 17),
        date(2026, 4, 24),
    )
    [invoice] = _renewal_invoices(subscription.id)
    assert (invoice.status, invoice.amount_due) == ("open", 10000)
    assert gateway.charge_count() == 2  # type: ignore[attr-defined]
    [mail] = outbox.of_kind("payment_failed")
    assert "We could not charge $100.00" in mail.text_body


@pytest.mark.parametrize("latency", [0, 0.01], ids=["batch-in-one-call", "one-call-per-charge"])
def test_each_renewal_is_charged_once_however_the_gateway_is_called_R_REN_2(
    app: Flask, catalog: None, clock: object, gateway: object, latency: float
) -> None:
    """R-REN-2: Sandbox Pay takes a batch in one call when instant; with a latency it plays
    a remote service and is called once per charge from ``concurrency`` threads. Either way
    each renewal is charged once, with its own key, and a decline goes to dunning."""
    owners = [new_user(f"owner{i}") for i in range(6)]
    subscriptions = [subscribe(owner) for owner in owners[:5]]
    declined = subscribe(owners[5], card=FIRST_CHARGE_ONLY)
    gateway.latency = latency  # type: ignore[attr-defined]
    assert gateway.bulk_charges is (latency == 0)  # type: ignore[attr-defined]
    at_noon(clock, date(2026, 4, 17))
    report = renew_due(concurrency=4)
    assert (report.renewed, report.failed, report.pending) == (5, 1, 0)
    assert dict(report.charged) == {"USD": 5 * 10000}
    charges = gateway.charges()  # type: ignore[attr-defined]
    assert len(charges) == len({c.idempotency_key for c in charges}) == 6 + 6
    for subscription in subscriptions:
        [invoice] = _renewal_invoices(subscription.id)
        assert (invoice.status, invoice.amount_due) == ("paid", 10000)
    assert status_of(db.session.get(Subscription, declined.id)) == "Payment failed"
    assert _claimed() == []
    assert renew_due(concurrency=4).renewed == 0
    assert gateway.charge_count() == 12  # type: ignore[attr-defined]


@pytest.mark.parametrize("app_config", [{"SUBSCRIPTIONS_RENEWAL_BATCH_SIZE": 3}])
def test_overlapping_batches_renew_each_license_once_with_one_receipt_R_REN_2_R_REN_3(
    app: Flask, catalog: None, clock: object, gateway: object, outbox: Outbox
) -> None:
    """R-REN-2, R-REN-3: called once per charge, a run keeps two batches in progress (one
    waits for its answers while the next is claimed and sent), each on its own session.
    Seven batches of three: every license renewed once, charged once, one receipt each."""
    owners = [new_user(f"lane{i}") for i in range(20)]
    for owner in owners:
        subscribe(owner)
    gateway.latency = 0.005  # type: ignore[attr-defined]
    at_noon(clock, date(2026, 4, 17))
    report = renew_due(concurrency=4)
    assert (report.renewed, report.failed, report.pending) == (20, 0, 0)
    assert dict(report.charged) == {"USD": 20 * 10000}
    charges = gateway.charges()  # type: ignore[attr-defined]
    assert len(charges) == len({c.idempotency_key for c in charges}) == 20 + 20
    invoices = db.session.scalars(select(Invoice).where(Invoice.kind == "renewal")).all()
    assert sorted(i.subscription_id for i in invoices) == sorted(
        db.session.scalars(select(Subscription.id))
    )
    assert {i.status for i in invoices} == {"paid"}
    assert outbox.kinds().count("renewal_receipt") == 20
    assert _claimed() == []


def test_an_outcome_another_reporter_recorded_first_is_recorded_once_R_REN_2(
    app: Flask, catalog: None, clock: object, gateway: object, outbox: Outbox
) -> None:
    """R-REN-2: while a batch's charges were in flight, another reporter (a webhook, a lookup)
    recorded one of them. The batch records the others: each invoice paid once, one receipt
    each, one payment_succeeded signal per payment, each payment with its charge id."""
    from flask_subscriptions import signals
    from flask_subscriptions.services.pipeline import charge, record_outcome
    from flask_subscriptions.services.renewal_batch import open_batch
    from flask_subscriptions.services.renewals import record_batch

    for i in range(3):
        subscribe(new_user(f"raced{i}"))
    at_noon(clock, date(2026, 4, 17))
    batch = open_batch("worker", 10)
    assert batch is not None and len(batch.reserved) == 3
    results = charge([r.request for r in batch.reserved])
    seen: list[object] = []

    def succeeded(sender: Flask, **kw: object) -> None:
        seen.append(kw["payment_id"])

    signals.payment_succeeded.connect(succeeded, app)
    try:
        first, raced, last = (r.payment_id for r in batch.reserved)
        assert record_outcome(raced, results[1])  # the other reporter wins this one
        outcomes = record_batch(batch, results)
    finally:
        signals.payment_succeeded.disconnect(succeeded, app)
    assert [c.payment_id for c in outcomes.succeeded] == [first, last]
    assert sorted(seen) == sorted([first, raced, last])  # type: ignore[type-var]
    db.session.expire_all()
    for one, result in zip(batch.reserved, results, strict=True):
        payment = db.session.get(Payment, one.payment_id)
        assert (payment.status, payment.charge_id) == ("succeeded", result.charge_id)
        assert db.session.get(Invoice, payment.invoice_id).status == "paid"
    receipts = outbox.of_kind("renewal_receipt")
    assert sorted(m.dedupe_key for m in receipts) == sorted(
        f"renewal_receipt:{r.invoice_id}" for r in batch.reserved
    )
    assert gateway.charge_count() == 3 + 3  # type: ignore[attr-defined]


def test_renewal_keeps_the_price_the_license_holds_R_CAT_1(
    app: Flask, alice: User, catalog: None, clock: object, tmp_path: object
) -> None:
    """R-CAT-1: a changed catalog price is for new purchases; the license keeps its own."""
    from pathlib import Path

    from .conftest import SAMPLE_CATALOG

    subscription = subscribe(alice)
    changed = Path(str(tmp_path)) / "catalog.toml"
    changed.write_text(SAMPLE_CATALOG.read_text().replace('month = "100.00"', 'month = "120.00"'))
    loaded = app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(changed)])
    assert loaded.exit_code == 0, loaded.output
    bob = subscribe(new_user("bob"))  # a new purchase is at the new price, $120.00
    bought = select(Invoice.amount_due).where(
        Invoice.subscription_id == bob.id, Invoice.kind == "purchase"
    )
    assert db.session.scalar(bought) == 12000
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    assert [i.amount_due for i in _renewal_invoices(subscription.id)] == [10000]


def _plan(code: str) -> Plan:
    return db.session.scalar(select(Plan).where(Plan.code == code))


def test_statements_per_renewal_batch_are_fixed_R_REN_2(
    app: Flask, catalog: None, clock: object
) -> None:
    """A batch's SQL is a fixed set of statements: it grows neither with the number of
    subscriptions in the batch nor with their history (set-based, executemany)."""
    users = [new_user(f"user{i}") for i in range(9)]
    for user in users[:3]:
        subscribe(user)  # on March 17
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    for user in users[3:]:
        subscribe(user)  # six more on April 17, as the first three renew
    counts = []
    for month in range(4):
        at_noon(clock, date(2026, 5 + month, 17))
        db.session.commit()  # each run starts with no transaction open
        with statements() as sent:
            renew_due(concurrency=1)
        counts.append(len(sent))
    # May to August renew all nine: three with 2 to 5 terms of history, six with 1 to 4.
    assert counts[0] == counts[1] == counts[2] == counts[3], counts
    # measured: 30 with SQLite's BEGINs, 26 on PostgreSQL (one reads the cards that last paid)
    assert counts[0] <= 30, counts
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 9 + 3 + 9 * 4
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 0


@pytest.mark.sqlite_only
@pytest.mark.parametrize("analyzed", [False, True], ids=["never-analyzed", "analyzed"])
def test_a_renewal_run_reads_no_more_with_thousands_of_settled_payments_R_REN_2(
    app: Flask, catalog: None, clock: object, analyzed: bool
) -> None:
    """What a run reads does not grow with the payments other licenses made long ago.
    Counted in SQLite's own virtual-machine steps, on a database never analyzed (most
    SQLite ones: the planner takes "succeeded" for a rare status, and read every succeeded
    payment to find the batch's last-paid cards) and on one analyzed (the planner took the
    bound open statuses for common ones, and read every invoice to find the open
    payments). Either read grew with history: 13 and 17 ms a batch at 50,000 licenses."""
    for i in range(12):
        subscribe(new_user(f"due{i}"))  # on March 17
    at_noon(clock, date(2026, 4, 17))
    _analyze(analyzed)
    before = _steps(_renew_batches)
    at_noon(clock, date(2026, 4, 20))
    other = subscribe(new_user("other"))  # renews on May 20: not in the run below
    _settled_history(other, 3000)
    at_noon(clock, date(2026, 5, 17))
    _analyze(analyzed)
    after = _steps(_renew_batches)
    assert after < before * 1.25, (before, after)
    assert len(_renewal_invoices_paid()) == 24


def _renew_batches() -> None:
    """A run's batches, without the reconciliation that opens a run (once a run, it looks
    for open payments in id order, and SQLite walks every payment for them: not yet flat)."""
    token = uuid.uuid4().hex
    while renew_batch(token):
        pass


def _renewal_invoices_paid() -> list[Invoice]:
    return list(
        db.session.scalars(
            select(Invoice).where(Invoice.kind == "renewal", Invoice.status == "paid")
        )
    )


def _analyze(analyzed: bool) -> None:
    db.session.commit()
    if analyzed:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _steps(action: object) -> int:
    """SQLite virtual-machine steps (in hundreds) that ``action`` runs on the billing engine."""
    steps = 0

    def counted() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    def watch(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.set_progress_handler(counted, 100)

    db.session.commit()
    db.engine.dispose()  # new connections, each watched
    event.listen(db.engine, "connect", watch)
    try:
        action()  # type: ignore[operator]
    finally:
        event.remove(db.engine, "connect", watch)
        db.session.commit()
        db.engine.dispose()
    return steps


def _settled_history(subscription: Subscription, count: int) -> None:
    """``count`` paid invoices of ``subscription``, each with its succeeded payment: copies
    of its purchase's rows (history the runs must not read)."""
    invoice = db.session.scalars(
        select(Invoice).where(Invoice.subscription_id == subscription.id)
    ).one()
    payment = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).one()
    invoices, payments = Invoice.__table__, Payment.__table__
    invoice_row = {c.name: getattr(invoice, c.key) for c in Invoice.__mapper__.columns}
    payment_row = {c.name: getattr(payment, c.key) for c in Payment.__mapper__.columns}
    first = (db.session.scalar(select(func.max(Invoice.id))) or 0) + 1
    first_payment = (db.session.scalar(select(func.max(Payment.id))) or 0) + 1
    db.session.execute(
        insert(invoices),
        [
            {**invoice_row, "id": first + i, "number": f"H-{i}", "term_id": None}
            for i in range(count)
        ],
    )
    db.session.execute(
        insert(payments),
        [
            {
                **payment_row,
                "id": first_payment + i,
                "invoice_id": first + i,
                "idempotency_key": f"history:{i}",
            }
            for i in range(count)
        ],
    )
    db.session.commit()


def test_renew_cli_prints_a_summary_R_REN_4(app: Flask, catalog: None, clock: object) -> None:
    """R-REN-4: the CLI for cron or any worker, with its summary."""
    for i in range(3):
        subscribe(new_user(f"cli{i}"))
    subscribe(new_user("failing"), card=FIRST_CHARGE_ONLY)
    at_noon(clock, date(2026, 4, 17))
    result = app.test_cli_runner().invoke(args=["subscriptions", "renew"])
    assert result.exit_code == 0, result.output
    assert "Renewed 3, failed 1, pending 0, expired 0." in result.output
    assert "Charged $300.00 in USD." in result.output


@pytest.mark.parametrize("app_config", [{"SUBSCRIPTIONS_SCHEDULER_ENABLED": True}])
def test_jobs_run_on_the_hosts_scheduler_and_from_the_cli_R_REN_4(
    app: Flask, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-REN-4: on flask-apscheduler inside the host by default (the four jobs with stable
    ids, started by the first request, never by a CLI command that loads the app), and the
    same jobs once from ``flask subscriptions run-jobs``."""
    from datetime import timedelta

    from flask_subscriptions import get_state

    scheduler = get_state().scheduler
    ids = [
        "subscriptions.renew",
        "subscriptions.dunning",
        "subscriptions.reconcile",
        "subscriptions.deliver_mail",
    ]
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == sorted(ids)
    assert jobs["subscriptions.renew"].trigger.interval == timedelta(minutes=10)
    subscription = subscribe(new_user("scheduled"))
    at_noon(clock, date(2026, 4, 17))
    db.session.commit()
    scheduler.run_job("subscriptions.renew")  # as the scheduler calls it: in its own context
    db.session.expire_all()
    [invoice] = _renewal_invoices(subscription.id)
    assert invoice.status == "paid"
    result = app.test_cli_runner().invoke(args=["subscriptions", "run-jobs"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == ids
    assert not scheduler.running  # neither the app nor a CLI command started its thread
    assert {m.status for m in outbox.of_kind("renewal_receipt")} == {"sent"}
    try:
        app.test_client().get("/login")
        assert scheduler.running  # the first request starts it
    finally:
        scheduler.shutdown(wait=False)
