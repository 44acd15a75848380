"""`make test`: lint, types, then the whole suite on SQLite and on PostgreSQL.

With CI=true nothing may skip: PostgreSQL must be reachable (a fresh database is created on
127.0.0.1:5432 as user postgres and dropped afterwards), and so must the browser and SMTP
parts the tests start themselves. Each part prints how long it took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

CI = os.environ.get("CI") == "true"
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = os.path.dirname(sys.executable)
timings: list[tuple[str, float, int]] = []


#: A part that runs longer is stopped (with everything it started) and fails, so a hang
#: shows up as a failed part with its name instead of CI's overall timeout.
PART_LIMIT_S = 25 * 60


def run(name: str, args: list[str], env: dict[str, str] | None = None) -> int:
    print(f"\n=== {name} ===", flush=True)
    started = time.monotonic()
    part = subprocess.Popen(args, env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        code = part.wait(timeout=PART_LIMIT_S)
    except subprocess.TimeoutExpired:
        print(f"\n{name} ran past {PART_LIMIT_S // 60} minutes: stopped", flush=True)
        os.killpg(part.pid, signal.SIGKILL)
        code = part.wait()
    except KeyboardInterrupt:  # its own session does not get the terminal's Ctrl-C
        os.killpg(part.pid, signal.SIGTERM)
        part.wait()
        raise
    timings.append((name, time.monotonic() - started, code))
    return code


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:
        if CI:
            print(f"PostgreSQL is required in CI and is not reachable: {exc}", file=sys.stderr)
            raise SystemExit(1) from exc
        print(f"PostgreSQL not reachable ({exc}); running on SQLite only.")
        yield None
        return
    name = f"subs_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    # A test database need not wait for the disk at each commit; a crashed process still
    # loses nothing it committed (only an OS crash could).
    admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> int:
    codes = [
        run("ruff", [f"{BIN}/ruff", "check", "."]),
        run("ruff format", [f"{BIN}/ruff", "format", "--check", "."]),
        run("mypy", [f"{BIN}/mypy"]),
        run(
            "pytest on SQLite",
            [sys.executable, "-m", "pytest", *sys.argv[1:]],
            {"TEST_DATABASE_URL": ""},
        ),
    ]
    with postgres_database() as url:
        if url:
            # The browser tests drive the example app, which keeps its own SQLite file: they
            # ran in the first pass and are not repeated here.
            args = ["-m", "not browser", *sys.argv[1:]]
            codes.append(
                run(
                    "pytest on PostgreSQL",
                    [sys.executable, "-m", "pytest", *args],
                    {"TEST_DATABASE_URL": url},
                )
            )
    print("\n=== timings ===")
    for name, seconds, code in timings:
        print(f"{name:<24} {seconds:7.1f} s  {'ok' if code == 0 else f'FAILED ({code})'}")
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
