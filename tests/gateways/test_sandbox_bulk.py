"""Sandbox Pay's bulk path (``charge_many``): each request charged exactly as ``charge`` would.

The renewal job hands a batch to a gateway that takes batches (``BulkCharges``); what a
user sees must not depend on that: one charge per key (R-BUY-6, R-REN-2), the same answers,
the same card attempt counters, the same fault behaviour, whoever races it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_subscriptions.gateways import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
)
from flask_subscriptions.gateways.base import BulkCharges
from flask_subscriptions.gateways.sandbox import LATENCY_ENV, SandboxGateway
from flask_subscriptions.gateways.sandbox import service as sandbox_service
from flask_subscriptions.gateways.sandbox.storage import charges

from ..conftest import at_once
from .conftest import PAY_RETURN, Today
from .test_sandbox import HARD, SOFT, SUCCEEDS, Register, _attempts, charge_request, outcome, pay

EXPIRED = (ChargeStatus.DECLINED, DeclineKind.HARD, "expired_card")
ACTION = ChargeStatus.REQUIRES_ACTION


def settled(answers: Sequence[ChargeResult | GatewayError]) -> list[ChargeResult]:
    """The answers, all of them results (an error in any slot fails the test)."""
    errors = [answer for answer in answers if not isinstance(answer, ChargeResult)]
    assert errors == []
    return [answer for answer in answers if isinstance(answer, ChargeResult)]


def without_ids(result: ChargeResult) -> ChargeResult:
    """What the person is told, minus the ids that differ between two charges."""
    return replace(result, charge_id=None, action_url=None)


# -- the switch -----------------------------------------------------------------------


def test_bulk_charges_only_when_instant(
    sandbox: SandboxGateway, pay_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches when in-process and instant; one call per charge when it plays a remote one."""
    assert isinstance(sandbox, BulkCharges)
    assert sandbox.bulk_charges is True
    sandbox.latency = 0.05
    assert sandbox.bulk_charges is False
    assert SandboxGateway(latency=0.2).bulk_charges is False
    assert SandboxGateway(latency=0).bulk_charges is True
    monkeypatch.setenv(LATENCY_ENV, "50")
    assert SandboxGateway().bulk_charges is False
    monkeypatch.delenv(LATENCY_ENV)
    assert SandboxGateway().bulk_charges is True
    assert SandboxGateway(latency=0, takes_batches=False).bulk_charges is False


def test_empty_batch_answers_nothing(sandbox: SandboxGateway, pay_app: Flask) -> None:
    assert sandbox.charge_many([]) == []
    assert sandbox.charge_count() == 0


# -- one charge per key -----------------------------------------------------------------


def test_batch_charges_each_key_once_in_request_order_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-REN-2: a row per key, answers in request order, each what a lookup then reports;
    the same batch again (in any order) replays the same charges and charges nothing more."""
    numbers = ["4242424242424242", "4000000000000341", "5555555555554444", "4000000000009995"]
    tokens = [register(number).token for number in numbers]
    batch = [
        charge_request(customer, token, f"renewal:{n}:1", amount=1000 + n)
        for n, token in enumerate(tokens)
    ]

    answers = settled(sandbox.charge_many(batch))

    assert [outcome(answer) for answer in answers] == [SUCCEEDS, HARD, SUCCEEDS, SOFT]
    assert answers == [sandbox.lookup_charge(req.idempotency_key) for req in batch]
    assert len({answer.charge_id for answer in answers}) == 4
    assert sandbox.charge_count() == 4
    rows = {row.idempotency_key: row for row in sandbox.charges(customer)}
    for req, answer in zip(batch, answers, strict=True):
        row = rows[req.idempotency_key]
        assert (row.id, row.payment_method, row.amount, row.currency, row.status) == (
            answer.charge_id,
            req.payment_method,
            req.amount,
            "usd",
            answer.status.value,
        )
    assert [_attempts(sandbox, token) for token in tokens] == [1, 1, 1, 1]

    assert sandbox.charge_many(batch) == answers
    assert sandbox.charge_many(batch[::-1]) == answers[::-1]
    assert sandbox.charge_many([replace(req, currency="USD") for req in batch]) == answers
    assert sandbox.charge_count() == 4
    assert [_attempts(sandbox, token) for token in tokens] == [1, 1, 1, 1]


def test_same_key_twice_in_one_batch_charges_once_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: a key repeated inside a batch is a replay: one row, one card attempt."""
    card = register("4000000000001232").token
    batch = [
        charge_request(customer, card, "renewal:1:1"),
        charge_request(customer, card, "renewal:2:1"),
        charge_request(customer, card, "renewal:1:1"),
    ]
    answers = settled(sandbox.charge_many(batch))
    assert answers[0] == answers[2]
    assert [outcome(answer) for answer in answers] == [SUCCEEDS, HARD, SUCCEEDS]
    assert sandbox.charge_count("renewal:1:1") == 1
    assert sandbox.charge_count() == 2
    assert _attempts(sandbox, card) == 2


