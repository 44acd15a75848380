"""The jobs fanned out to a task queue's workers (R-OPS-4): many processes on many machines.

A *dispatcher* counts what a job has to do now and enqueues one task per batch; each task
claims its batch in the database (a conditional UPDATE with a lease, ``SKIP LOCKED`` on
PostgreSQL), does it, and records it. The queue adds only speed: exactly-once stays in the
database, so a task delivered twice, or run by two workers at once, finds its work taken
and does nothing, and a worker that dies loses nothing (its claims run out and its open
payments are settled by reconciliation from their keys).

This module names the tasks and does the work each one stands for; it imports no task
queue. A queue plugs in as a :class:`TaskQueue` (``flask_subscriptions.celery`` for
Celery), which is all the CLI's ``--on-workers`` needs.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask

from .jobs import all_jobs, interval_minutes
from .notifications import count_deliverable, deliver_due
from .services.claims import held
from .services.dunning import run_dunning, unpaid_ids
from .services.reconciliation import (
    ReconcileReport,
    count_open,
    open_payment_ids,
    reconcile_payments,
    reconcile_unknown_payments,
)
from .services.renewals import count_due, renew_batch, still_due
from .state import get_state

# The tasks' names, stable: a queue may hold messages sent by the previous release.
RENEW = "subscriptions.renew"
RENEW_BATCH = "subscriptions.renew_batch"
RENEW_SWEEP = "subscriptions.renew_sweep"
DUNNING = "subscriptions.dunning"
DUNNING_BATCH = "subscriptions.dunning_batch"
RECONCILE = "subscriptions.reconcile"
RECONCILE_BATCH = "subscriptions.reconcile_batch"
DELIVER_MAIL = "subscriptions.deliver_mail"
DELIVER_MAIL_BATCH = "subscriptions.deliver_mail_batch"

#: Payments one reconciliation task settles (each is one gateway lookup).
RECONCILE_BATCH_SIZE = 200
#: How many times a run's sweep comes back (once a claim lease each) before it leaves the
#: rest to the next scheduled run: a payment the gateway cannot answer about holds its
#: license back for as long as that lasts, and the sweep must not chase it forever.
SWEEP_ROUNDS = 12


class TaskQueue(Protocol):
    """Sends a task by name to the workers: what ``--on-workers`` and the dispatchers need
    of a queue (``flask_subscriptions.celery.CeleryQueue`` for Celery)."""

    def send(self, task: str, args: Sequence[Any] = (), countdown: float | None = None) -> None:
        """Enqueue ``task`` with ``args``, to run no sooner than ``countdown`` seconds."""
        ...


class GatewayNotAnswering(Exception):
    """The gateway could not be asked about some payments: the task is tried again later."""


@dataclass(frozen=True)
class Enqueued:
    """What a dispatcher enqueued, for the CLI and the dispatcher task's result."""

    job: str
    tasks: int
    items: int
    what: str

    def __str__(self) -> str:
        return f"{self.job}: {self.items} {self.what}, {self.tasks} tasks enqueued"


# --- dispatchers: count, then one task per batch --------------------------------------------


def dispatch_renewals(queue: TaskQueue) -> Enqueued:
    """One task per batch of due subscriptions, and the run's sweep one lease later.

    The tasks claim whichever due licenses are free when they run, not ids fixed now: two
    runs dispatched at once (beat and a person's CLI) only share the same work.
    """
    state = get_state()
    due = count_due()
    state.session.commit()
    tasks = math.ceil(due / state.settings.renewal_batch_size)
    for _ in range(tasks):
        queue.send(RENEW_BATCH)
    if due:
        queue.send(RENEW_SWEEP, args=(SWEEP_ROUNDS,), countdown=_lease_seconds())
    return Enqueued(RENEW, tasks, due, "due subscriptions")


def dispatch_dunning(queue: TaskQueue) -> Enqueued:
    """One task per ``DUNNING_BATCH_SIZE`` unpaid subscriptions, each given its ids: a
    dunning run takes each subscription once, and a task's share is fixed when sent."""
    return _in_chunks(
        queue,
        DUNNING,
        DUNNING_BATCH,
        unpaid_ids(),
        get_state().settings.dunning_batch_size,
        "unpaid subscriptions",
    )


def dispatch_reconciliation(queue: TaskQueue) -> Enqueued:
    """One task per ``RECONCILE_BATCH_SIZE`` payments whose outcome is not known."""
    ids = open_payment_ids()
    return _in_chunks(queue, RECONCILE, RECONCILE_BATCH, ids, RECONCILE_BATCH_SIZE, "payments")


