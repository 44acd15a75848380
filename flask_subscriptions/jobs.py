"""Background jobs (R-REN-4): on flask-apscheduler inside the host app by default, and the
same functions behind ``flask subscriptions run-jobs`` for cron or any external worker.

Exactly-once lives in the database (claims, unique keys), never in the scheduler, so every
worker process may run every job: at worst they find nothing left to do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask_apscheduler import APScheduler

from .notifications import deliver_due
from .services.dunning import run_dunning
from .services.reconciliation import reconcile_unknown_payments
from .services.renewals import renew_due

if TYPE_CHECKING:
    from .config import Settings
    from .state import State


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
    return {job.id: job.run() for job in all_jobs()}


def _run_in_app(app: Flask, job_id: str) -> None:
    job = next(j for j in all_jobs() if j.id == job_id)
    with app.app_context():
        job.run()


def register_jobs(app: Flask, state: State) -> None:
    """Put every job on the app's flask-apscheduler, with stable ids.

    Without a scheduler from the host we create one and start it with the first request, so
    CLI commands (which also load the app) never start background threads.
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