def test_batch_replays_keys_charged_one_by_one_before_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: keys already charged by ``charge`` replay; the others are charged."""
    card = register("4000000000001232").token
    purchase = pay(sandbox, customer, card, "purchase")
    declined = pay(sandbox, customer, card, "renewal:1:1")
    assert (outcome(purchase), outcome(declined)) == (SUCCEEDS, HARD)

    batch = [
        charge_request(customer, card, "renewal:2:1"),
        charge_request(customer, card, "purchase"),
        charge_request(customer, card, "renewal:1:1"),
        charge_request(customer, card, "renewal:3:1"),
    ]
    answers = settled(sandbox.charge_many(batch))
    assert answers[1:3] == [purchase, declined]
    assert [outcome(answer) for answer in answers] == [HARD, SUCCEEDS, HARD, HARD]
    assert answers[0].charge_id not in (purchase.charge_id, declined.charge_id)
    assert answers[0] == sandbox.lookup_charge("renewal:2:1")
    assert answers[3] == sandbox.lookup_charge("renewal:3:1")
    assert sandbox.charge_count() == 4
    assert [sandbox.charge_count(req.idempotency_key) for req in batch] == [1, 1, 1, 1]
    assert _attempts(sandbox, card) == 4


def test_batch_replays_an_authenticated_charge_as_it_stands_now_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: as ``charge`` does, a REQUIRES_ACTION charge the person has since
    confirmed replays as SUCCEEDED (no action_url), not as its first answer."""
    card = register("4000 0027 6000 3184").token
    batch = [charge_request(customer, card, "renewal:1:1")]
    [first] = settled(sandbox.charge_many(batch))
    assert first.status is ACTION
    assert first.action_url == f"/sandbox-pay/authenticate/{first.charge_id}"
    assert first.charge_id is not None
    sandbox.complete_authentication(first.charge_id, succeeded=True)
    assert sandbox.charge_many(batch) == [ChargeResult(SUCCEEDS, first.charge_id)]
    assert sandbox.charge_count() == 1
    assert _attempts(sandbox, card) == 1


# -- the same answers as one by one -------------------------------------------------------

SCRIPT = [
    "succeeds",
    "first_only",
    "hard",
    "first_only",
    "soft",
    "action",
    "expired",
    "removed",
    "first_only",
    "strangers",
    "unknown",
    "succeeds",
]


