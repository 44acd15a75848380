"""Four gunicorn workers cold-start on an empty, migrated PostgreSQL database (R-OPS-3).

Tables used to be created when the app started: four workers doing it at once failed two
starts in three (``UniqueViolation pg_type_typname_nsp_index``). Now `db upgrade` makes
them before the server starts, and a worker only binds its engines. Five starts in a row,
each on a new database just migrated, each worker booting once and the billing page
answering 200.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from flask_subscriptions.gateways.sandbox.migrations import SANDBOX
from flask_subscriptions.migrations import upgrade

from .servers import free_port, stop
from .test_migrations import new_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]
ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
STARTS = 5


def _migrate(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        upgrade(engine)
        upgrade(engine, SANDBOX)  # the process host's Sandbox Pay shares the database
    finally:
        engine.dispose()


def _get(port: int, path: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Host": "host.test"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(answer.status)


#: gunicorn's config file. The master imports the host's module (not ``--preload``: each
#: worker still calls ``create_app()`` itself, all four at once, as in production), so a
#: start costs one import of the package instead of four on a busy machine.
HOOKS = """
import os

import tests.process_host


def post_worker_init(worker):
    os.write(1, f"worker ready {worker.pid}\\n".encode())  # one write: a whole line
"""


def _serve_once(url: str, hooks: Path) -> str:
    """Start gunicorn, wait until every worker has loaded the app, get the billing page,
    stop it; its log."""
    port = free_port()
    env = {
        **os.environ,
        "TEST_DATABASE_URL": url,
        "TEST_SANDBOX_URL": url,
        "TEST_NOW": "2026-03-17T12:00:00",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--config", str(hooks),
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
         "tests.process_host:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # Read on a thread: a server that prints nothing more must fail the test at the
    # deadline, not block it on readline for ever.
    output: queue.Queue[str] = queue.Queue()
    assert server.stdout is not None
    reader = threading.Thread(target=_forward, args=(server.stdout, output), daemon=True)
    reader.start()
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        # Counted in the whole output, not per line: four processes share one pipe, and two
        # workers' lines can arrive as one ("worker ready 1worker ready 2\n"). Counting lines
        # then waited for a fourth forever; that was the hang that cost a CI run its 90 minutes.
        while "".join(lines).count("worker ready") < WORKERS:
            try:
                line = output.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail("the workers did not all start within 60 s:\n" + "".join(lines))
            assert line, "gunicorn stopped:\n" + "".join(lines)
            lines.append(line)
        assert _get(port, "/billing/plans") == 200
    finally:
        stop(server)
        reader.join(timeout=10)
    while not output.empty():
        lines.append(output.get())
    return "".join(lines)


def _forward(stream: IO[str], output: queue.Queue[str]) -> None:
    """Every line of ``stream``, then an empty string at its end."""
    with stream:
        for line in stream:
            output.put(line)
    output.put("")


def test_four_workers_cold_start_five_times_in_a_row(database_url: str, tmp_path: Path) -> None:
    hooks = tmp_path / "gunicorn_hooks.py"
    hooks.write_text(HOOKS)
    for start in range(STARTS):
        url, drop = new_database(database_url)
        try:
            _migrate(url)
            log = _serve_once(url, hooks)
        finally:
            drop()
        booted = re.findall(r"Booting worker with pid", log)
        assert len(booted) == WORKERS, f"start {start + 1}:\n{log}"  # none booted twice
        for failure in ("Traceback", "Worker failed to boot", "UniqueViolation", "ERROR"):
            assert failure not in log, f"start {start + 1}:\n{log}"
