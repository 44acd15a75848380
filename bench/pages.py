"""Billing pages under load, beside a bare Flask page in the same run. By hand::

    .venv/bin/python bench/pages.py [--seconds 10] [--connections 1 50] [--workers 4]
        [--pages bare plans licenses ...]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Needs ApacheBench, ``ab`` (Debian's ``apache2-utils``: ``apt-get install apache2-utils``),
and a PostgreSQL server where ``--pg-url``'s user may create databases.

What it serves. A throwaway PostgreSQL database (billing and Sandbox Pay in it, dropped
afterwards) gets the example app's tables and demo people from its own ``prepare()`` (what
``flask --app example_app setup`` runs), with the example app's database URLs pointed at it.
Alice then buys Small monthly through the example app's pages (a Visa registered on Sandbox
Pay's form, the order's four steps, as ``tests/test_example_app.py`` does) and gets a $5.00
balance credit through ``append_entry``, so the licenses, license, history, balance and
payment-methods pages show something. gunicorn then serves ``bench/_pages_app.py`` with
``--workers`` sync workers: the example app (scheduler off), a bare Flask app mounted at
``/bare/`` in the same WSGI callable, and ``/bench/unchecked``, the feature page's template
behind ``@login_required`` only. The bench waits until every worker has loaded the app.

What it measures. Alice signs in with a real POST (the CSRF token from the sign-in form);
her session cookie goes to ``ab -C``. Every page must answer 200 with its expected text
before a run (not a redirect to sign-in: the bench fails loudly otherwise), and each run
must end with no failed request and no non-2xx answer. Each page gets a warm-up (the
workers' pools, templates and imports), then ``--seconds`` of ``ab -t`` at each of
``--connections``. ``ab`` prints whole milliseconds for its percentiles; the bench reads
them from its ``-e`` CSV instead (microseconds). ``ab`` speaks HTTP/1.0 without keep-alive,
as gunicorn's sync workers want anyway: every request pays for a new loopback connection.

The table: requests/s; mean, p50, p95 and p99 in ms as ``ab`` saw them (its connect to its
last byte: gunicorn, the app, PostgreSQL, loopback and ``ab`` itself on the same machine; the
mean at more than 1 connection is the mean of the completed requests, see ``_mean_ms``);
``server ms``, the mean of gunicorn's own request time (its access log's ``%(D)s``, each line
checked to be a 200); ``cpu ms``, the mean CPU time of the worker per request (a
``pre_request``/``post_request`` hook pair): on a loaded machine, waits for a CPU and for
PostgreSQL swell the server ms, much less the cpu ms; ``x bare``, at 1 connection the mean
over the bare page's mean, at more connections the bare page's requests/s over the page's
(how many times the bare page's cost); ``+ms``, at 1 connection, the page's server ms minus
the bare page's: what it costs beyond an empty Flask answer. A percentile too far out for the
number of requests shows as ``—``. The 1-min load average at each run's start, and all three
before and after the whole run: on a shared machine the figures are only as quiet as it.

Targets (issue #22 item 2), judged under the table on the server ms at 1 connection: each
billing page at most 3 ms, and a warm feature check within 0.1 ms (the feature page minus
the unchecked page, what the check costs; and minus the bare page, as the issue words it).
"Warm" is a worker that has served the page before: entitlements are computed once per
request (kept in ``flask.g`` for that request only), never across requests.

The default run (9 pages x 2 connection counts x 10 s) takes about 4 minutes. Not collected
by pytest. It imports the example app and ``tests/flows.py``, so it runs from a checkout.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.renewals import Case, _databases  # noqa: E402
from example_app import create_app, prepare  # noqa: E402
from example_app.models import User, db  # noqa: E402
from flask_subscriptions.models import PaymentMethod  # noqa: E402
from flask_subscriptions.services.balance import append_entry  # noqa: E402
from tests.flows import VISA, choose_card, place, register_card, start_order  # noqa: E402
from tests.servers import free_port, stop  # noqa: E402

#: name → (path, a text the page shows when it is the right page with alice's data).
#: ``{license}`` is alice's license, found on the License Management page.
PAGES = {
    "bare": ("/bare/", "bare"),
    "plans": ("/billing/plans", "Your plan"),
    "licenses": ("/billing/licenses", "Monthly"),
    "license": ("/billing/licenses/{license}", "Small (current plan)"),
    "history": ("/billing/history", "INV-000001"),
    "balance": ("/billing/balance", "Bench credit"),
    "payment-methods": ("/billing/payment-methods", "4242"),
    "feature": ("/features/reports", "Reports is included in your plan"),
    "unchecked": ("/bench/unchecked", "Reports is included in your plan"),
}
BILLING_PAGES = ("plans", "licenses", "license", "history", "balance", "payment-methods")
PERSON = "alice"
TARGET_MS = 3.0
TARGET_CHECK_MS = 0.1
#: Sent by the sign-in and by ``ab``: Flask-Login's session protection compares each
#: request's User-Agent with the sign-in's, and on a mismatch marks the session not fresh,
#: which re-signs and re-sends the session cookie on every request (``ab`` always sends the
#: cookie of the sign-in). A browser keeps its User-Agent, so the bench does too.
AGENT = "flask-subscriptions-bench"
ACCESS_LOG = "access.log"
SERVER_LOG = "gunicorn.log"
#: gunicorn's config file: readiness, and each request's CPU time in its worker (a sync
#: worker has one thread: the scheduler is off), which the machine's load barely changes.
HOOKS = """
import os
import time


