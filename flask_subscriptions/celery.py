"""The jobs on Celery workers (R-OPS-4): ``pip install 'flask-subscriptions[celery]'``.

Only a host that installed the extra imports this module. It follows Flask's "Background
Tasks with Celery" pattern: :func:`celery_init_app` makes a Celery app whose tasks run in
the Flask app's context; a host that has its own Celery app calls :func:`init_celery`
instead. Either registers the tasks of :mod:`flask_subscriptions.fanout` on it: a
dispatcher per job (what beat sends every few minutes, what ``--on-workers`` runs) that
enqueues one task per batch, and the batch tasks, each claiming its batch in the database.

Every task is ``acks_late`` with ``reject_on_worker_lost``: a message is acknowledged once
its task has finished, so a worker that dies gives it back to the broker. That only adds
speed to what the database already guarantees: a redelivered task finds its batch taken
(or its lease run out, and then renews what is still due), and a charge it may repeat is
sent with the key of its durable payment row, which the gateway answers once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError

from .fanout import (
    DELIVER_MAIL_BATCH,
    DISPATCHERS,
    DUNNING_BATCH,
    RECONCILE_BATCH,
    RENEW_BATCH,
    RENEW_SWEEP,
    GatewayNotAnswering,
    beat_schedule,
    deliver_one_batch,
    dun_these,
    reconcile_these,
    renew_one_batch,
    sweep_renewals,
)
from .gateways.base import GatewayTimeout, GatewayUnavailable
from .state import get_state

__all__ = ["RECOMMENDED_CONFIG", "CeleryQueue", "beat_schedule", "celery_init_app", "init_celery"]

#: Worth trying again later: the database connection was lost (a failover, a restart), or
#: the gateway could not be reached. Anything else is a bug, and retrying it would not help.
TRANSIENT: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    GatewayUnavailable,
    GatewayTimeout,
    GatewayNotAnswering,
)

#: Every task's options: acknowledged after it ran, given back when its worker dies, and
#: retried with exponential backoff (1 s, 2 s, 4 s … at most 5 minutes, jittered) for a
#: transient failure.
TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}

#: Settings for the host's Celery app that the tasks assume: a worker reserves one message
#: per process (a long batch never sits behind another on a busy process while an idle one
#: waits), and UTC timestamps.
RECOMMENDED_CONFIG: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "enable_utc": True,
}


class CeleryQueue:
    """The :class:`~flask_subscriptions.fanout.TaskQueue` of a Celery app: sends by name,
    so the sender (a CLI, a web process) needs no task objects, only the broker."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def send(self, task: str, args: Sequence[Any] = (), countdown: float | None = None) -> None:
        self.celery.send_task(task, args=list(args), countdown=countdown)


def celery_init_app(app: Flask, config: Mapping[str, Any] | None = None) -> Celery:
    """A Celery app for ``app``, as Flask's documentation makes one, with our tasks on it
    and our beat schedule in it.

    Its settings are :data:`RECOMMENDED_CONFIG`, then ``app.config["CELERY"]`` (a mapping,
    Flask's convention), then ``config``; the broker defaults to ``CELERY_BROKER_URL`` from
    the app's config or the environment (``redis://…`` or ``amqp://…``).
    """

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    broker = app.config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL")
    settings = {
        **RECOMMENDED_CONFIG,
        **({"broker_url": broker} if broker else {}),
        **dict(app.config.get("CELERY") or {}),
        **dict(config or {}),
    }
    settings["broker_transport_options"] = {
        **transport_options(app),
        **dict(settings.get("broker_transport_options") or {}),
    }
    celery.config_from_object(settings)
    celery.set_default()
    app.extensions["celery"] = celery
    init_celery(celery, app)
    celery.conf.beat_schedule = {**(celery.conf.beat_schedule or {}), **beat_schedule(app)}
    return celery


def transport_options(app: Flask) -> dict[str, Any]:
    """Redis keeps a message a dead worker had taken for ``visibility_timeout`` before it
    gives it to another (RabbitMQ gives it back when the connection drops). One hour by
    default; three claim leases here: longer than a batch may take, and than the countdown
    of a run's sweep (a lease), so neither is delivered twice while its worker lives."""
    return {"visibility_timeout": 3 * get_state(app).settings.claim_lease_seconds}


def init_celery(celery: Celery, app: Flask) -> CeleryQueue:
    """Register the billing tasks on the host's Celery app, each run in ``app``'s context,
    and make it the queue ``--on-workers`` sends to. Merge :func:`beat_schedule` into the
    app's own ``beat_schedule`` to have beat dispatch the jobs."""
    queue = CeleryQueue(celery)
    get_state(app).task_queue = queue
    register = _registrar(celery, app)
    for name, dispatch in DISPATCHERS.items():
        register(name, _dispatcher(queue, dispatch))
    register(RENEW_BATCH, lambda task: renew_one_batch(queue, task.request.hostname or "worker"))
    register(RENEW_SWEEP, lambda _task, rounds: sweep_renewals(queue, rounds))
    register(DUNNING_BATCH, lambda _task, ids: dun_these(ids))
    register(RECONCILE_BATCH, lambda _task, ids: reconcile_these(ids))
    register(DELIVER_MAIL_BATCH, lambda _task: deliver_one_batch())
    worker_process_init.connect(_fresh_connections(app), weak=False)
    return queue


def _registrar(celery: Celery, app: Flask) -> Callable[[str, Callable[..., str]], None]:
    def register(name: str, work: Callable[..., str]) -> None:
        def run(self: Task, *args: Any) -> str:
            with app.app_context():  # a no-op under FlaskTask; the context a host's Task lacks
                return work(self, *args)

        celery.task(name=name, bind=True, **TASK_OPTIONS)(run)

    return register


def _dispatcher(
    queue: CeleryQueue, dispatch: Callable[[CeleryQueue], object]
) -> Callable[..., str]:
    return lambda _task: str(dispatch(queue))


def _fresh_connections(app: Flask) -> Callable[..., None]:
    """A prefork child must not share the parent's database connections (two processes on
    one socket corrupt both): it drops the pool it inherited, without closing the parent's."""

    def dispose(**_: Any) -> None:
        with app.app_context():
            for engine in get_state(app).db.engines.values():
                engine.dispose(close=False)

    return dispose