def test_batch_answers_as_sequential_charges_would_for_every_card_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str, today: Today
) -> None:
    """R-REN-2, R-DUN-1: the same requests on two customers' identical cards, one set in a
    batch, the other one by one: the same answers, stored charges and attempt counters
    (first-charge-only three times in one batch: succeeds, then hard-declined twice)."""
    other = sandbox.create_customer("account-2", None)
    strangers_card = register("4242424242424242", owner=sandbox.create_customer("x", None))

    def requests_of(owner: str, prefix: str) -> tuple[list[ChargeRequest], dict[str, str]]:
        tokens = {
            "succeeds": register("4242424242424242", owner=owner).token,
            "hard": register("4000000000000341", owner=owner).token,
            "soft": register("4000000000009995", owner=owner).token,
            "first_only": register("4000000000001232", owner=owner).token,
            "action": register("4000002760003184", owner=owner).token,
            "expired": register("5555555555554444", expiry="03/26", owner=owner).token,
            "removed": register("5555555555554444", owner=owner).token,
            "strangers": strangers_card.token,
            "unknown": "pm_unknown",
        }
        sandbox.remove_payment_method(tokens["removed"])
        requests = [
            charge_request(
                owner,
                tokens[name],
                f"{prefix}:{n}",
                amount=1300 + n,
                return_url=PAY_RETURN if name == "action" else None,
            )
            for n, name in enumerate(SCRIPT)
        ]
        return requests, tokens

    bulk, bulk_cards = requests_of(customer, "bulk")
    single, single_cards = requests_of(other, "single")
    today.value = date(2026, 4, 1)  # the 03/26 cards have expired

    in_bulk = settled(sandbox.charge_many(bulk))
    one_by_one = [sandbox.charge(req) for req in single]

    assert [outcome(answer) for answer in in_bulk] == [
        SUCCEEDS, SUCCEEDS, HARD, HARD, SOFT, ACTION, EXPIRED, HARD, HARD, HARD, HARD, SUCCEEDS,
    ]  # fmt: skip
    assert [without_ids(answer) for answer in in_bulk] == [
        without_ids(answer) for answer in one_by_one
    ]
    for answer in in_bulk + one_by_one:
        assert answer.charge_id is not None
        if answer.status is ACTION:
            assert answer.action_url == f"/sandbox-pay/authenticate/{answer.charge_id}"
        else:
            assert answer.action_url is None
    assert in_bulk == [sandbox.lookup_charge(req.idempotency_key) for req in bulk]

    def stored(owner: str) -> list[tuple[object, ...]]:
        rows = sorted(
            sandbox.charges(owner), key=lambda row: int(row.idempotency_key.rsplit(":", 1)[1])
        )
        return [
            (
                row.amount,
                row.status,
                row.decline_kind,
                row.decline_code,
                row.message,
                row.return_url,
            )
            for row in rows
        ]

    assert sandbox.charge_count() == 2 * len(SCRIPT)
    assert stored(customer) == stored(other)
    attempts = {
        name: _attempts(sandbox, bulk_cards[name]) for name in bulk_cards if name != "unknown"
    }
    assert attempts == {
        name: _attempts(sandbox, single_cards[name]) for name in single_cards if name != "unknown"
    }
    assert attempts == {
        "succeeds": 2, "hard": 1, "soft": 1, "first_only": 3, "action": 1,
        "expired": 0, "removed": 0, "strangers": 0,
    }  # fmt: skip


# -- a reused key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 1301},
        {"currency": "eur"},
        {"payment_method": "pm_other"},
        {"customer": "cus_other"},
    ],
)
def test_key_reused_for_another_request_is_an_error_in_its_slot_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str, change: dict[str, Any]
) -> None:
    """R-BUY-6: that slot answers ``IdempotencyKeyReused``; the others are charged; the
    recorded charge is untouched and nothing more is recorded or attempted for it."""
    card = register("4000000000001232").token
    first = pay(sandbox, customer, card, "order:7")
    batch = [
        charge_request(customer, card, "order:8"),
        replace(charge_request(customer, card, "order:7"), **change),
        charge_request(customer, card, "order:9"),
    ]
    answers = sandbox.charge_many(batch)
    assert isinstance(answers[1], IdempotencyKeyReused)
    assert [outcome(answer) for answer in settled([answers[0], answers[2]])] == [HARD, HARD]
    assert sandbox.charge_count("order:7") == 1
    assert sandbox.charge_count() == 3
    assert sandbox.lookup_charge("order:7") == first
    assert _attempts(sandbox, card) == 3