def post_worker_init(worker):
    print(f"worker ready {worker.pid}", flush=True)


def pre_request(worker, req):
    worker.bench_cpu = time.process_time()


def post_request(worker, req, environ, resp):
    line = f"cpu {(time.process_time() - worker.bench_cpu) * 1e6:.0f}\\n"
    os.write(1, line.encode())  # one write: the workers share the log
"""


@dataclass(frozen=True)
class Row:
    page: str
    connections: int
    requests: int
    per_s: float
    mean_ms: float
    p50: float
    p95: float
    p99: float
    server_ms: float  # gunicorn's own request time (its access log's %(D)s), mean
    cpu_ms: float  # the worker's CPU time per request, mean
    load: float


# --- the data: the example app's own setup, and a purchase through its pages ----------------


def prepare_data(url: str, instance: str) -> None:
    """The example app's tables, demo people and catalog; Small bought by alice; a credit."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SANDBOX_PAY_DATABASE_URI": url,
            "SUBSCRIPTIONS_SCHEDULER_ENABLED": False,
        },
        instance_path=instance,
    )
    try:
        with app.app_context():
            prepare()
        _buy(app, PERSON, "small")
        with app.app_context():
            alice = db.session.scalars(select(User).filter_by(name=PERSON)).one()
            append_entry(alice.billing_id, "credit", 500, "USD", "Bench credit")
            db.session.commit()
    finally:
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
            app.extensions["sandbox_pay"].engine.dispose()


def _buy(app: Flask, name: str, plan: str) -> None:
    """Sign in, register a Visa on Sandbox Pay's form, buy ``plan`` monthly (the test flow)."""
    client = app.test_client()
    page = client.get("/sign-in").text
    response = client.post(
        "/sign-in", data={"csrf_token": _csrf_token(page), "user_id": _user_id(page, name)}
    )
    assert response.status_code == 302, response.text
    register_card(client, VISA)
    key = start_order(client, plan)
    with app.app_context():
        card_id = db.session.scalar(select(PaymentMethod.id).where(PaymentMethod.last4 == "4242"))
    assert card_id is not None and choose_card(client, key, card_id).status_code == 302
    placed = place(client, key)
    assert placed.status_code == 302, placed.text
    assert "Thank you for your order" in client.get(placed.headers["Location"]).text


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    if not match:
        raise SystemExit("no CSRF token on the sign-in page")
    return match[1]


def _user_id(html: str, name: str) -> str:
    match = re.search(rf'name="user_id" value="(\d+)">\s*<strong>{name}</strong>', html)
    if not match:
        raise SystemExit(f"no sign-in button for {name}")
    return match[1]