def dispatch_mail(queue: TaskQueue) -> Enqueued:
    """One task per ``MAIL_BATCH_SIZE`` deliverable messages; each claims its own batch."""
    due = count_deliverable()
    tasks = math.ceil(due / get_state().settings.mail_batch_size)
    for _ in range(tasks):
        queue.send(DELIVER_MAIL_BATCH)
    return Enqueued(DELIVER_MAIL, tasks, due, "e-mails")


def dispatch_all(queue: TaskQueue) -> list[Enqueued]:
    """Every job's dispatcher, in the order ``run-jobs`` runs them in-process."""
    return [
        dispatch(queue)
        for dispatch in (
            dispatch_renewals,
            dispatch_dunning,
            dispatch_reconciliation,
            dispatch_mail,
        )
    ]


#: A dispatcher task's name → the dispatcher (what beat sends, what ``--on-workers`` runs).
DISPATCHERS: dict[str, Callable[[TaskQueue], Enqueued]] = {
    RENEW: dispatch_renewals,
    DUNNING: dispatch_dunning,
    RECONCILE: dispatch_reconciliation,
    DELIVER_MAIL: dispatch_mail,
}


def _in_chunks(
    queue: TaskQueue, job: str, task: str, ids: list[int], size: int, what: str
) -> Enqueued:
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    for chunk in chunks:
        queue.send(task, args=(chunk,))
    return Enqueued(job, len(chunks), len(ids), what)


# --- what one task does ----------------------------------------------------------------------


def renew_one_batch(queue: TaskQueue, worker: str) -> str:
    """Claim, charge and record one batch (``RENEWAL_CONCURRENCY`` charges at once).

    A license that still owes a term after this one (a scheduler down for months) is due
    again: one more task is sent for it, so the run goes on until every term exists.
    """
    workers = get_state().settings.renewal_concurrency
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = renew_batch(_token(worker), pool if workers > 1 else None)
    if done is None:
        return "nothing left to claim"
    if still_due(done.subscription_ids):
        queue.send(RENEW_BATCH)
    get_state().session.commit()
    return str(done.report)


def sweep_renewals(queue: TaskQueue, rounds_left: int) -> str:
    """The run's closing look, one lease after it was dispatched, and again each lease
    while work is left: what makes a run finish whatever the broker does with the message
    of a worker that died (Redis gives it back only after its visibility timeout).

    It settles the payments a dead worker left open (from their keys: never charged twice),
    and when licenses are still due while no live worker holds any claim, their tasks were
    lost with that worker: it sends tasks for them again.
    """
    reconcile_unknown_payments()
    due = count_due()
    holding = held()
    get_state().session.commit()
    if not due and not count_open():
        return "every due subscription is renewed"
    sent = 0
    if due and not holding:
        sent = math.ceil(due / get_state().settings.renewal_batch_size)
        for _ in range(sent):
            queue.send(RENEW_BATCH)
    if rounds_left > 1:
        queue.send(RENEW_SWEEP, args=(rounds_left - 1,), countdown=_lease_seconds())
    return f"{due} still due, {holding} held by live workers, {sent} tasks sent again"


def dun_these(subscription_ids: Sequence[int]) -> str:
    return str(run_dunning(among=subscription_ids))


def reconcile_these(payment_ids: Sequence[int]) -> str:
    """Settle a share of the open payments; raise (for a retry with backoff) when the
    gateway could not be asked about some: they are still open, nothing was charged."""
    report: ReconcileReport = reconcile_payments(payment_ids)
    if report.unanswered:
        raise GatewayNotAnswering(f"{report.unanswered} payments: the gateway did not answer")
    return f"settled {report.settled}, still unknown {report.still_unknown}"


def deliver_one_batch() -> str:
    return str(deliver_due())


def _token(worker: str) -> str:
    """A claim's token names the worker and process that hold it (``claimed_by`` shows who
    had a batch when it died); the random part keeps two tasks of one process apart."""
    return f"{worker[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_seconds() -> float:
    return get_state().settings.claim_lease_seconds + 1.0


# --- the beat schedule -----------------------------------------------------------------------


def beat_schedule(app: Flask, every: dict[str, float] | None = None) -> dict[str, Any]:
    """Celery beat entries for the four dispatchers, for the host to merge into its own
    ``beat_schedule``: the in-app scheduler's intervals (dunning every
    ``RETRY_AFTER_UPDATE_MINUTES``), or ``every`` (task name → seconds) where given.

    Run one beat: a second beat only dispatches twice, which the database makes harmless
    but not free.
    """
    settings = app.extensions["subscriptions"].settings
    seconds = {job.id: 60.0 * interval_minutes(job, settings) for job in all_jobs()}
    seconds.update(every or {})
    return {name: {"task": name, "schedule": seconds[name]} for name in DISPATCHERS}
