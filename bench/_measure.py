"""What ``bench/renewals.py`` measures besides time: statements, their cost, memory."""

from __future__ import annotations

import functools
import gc
import re
import resource
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa


@contextmanager
def counting(engine: sa.Engine) -> Iterator[Callable[[], int]]:
    """Statements the engine runs, from every thread (the listener is on the engine)."""
    count = 0

    def counter(*_args: object) -> None:
        nonlocal count
        count += 1

    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        yield lambda: count
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)


@contextmanager
def statement_log(engine: sa.Engine) -> Iterator[dict[str, list[float]]]:
    """Count and seconds of each statement, grouped by its text."""
    log: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def before(conn: Any, *_args: object) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, sql: str, *_args: object) -> None:
        entry = log[_shorten(sql)]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_started")

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield log
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)


@functools.cache
def _shorten(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql)
    sql = re.sub(r"\((?:\?|%\(\w+\)s)(?:, (?:\?|%\(\w+\)s))+\)", "(…)", sql)
    sql = re.sub(r"SELECT .+? FROM", "SELECT … FROM", sql, count=1)
    return sql[:110]


@contextmanager
def memory_peak(heap: bool) -> Iterator[Callable[[], tuple[float, float | None]]]:
    """The rise of peak RSS over RSS before (and the Python heap peak with tracemalloc)."""
    gc.collect()
    before, resettable = _status_kb("VmRSS"), _reset_peak_rss()
    start_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if heap:
        tracemalloc.start()
    figures: list[float | None] = [0.0, None]
    try:
        yield lambda: (figures[0] or 0.0, figures[1])
    finally:
        if heap:
            figures[1] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        if resettable and before is not None:
            figures[0] = ((_status_kb("VmHWM") or 0) - before) / 1024
        else:
            figures[0] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_max) / 1024


def _status_kb(field: str) -> int | None:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(x.split()[1]) for x in lines if x.startswith(field + ":")), None)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux ≥ 4.0: VmHWM := VmRSS
    except OSError:
        return False
    return True
