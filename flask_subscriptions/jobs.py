"""Background jobs (R-REN-4): on flask-apscheduler inside the host app by default, and the
same functions behind ``flask subscriptions run-jobs`` for cron or any external worker.

Where they run (R-OPS-4). Every process that loads the app and serves a request hosts a
scheduler (four gunicorn workers: four), but only one process per database *runs* the
jobs: at each tick a scheduler renews its lease in ``subs_job_leases`` or, when the lease
has expired, takes it over (one conditional UPDATE); the others skip the tick. So a dead
leader is replaced within ``SUBSCRIPTIONS_SCHEDULER_LEASE_SECONDS`` plus a tick, and
adding web workers adds no duplicate scans. Exactly-once still lives in the database
(claims, unique keys), never in the lease: cron running ``run-jobs`` (which takes no
lease) beside the in-app scheduler finds, at worst, nothing left to do.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask
from flask_apscheduler import APScheduler

from .models import JobLease
from .notifications import deliver_due
from .services.dunning import run_dunning
from .services.reconciliation import reconcile_unknown_payments
from .services.renewals import renew_due
from .state import get_state

if TYPE_CHECKING:
    from .config import Settings
    from .state import State

log = logging.getLogger(__name__)

#: The lease every in-app scheduler of one database competes for.
SCHEDULER_LEASE = "scheduler"
#: Tells apart two processes that a fork gave the same pid namespace and host name.
_BOOT = secrets.token_hex(4)
_leases = sa.table(
    JobLease.__tablename__, sa.column("name"), sa.column("holder"), sa.column("expires_at")
)


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[], Any]
    minutes: int
    summary: str


def _deliver_mail() -> Any:
    return deliver_due()


def _renew() -> Any:
    return renew_due()


def _dun() -> Any:
    return run_dunning()


def _reconcile_payments() -> Any:
    return reconcile_unknown_payments()


def all_jobs() -> tuple[Job, ...]:
    """The jobs in the order a test clock runs them: money first, then the mail it caused."""
    return (
        Job("subscriptions.renew", _renew, 10, "renew the subscriptions whose term ended"),
        Job("subscriptions.dunning", _dun, 15, "retry, warn, restrict or move unpaid renewals"),
        Job("subscriptions.reconcile", _reconcile_payments, 5, "settle unknown payment outcomes"),
        Job("subscriptions.deliver_mail", _deliver_mail, 1, "deliver the e-mail outbox"),
    )


def interval_minutes(job: Job, settings: Settings) -> int:
    """How often a job runs, on any scheduler (the in-app one, or Celery beat)."""
    if job.id == "subscriptions.dunning":
        return settings.retry_after_update_minutes  # R-DUN-2: every 15 by default
    return job.minutes


def run_due_jobs() -> dict[str, Any]:
    """Run every job once, in order, inside the current app context."""
    get_state().require_loaders()
    return {job.id: job.run() for job in all_jobs()}


def this_process() -> str:
    """The lease holder's name: computed per call, so workers forked from a preloading
    master (which registered the jobs) are each themselves."""
    return f"{socket.gethostname()}:{os.getpid()}:{_BOOT}"


def hold_lease(
    holder: str, seconds: int, *, name: str = SCHEDULER_LEASE, now: datetime | None = None
) -> bool:
    """Renew ``holder``'s lease, or take it if it expired (or never existed); whether
    ``holder`` holds it now. Its own short transactions, on the wall clock: a lease is
    about processes being alive, not about the billing date a test clock may move."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    values = {"holder": holder, "expires_at": now + timedelta(seconds=seconds)}
    engine = get_state().db.engine
    with engine.begin() as conn:
        taken = conn.execute(
            _leases.update()
            .where(
                _leases.c.name == name,
                sa.or_(_leases.c.holder == holder, _leases.c.expires_at < now),
            )
            .values(values)
        )
        if taken.rowcount == 1:
            return True
        if conn.execute(sa.select(_leases.c.name).where(_leases.c.name == name)).first():
            return False
    try:
        with engine.begin() as conn:
            conn.execute(_leases.insert().values(name=name, **values))
    except sa.exc.IntegrityError:  # another process made the row first: it leads
        return False
    return True


def _run_in_app(app: Flask, job_id: str) -> None:
    """What the scheduler calls: the job, if this process holds the lease."""
    job = next(j for j in all_jobs() if j.id == job_id)
    with app.app_context():
        get_state().require_loaders()  # R-OPS-5: a job never runs for a host it cannot serve
        seconds = get_state().settings.scheduler_lease_seconds
        if not hold_lease(this_process(), seconds):
            log.debug("%s skipped: another process holds the scheduler lease", job_id)
            return
        job.run()


def register_jobs(app: Flask, state: State) -> None:
    """Put every job on the app's flask-apscheduler, with stable ids.

    Without a scheduler from the host we create one and start it with the first request, so
    CLI commands (which also load the app) never start background threads. Each tick runs
    only in the process holding the lease (:func:`hold_lease`).
    """
    if not state.settings.scheduler_enabled:
        return
    scheduler = state.scheduler
    if scheduler is None:
        scheduler = state.scheduler = APScheduler()
        scheduler.init_app(app)
        lock = threading.Lock()

        @app.before_request
        def _start_scheduler() -> None:
            if not scheduler.running:
                with lock:
                    if not scheduler.running:
                        scheduler.start()

    for job in all_jobs():
        scheduler.add_job(
            id=job.id,
            func=_run_in_app,
            args=(app, job.id),
            trigger="interval",
            minutes=interval_minutes(job, state.settings),
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )
