"""What gunicorn serves for ``bench/pages.py``: the example app, with two reference pages.

- ``/bare``: a bare Flask app of its own (one route, no session, no database, no template),
  mounted beside the example app in the same WSGI callable, so it runs in the same gunicorn
  workers with the same settings: the floor every other page is compared with.
- ``/bench/unchecked``: the example app's feature page without ``@requires_feature``
  (signed-in person loaded, same template), so the feature page minus this one is what the
  check itself costs.

The example app reads its databases from ``DATABASE_URL`` and ``SANDBOX_PAY_DATABASE_URL``;
the bench sets them, and ``BENCH_INSTANCE`` (a temporary folder: the test clock's file lives
in the instance folder, not the checkout's). The scheduler is off: a job run during a
measurement would be noise, and the pages do not need it.
"""

from __future__ import annotations

import os

from flask import Flask, render_template
from flask_login import login_required
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from example_app import create_app as create_example_app


def create_app() -> Flask:
    app = create_example_app(
        {"SUBSCRIPTIONS_SCHEDULER_ENABLED": False}, instance_path=os.environ["BENCH_INSTANCE"]
    )

    @login_required
    def unchecked() -> str:
        return render_template("example/feature.html", title="Reports")

    app.add_url_rule("/bench/unchecked", "bench_unchecked", unchecked)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/bare": _bare_app()})  # type: ignore[method-assign]
    return app


def _bare_app() -> Flask:
    bare = Flask("bare")

    @bare.get("/")
    def page() -> str:
        return "bare"

    return bare