# --- the server -----------------------------------------------------------------------------


@contextmanager
def serving(env: dict[str, str], workers: int, tmp: Path) -> Iterator[int]:
    """gunicorn on a free port, once every worker has loaded the app; stopped after."""
    port = free_port()
    hooks, log = tmp / "gunicorn_hooks.py", tmp / SERVER_LOG
    hooks.write_text(HOOKS)
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers),
             "--worker-class", "sync", "--config", str(hooks), "--log-level", "warning",
             "--access-logfile", str(tmp / ACCESS_LOG), "--access-logformat", "%(s)s %(D)s",
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
             "bench._pages_app:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while log.read_text().count("worker ready") < workers:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start its workers:\n" + log.read_text())
            time.sleep(0.2)
        yield port
    finally:
        stop(server)
    for failure in ("Traceback", "Worker failed to boot", "ERROR"):
        if failure in log.read_text():
            raise SystemExit(f"gunicorn's log shows {failure}:\n" + log.read_text())


def _request(
    port: int, path: str, cookie: str = "", form: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"User-Agent": AGENT, **({"Cookie": cookie} if cookie else {})}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request("POST" if form is not None else "GET", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        conn.close()


def _session_cookie(headers: dict[str, str]) -> str:
    match = re.search(r"(session=[^;]+)", headers.get("Set-Cookie", ""))
    if not match:
        raise SystemExit(f"no session cookie in {headers}")
    return match[1]


def sign_in(port: int, name: str) -> str:
    """The sign-in form, then its POST with the CSRF token: the signed-in session cookie."""
    status, headers, page = _request(port, "/sign-in")
    if status != 200:
        raise SystemExit(f"/sign-in answered {status}")
    form = {"csrf_token": _csrf_token(page), "user_id": _user_id(page, name)}
    status, headers, body = _request(port, "/sign-in", _session_cookie(headers), form)
    if status != 302:
        raise SystemExit(f"signing in as {name} answered {status}, not a redirect:\n{body}")
    return _session_cookie(headers)


def resolve(port: int, cookie: str, names: list[str]) -> dict[str, str]:
    """Each page's path, having checked it answers 200 with its text to the signed-in person."""
    _, _, licenses = _request(port, "/billing/licenses", cookie)
    match = re.search(r'href="/billing/licenses/([^"/?]+)"', licenses)
    paths = {}
    for name in names:
        path, text = PAGES[name]
        if "{license}" in path:
            if not match:
                raise SystemExit("no license on the License Management page")
            path = path.format(license=match[1])
        status, headers, body = _request(port, path, cookie)
        if status != 200 or text not in body:
            where = headers.get("Location", "")
            raise SystemExit(f"{name} ({path}) answered {status} {where}, without {text!r}")
        if "Set-Cookie" in headers:  # ab would measure re-signing the session every time
            raise SystemExit(f"{name} ({path}) sets a cookie: {headers['Set-Cookie']}")
        paths[name] = path
    return paths


# --- the load ---------------------------------------------------------------------------------


def run_ab(
    ab: str, page: str, url: str, cookie: str, connections: int, seconds: float, tmp: Path
) -> Row:
    """``ab`` for ``seconds`` at ``connections``; its figures, percentiles from its CSV."""
    csv = tmp / "percentiles.csv"
    cap = max(50_000, int(seconds * 20_000))  # -t alone stops at 50,000 requests
    load = os.getloadavg()[0]
    logs = {name: (tmp / name).stat().st_size for name in (ACCESS_LOG, SERVER_LOG)}
    done = subprocess.run(
        [ab, "-q", "-l", "-t", str(seconds), "-n", str(cap), "-c", str(connections),
         "-C", cookie, "-H", f"User-Agent: {AGENT}", "-e", str(csv), url],
        capture_output=True, text=True,
    )  # fmt: skip
    out = done.stdout
    if done.returncode != 0:
        raise SystemExit(f"ab failed on {url}:\n{out}{done.stderr}")
    failed = _figure(out, r"Failed requests:\s+(\d+)")
    non_2xx = _figure(out, r"Non-2xx responses:\s+(\d+)", default=0)
    if failed or non_2xx:
        raise SystemExit(f"{url}: {failed:.0f} failed, {non_2xx:.0f} not 2xx:\n{out}")
    requests = int(_figure(out, r"Complete requests:\s+(\d+)"))
    if requests >= cap:
        print(f"warning: {url} reached ab's cap of {cap} requests before {seconds} s")
    rows = (line.split(",") for line in csv.read_text().splitlines()[1:])
    # ab reads percentile p at index int(0.5 + n * p / 100): past the end for small n.
    percent = {
        int(p): float(t) if int(0.5 + requests * int(p) / 100) < requests else float("nan")
        for p, t in rows
    }
    return Row(
        page=page,
        connections=connections,
        requests=requests,
        per_s=_figure(out, r"Requests per second:\s+([\d.]+)"),
        mean_ms=_mean_ms(out, connections),
        p50=percent[50],
        p95=percent[95],
        p99=percent[99],
        **_server_figures(tmp, logs, requests),
        load=load,
    )


def _server_figures(tmp: Path, offsets: dict[str, int], requests: int) -> dict[str, float]:
    """gunicorn's mean request time and mean CPU time per request, from the lines its logs
    gained since ``offsets``; every request logged must be a 200."""
    time.sleep(0.2)  # the last answers' lines
    new = {}
    for name, offset in offsets.items():
        with (tmp / name).open("rb") as log:
            log.seek(offset)
            new[name] = [line.split() for line in log.read().decode().splitlines()]
    access = new[ACCESS_LOG]
    cpu = [int(words[1]) for words in new[SERVER_LOG] if words[:1] == ["cpu"]]
    if len(access) < requests or any(status != "200" for status, _ in access):
        raise SystemExit(f"{len(access)} requests logged for {requests}, not all 200: {access[:5]}")
    return {
        "server_ms": sum(int(micros) for _, micros in access) / len(access) / 1000,
        "cpu_ms": sum(cpu) / len(cpu) / 1000,
    }


def _mean_ms(out: str, connections: int) -> float:
    """At 1 connection ab's "Time per request" (to the microsecond). At more, the mean of its
    "Connection Times" row (whole ms, of the completed requests): "Time per request" is then
    connections x time / completed, which counts the requests still open at ``-t``'s end."""
    if connections == 1:
        return _figure(out, r"Time per request:\s+([\d.]+) \[ms\] \(mean\)")
    return _figure(out, r"Total:\s+\d+\s+(\d+)")


def _figure(text: str, pattern: str, default: float | None = None) -> float:
    match = re.search(pattern, text)
    if match:
        return float(match[1])
    if default is None:
        raise SystemExit(f"no {pattern!r} in ab's output:\n{text}")
    return default


def warm(ab: str, url: str, cookie: str, workers: int) -> None:
    """Enough requests, from enough connections, that every worker has served the page."""
    subprocess.run(
        [ab, "-q", "-l", "-n", str(50 * workers), "-c", str(2 * workers), "-C", cookie,
         "-H", f"User-Agent: {AGENT}", url],
        capture_output=True, check=True,
    )  # fmt: skip


# --- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ab = shutil.which("ab")
    if ab is None:
        raise SystemExit("bench/pages.py needs ApacheBench: apt-get install apache2-utils")
    names = ["bare", *(n for n in args.pages if n != "bare")]  # the reference comes first
    before = os.getloadavg()
    rows: list[Row] = []
    case = Case("postgres", 0, 0, 1, 0, args.pg_url)
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp, _databases(case) as urls:
        url, instance = urls[0], str(Path(tmp) / "instance")
        _say(f"preparing the example app's data on {url.rsplit('/', 1)[-1]}")
        prepare_data(url, instance)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url,
            "SANDBOX_PAY_DATABASE_URL": url,
            "BENCH_INSTANCE": instance,
            "SECRET_KEY": secrets.token_hex(16),
        }
        with serving(env, args.workers, Path(tmp)) as port:
            cookie = sign_in(port, PERSON)
            paths = resolve(port, cookie, names)
            for name in names:
                page_url = f"http://127.0.0.1:{port}{paths[name]}"
                warm(ab, page_url, cookie, args.workers)
                for connections in args.connections:
                    rows.append(
                        run_ab(ab, name, page_url, cookie, connections, args.seconds, Path(tmp))
                    )
                    _say(_line(rows[-1], rows))
            resolve(port, cookie, names)  # still signed in, still the same pages
    after = os.getloadavg()
    print()
    print(f"machine: {os.cpu_count()} CPUs; load average (1, 5, 15 min) before {_load(before)},")
    print(f"after {_load(after)}; gunicorn {args.workers} sync workers, {args.seconds:g} s a run")
    print("\n" + _table(rows) + "\n\n" + "\n".join(_verdicts(rows)), flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add = parser.add_argument
    add("--seconds", type=float, default=10.0, help="each page's time at each connection count")
    add("--connections", type=int, nargs="+", default=[1, 50])
    add("--workers", type=int, default=4, help="gunicorn sync workers")
    add("--pages", nargs="+", choices=list(PAGES), default=list(PAGES))
    add("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    return parser


HEADER = ("page", "conns", "requests", "req/s", "mean ms", "p50", "p95", "p99", "server ms",
          "cpu ms", "x bare", "+ms", "load")  # fmt: skip


def _cells(r: Row, rows: list[Row]) -> tuple[str, ...]:
    bare = _bare(r, rows)
    ratio = plus = "—"
    if bare is not None and r.page != "bare":
        if r.connections == 1:
            ratio = f"{r.mean_ms / bare.mean_ms:.2f}"
            plus = f"{r.server_ms - bare.server_ms:+.2f}"
        else:
            ratio = f"{bare.per_s / r.per_s:.2f}"
    return (
        r.page, str(r.connections), f"{r.requests:,}", f"{r.per_s:,.0f}", f"{r.mean_ms:.2f}",
        f"{r.p50:.2f}", _ms(r.p95), _ms(r.p99), f"{r.server_ms:.2f}",
        f"{r.cpu_ms:.2f}", ratio, plus,
        f"{r.load:.2f}",
    )  # fmt: skip


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _bare(r: Row, rows: list[Row]) -> Row | None:
    return next((b for b in rows if b.page == "bare" and b.connections == r.connections), None)


def _line(r: Row, rows: list[Row]) -> str:
    return " ".join(f"{h}={c}" for h, c in zip(HEADER, _cells(r, rows), strict=True))


def _table(rows: list[Row]) -> str:
    lines = [HEADER, *(_cells(r, rows) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _verdicts(rows: list[Row]) -> list[str]:
    """The targets, judged on gunicorn's own request time at 1 connection."""
    one = {r.page: r for r in rows if r.connections == 1}
    lines = [
        _verdict(f"{name}: {one[name].server_ms:.2f} ms (cpu {one[name].cpu_ms:.2f} ms; "
                 f"{one[name].mean_ms:.2f} ms seen by ab)", one[name].server_ms, TARGET_MS)
        for name in BILLING_PAGES
        if name in one
    ]  # fmt: skip
    for ref in ("unchecked", "bare"):
        if "feature" in one and ref in one:
            extra = one["feature"].server_ms - one[ref].server_ms
            cpu = one["feature"].cpu_ms - one[ref].cpu_ms
            label = f"feature page minus the {ref} page: {extra:+.3f} ms (cpu {cpu:+.3f} ms)"
            lines.append(_verdict(label, extra, TARGET_CHECK_MS))
    return ["server time at 1 connection:", *lines]


def _verdict(label: str, value: float, target: float) -> str:
    return f"  {label}: {'met' if value <= target else 'NOT met'} (target ≤ {target:g} ms)"


def _load(figures: tuple[float, float, float]) -> str:
    return ", ".join(f"{f:.2f}" for f in figures)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
