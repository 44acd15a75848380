"""Feature-check benchmark (R-USE-3): what ``@requires_feature`` adds to a request. Run by hand::

    .venv/bin/python bench/feature_check.py [--db sqlite|postgres|both] [--requests 2000]

In the tests' host app (Flask-Login, the user as payer), a signed-in account with Small and
the Operation add-on asks the Flask test client for the same trivial view, with and without
``@requires_feature("operation")`` (both behind ``@login_required``, so both load the
signed-in user as a host's protected page does), and per request prints the median time over
``--requests`` requests (in rounds, alternating the views) and the SQL statements of the
request (the host's own user lookup included, and on SQLite its BEGIN):

- ``plain``: the view without the check;
- ``warm``: with the check, its answer kept by this process (within the TTL);
- ``stale``: with the check and a TTL of 0: every request reads the versions (one statement);
- ``cold``: with the check, the cache dropped before each request (one statement).

The overhead is each line's time minus ``plain``; on a shared machine a request's time
drifts by more than a warm check costs, so the last line also times the warm lookup alone
(``EntitlementCache.entitlements`` in a request context, 100,000 times). Not collected by
pytest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._measure import counting  # noqa: E402
from bench.renewals import Case, _databases, _default_pg_url, _host  # noqa: E402

MODES = ("plain", "warm", "stale", "cold")


def run(backend: str, requests: int, pg_url: str) -> dict[str, tuple[float, float]]:
    from flask_login import login_required

    from flask_subscriptions import get_state, requires_feature
    from flask_subscriptions.core.catalog import load_catalog_file
    from flask_subscriptions.gateways.sandbox.storage import metadata as sandbox_metadata
    from flask_subscriptions.models import metadata as billing_metadata
    from flask_subscriptions.services.catalog import load_catalog
    from tests.factories import new_user, subscribe
    from tests.hosts import db

    case = Case(backend, 1, 0, 1, 0, pg_url)
    with _databases(case) as (url, sandbox_url), _host(url, sandbox_url) as host:
        app = host.app

        @app.get("/plain")
        @login_required
        def plain() -> str:
            return "ok"

        @app.get("/gated")
        @login_required
        @requires_feature("operation")
        def gated() -> str:
            return "ok"

        db.metadata.create_all(db.engine)
        billing_metadata.create_all(db.engine)
        sandbox_metadata.create_all(host.gateway.engine())
        load_catalog(load_catalog_file(ROOT / "example_app" / "catalog.toml"))
        user = new_user("bench")
        subscribe(user, "small", addons=("operation",))
        db.session.commit()
        cache = get_state(app).entitlement_cache
        assert cache is not None
        client = app.test_client()
        assert client.post(f"/test-login/{user.id}").status_code == 200

        def one(mode: str) -> tuple[float, int]:
            path = "/plain" if mode == "plain" else "/gated"
            cache.ttl = 0 if mode == "stale" else 3600
            if mode == "cold":
                cache.forget([None, user.billing_id])
            with counting(db.engine) as statements:
                started = time.perf_counter()
                page = client.get(path)
                took = time.perf_counter() - started
            assert page.status_code == 200, page.text
            return took, statements()

        for mode in MODES:  # warm up the interpreter, the pool and the cache
            for _ in range(50):
                one(mode)
        times: dict[str, list[float]] = {m: [] for m in MODES}
        counts: dict[str, list[int]] = {m: [] for m in MODES}
        for _ in range(requests // 10):
            for mode in MODES:
                for _ in range(10):
                    took, count = one(mode)
                    times[mode].append(took)
                    counts[mode].append(count)
        cache.ttl = 3600
        with app.test_request_context():
            cache.entitlements(user.billing_id)
            started = time.perf_counter()
            for _ in range(100_000):
                cache.entitlements(user.billing_id)
            lookup = (time.perf_counter() - started) / 100_000 * 1000
    figures = {m: (statistics.median(times[m]) * 1000, statistics.mean(counts[m])) for m in MODES}
    figures["lookup"] = (lookup, 0.0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=2000, help="per mode")
    parser.add_argument("--pg-url", default=_default_pg_url())
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"{'database':<11} {'mode':<6} {'ms/request':>10} {'overhead ms':>11} {'statements':>10}")
    for backend in backends:
        figures = run(backend, args.requests, args.pg_url)
        base = figures["plain"][0]
        for mode, (ms, statements) in figures.items():
            extra: Any = "" if mode == "plain" else f"{ms - base:+.3f}"
            if mode == "lookup":
                extra = f"{ms:+.4f}"
            print(f"{backend:<11} {mode:<6} {ms:>10.3f} {extra:>11} {statements:>10.1f}")


if __name__ == "__main__":
    main()