def test_key_reused_inside_one_batch_is_an_error_in_its_slot_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: the first request with the key is charged, the second (another amount)
    is refused, as ``charge`` would refuse it after the first."""
    card = register("4242424242424242").token
    batch = [
        charge_request(customer, card, "order:7"),
        charge_request(customer, card, "order:7", amount=1400),
        charge_request(customer, card, "order:8"),
    ]
    answers = sandbox.charge_many(batch)
    assert isinstance(answers[1], IdempotencyKeyReused)
    charged = settled([answers[0], answers[2]])
    assert [outcome(answer) for answer in charged] == [SUCCEEDS, SUCCEEDS]
    assert sandbox.charge_count("order:7") == 1
    assert sandbox.charge_count() == 2
    [row] = [row for row in sandbox.charges(customer) if row.idempotency_key == "order:7"]
    assert (row.id, row.amount) == (charged[0].charge_id, 1300)
    assert _attempts(sandbox, card) == 2


# -- fault switches ---------------------------------------------------------------------


def test_storage_failure_in_a_batch_charges_one_by_one_R_REN_2(
    sandbox: SandboxGateway,
    register: Register,
    customer: str,
    pay_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-REN-2: the batch's transaction fails (a lost connection, a lock timeout): each
    request is charged on its own, once, rather than every slot told "no answer"."""
    good, first_only = register("4242424242424242").token, register("4000000000001232").token
    batch = [
        charge_request(customer, good, "renewal:1:1"),
        charge_request(customer, first_only, "renewal:2:1"),
    ]

    def fail(*_args: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(sandbox, "_record_many", fail)
    answers = settled(sandbox.charge_many(batch))
    assert [outcome(answer) for answer in answers] == [SUCCEEDS, SUCCEEDS]
    assert [sandbox.lookup_charge(r.idempotency_key) for r in batch] == answers
    assert sandbox.charge_count() == 2
    assert _attempts(sandbox, first_only) == 1


def test_fail_before_charge_fails_every_slot_and_records_nothing_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-REN-2: nothing happened, so the same batch retried later charges each key once."""
    good, first_only = register("4242424242424242").token, register("4000000000001232").token
    batch = [charge_request(customer, card, f"renewal:{n}:1") for n, card in
             enumerate([good, first_only, first_only])]  # fmt: skip
    sandbox.fail_before_charge = True
    answers = sandbox.charge_many(batch)
    assert len(answers) == 3
    assert all(isinstance(answer, GatewayUnavailable) for answer in answers)
    assert sandbox.charge_count() == 0
    assert [sandbox.lookup_charge(req.idempotency_key) for req in batch] == [None] * 3
    assert (_attempts(sandbox, good), _attempts(sandbox, first_only)) == (0, 0)

    sandbox.fail_before_charge = False
    retried = settled(sandbox.charge_many(batch))
    assert [outcome(answer) for answer in retried] == [SUCCEEDS, SUCCEEDS, HARD]
    assert sandbox.charge_count() == 3
    assert (_attempts(sandbox, good), _attempts(sandbox, first_only)) == (1, 2)


def test_timeout_after_charge_records_every_charge_found_by_lookup_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-REN-2: every slot times out, but the charges happened: lookup finds each, and the
    batch retried (while it lasts, or after) charges nothing more and replays them."""
    good, first_only = register("4242424242424242").token, register("4000000000001232").token
    batch = [charge_request(customer, card, f"renewal:{n}:1") for n, card in
             enumerate([good, first_only, first_only])]  # fmt: skip
    sandbox.timeout_after_charge = True
    answers = sandbox.charge_many(batch)
    assert len(answers) == 3
    assert all(isinstance(answer, GatewayTimeout) for answer in answers)
    assert sandbox.charge_count() == 3
    again = sandbox.charge_many(batch)  # still no answer on a retry while it lasts
    assert all(isinstance(answer, GatewayTimeout) for answer in again)
    assert sandbox.charge_count() == 3

    sandbox.timeout_after_charge = False
    found = [sandbox.lookup_charge(req.idempotency_key) for req in batch]
    assert [outcome(result) for result in found if result is not None] == [SUCCEEDS, SUCCEEDS, HARD]
    assert sandbox.charge_many(batch) == found
    assert sandbox.charge_count() == 3
    assert (_attempts(sandbox, good), _attempts(sandbox, first_only)) == (1, 2)


# -- races --------------------------------------------------------------------------------


def _assert_the_winner_answers(
    sandbox: SandboxGateway,
    answers: list[ChargeResult | GatewayError],
    winner: ChargeResult | None,
    cards: tuple[str, str],
) -> None:
    """After a lost insert race: the racing key answers the winner's charge, the other key
    is charged, one row each, and the loser's card attempts were rolled back."""
    racing, other = settled(answers)
    assert winner is not None and outcome(winner) is SUCCEEDS
    assert racing == winner
    assert outcome(other) is SUCCEEDS and other == sandbox.lookup_charge("renewal:2:1")
    assert sandbox.charge_count("renewal:1:1") == sandbox.charge_count("renewal:2:1") == 1
    assert sandbox.charge_count() == 2
    assert [_attempts(sandbox, card) for card in cards] == [1, 1]


def test_losing_the_batch_insert_race_answers_the_winner_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-BUY-6: a key charged by another request that the batch's read missed (not yet
    committed then): the batch's insert fails on the unique key, its work is rolled back
    and each request is charged one by one, the racing key answering the winner's charge.

    The first-charge-only card shows it: had the batch's own decision (its 2nd attempt,
    hard-declined) survived, the answer would be a decline and the counter 2."""
    first_only, good = register("4000000000001232").token, register("4242424242424242").token
    winner = pay(sandbox, customer, first_only, "renewal:1:1")
    # The batch's read misses the winner's row, as if it had not committed yet.
    blind = sandbox_service._CHARGES_BY_KEYS.where(charges.c.idempotency_key != "renewal:1:1")
    monkeypatch.setattr(sandbox_service, "_CHARGES_BY_KEYS", blind)
    answers = sandbox.charge_many(
        [
            charge_request(customer, first_only, "renewal:1:1"),
            charge_request(customer, good, "renewal:2:1"),
        ]
    )
    _assert_the_winner_answers(sandbox, answers, winner, (first_only, good))


@pytest.mark.postgres_only
def test_a_charge_committed_between_the_batch_read_and_insert_wins_R_BUY_6(
    sandbox: SandboxGateway, register: Register, customer: str
) -> None:
    """R-BUY-6: a real interleaving: another request charges one of the batch's keys and
    commits after the batch read its keys, before it locks the cards and inserts."""
    first_only, good = register("4000000000001232").token, register("4242424242424242").token
    winners: list[ChargeResult] = []

    def race(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if "sandbox_cards.token IN" in statement and not winners:
            winners.append(pay(sandbox, customer, first_only, "renewal:1:1"))

    engine = sandbox.engine()
    sa.event.listen(engine, "before_cursor_execute", race)
    try:
        answers = sandbox.charge_many(
            [
                charge_request(customer, first_only, "renewal:1:1"),
                charge_request(customer, good, "renewal:2:1"),
            ]
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", race)
    assert len(winners) == 1
    _assert_the_winner_answers(sandbox, answers, winners[0], (first_only, good))


def test_threads_racing_with_one_batch_make_one_charge_per_key_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str, pay_app: Flask
) -> None:
    """R-REN-2, R-BUY-6: 4 workers charge the same 10 renewals at once: 10 rows, every
    worker told the same charges, each card attempted once per key."""
    good, first_only = register("4242424242424242").token, register("4000000000001232").token
    batch = [
        charge_request(customer, first_only if n % 2 else good, f"renewal:{n}:1") for n in range(10)
    ]
    answers = at_once(pay_app, 4, lambda _me: sandbox.charge_many(batch))
    assert len(answers) == 4
    first = settled(answers[0])
    assert all(settled(other) == first for other in answers[1:])
    assert [outcome(answer) for answer in first[1::2]] == [SUCCEEDS, HARD, HARD, HARD, HARD]
    assert [outcome(answer) for answer in first[0::2]] == [SUCCEEDS] * 5
    assert sandbox.charge_count() == 10
    assert {row.id for row in sandbox.charges(customer)} == {answer.charge_id for answer in first}
    assert (_attempts(sandbox, good), _attempts(sandbox, first_only)) == (5, 5)


def test_batches_racing_on_shared_cards_are_all_charged_R_REN_2(
    sandbox: SandboxGateway, register: Register, customer: str, pay_app: Flask
) -> None:
    """R-REN-2: workers charging different renewals on the same cards at once (one customer's
    subscriptions, several workers): every request is charged and answered, as it would be
    one by one (``charge`` locks one card per transaction, so it cannot deadlock).

    A batch locks all its cards in one transaction; unless every batch locks them in one
    order, two batches deadlock on PostgreSQL and one answers ``GatewayTimeout`` for all its
    requests although nothing was charged."""
    tokens = [register("4242424242424242").token for _ in range(6)]
    workers, rounds = 6, 20

    def work(me: int) -> list[ChargeResult | GatewayError]:
        answers: list[ChargeResult | GatewayError] = []
        for round_ in range(rounds):
            batch = [
                charge_request(customer, tokens[(n + me + round_) % 6], f"w{me}:{round_}:{n}")
                for n in range(6)
            ]
            answers.extend(sandbox.charge_many(batch))
        return answers

    answers = [answer for mine in at_once(pay_app, workers, work) for answer in mine]
    failed = [answer for answer in answers if not isinstance(answer, ChargeResult)]
    assert failed == [], f"{len(failed)} of {len(answers)} answers: {failed[0]}"
    assert {outcome(answer) for answer in settled(answers)} == {SUCCEEDS}
    assert len(answers) == sandbox.charge_count() == workers * rounds * 6
    assert sum(_attempts(sandbox, token) for token in tokens) == workers * rounds * 6
