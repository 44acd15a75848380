"""The process host (``tests/process_host.py``) with its Celery app, for real workers:
``celery -A tests.celery_host worker`` and ``beat``, and ``flask --app tests.celery_host``.

Besides the process host's variables: ``TEST_BROKER_URL`` (Redis or RabbitMQ),
``TEST_CELERY_QUEUE`` (a queue of this test's own: the broker may be shared) and
``TEST_BEAT_SECONDS`` (beat dispatches every job that often, instead of every few minutes).
"""

from __future__ import annotations

import os

from flask_subscriptions.celery import celery_init_app
from flask_subscriptions.fanout import DISPATCHERS, beat_schedule

from .process_host import create_app

flask_app = create_app()  # not `app`: `celery -A` would take the Flask app for its own
celery = celery_init_app(
    flask_app,
    {
        "broker_url": os.environ["TEST_BROKER_URL"],
        "task_default_queue": os.environ["TEST_CELERY_QUEUE"],
        "worker_hijack_root_logger": False,
        # A dead worker's messages come back after the visibility timeout (three leases):
        # look for them every second, not every 100 s.
        "broker_transport_options": {"unacked_restore_interval": 1, "unacked_restore_throttle": 1},
    },
)
if os.environ.get("TEST_BEAT_SECONDS"):
    seconds = float(os.environ["TEST_BEAT_SECONDS"])
    celery.conf.beat_schedule = beat_schedule(flask_app, every=dict.fromkeys(DISPATCHERS, seconds))
