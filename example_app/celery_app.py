"""The example app on Celery workers (R-OPS-4): ``celery -A example_app.celery_app worker``
and ``celery -A example_app.celery_app beat``, the broker from ``CELERY_BROKER_URL``
(``redis://127.0.0.1:6379/0`` or ``amqp://guest:guest@127.0.0.1:5672//``).

``flask --app example_app.celery_app subscriptions renew --on-workers`` hands a renewal run
to the workers. This module imports Celery: only hosts that installed the ``celery`` extra
load it, and the web app (``flask --app example_app``) keeps its in-app scheduler.
"""

from __future__ import annotations

import os

from flask_subscriptions.celery import celery_init_app

from . import create_app

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

#: Not named ``app``: ``celery -A`` would take a Flask app by that name for its own.
flask_app = create_app({"SUBSCRIPTIONS_SCHEDULER_ENABLED": False})
celery = celery_init_app(flask_app)
