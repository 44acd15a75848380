"""Instructions per renewal on SQLite, counted by callgrind: the same figure whatever else the
machine is doing. By hand::

    .venv/bin/python bench/instructions.py [--n 1000] [--floor] [--tree PATH ...]

Needs valgrind (Debian's ``valgrind``: ``apt-get install valgrind``).

Why. On 2 shared cores the wall time of ``bench/renewals.py`` moves by ±15% from one run to
the next (other processes, the disk), so a change that saves 3% cannot be seen in it. The
number of machine instructions a run executes barely moves (±0.5% from one run to the
next, with ``PYTHONHASHSEED=0``): it is the figure to compare two versions of the code by.
It is not the wall time: SQLite's reads and writes of pages cost more time per
instruction than the interpreter's own work, so the floor's instruction ratio differs from
its time ratio (2.8 against 2.0 at 1,000 renewals), and only ``bench/renewals.py`` says what
the targets are measured in.

What it does. ``bench/renewals.py``'s ``build`` makes N due subscriptions (Sandbox Pay's
storage in a second file) once, in a temporary folder. Then, for each ``--tree`` (a
checkout of this repository: the current one by default, say another worktree at an older
commit to compare), a copy of those files is renewed with ``renew_due`` (instant Sandbox
Pay, 100 charges in flight, as the bench's instant case) in a process run under
``valgrind --tool=callgrind --instr-atstart=no``, whose counting is switched on just before
``renew_due`` and off after it (``callgrind_control -i on|off``): imports, the app's start
and the database's opening are not counted. ``--floor`` counts the floor too, written after
the renewal as ``bench/renewals.py`` writes it. Each run takes about 80 s at N = 1,000.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000, help="due subscriptions")
    parser.add_argument("--floor", action="store_true", help="count the floor's too")
    parser.add_argument(
        "--tree", type=Path, nargs="+", default=[ROOT], help="checkouts to count, in turn"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        built = Path(tmp) / "built"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child-build", str(args.n), str(built)], check=True
        )
        print(f"{args.n} due subscriptions built in {time.perf_counter() - started:.1f} s")
        for tree in args.tree:
            what = ["renewal", "floor"] if args.floor else ["renewal"]
            counts = {part: _count(tree.resolve(), built, part, Path(tmp)) for part in what}
            line = f"{tree}: renewal {counts['renewal'] / args.n / 1e6:.3f} M instructions each"
            if args.floor:
                ratio = counts["renewal"] / counts["floor"]
                line += f", floor {counts['floor'] / args.n / 1e6:.3f} M, ratio {ratio:.2f}"
            print(line, flush=True)
    return 0


def _count(tree: Path, built: Path, part: str, tmp: Path) -> int:
    """The instructions of ``part`` in a run of ``tree`` on a copy of the built files."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    for name in os.listdir(built):
        shutil.copy(built / name, work / name)
    out = work / "callgrind.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child-run",
            str(tree),
            str(work),
            part,
        ],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = TOTALS.search(out.read_text())
    assert found, f"no totals in {out}"
    return int(found.group(1))


def _child_build(n: int, folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.renewals import Case, build

    folder.mkdir(parents=True)
    urls = (f"sqlite:///{folder}/billing.sqlite", f"sqlite:///{folder}/sandbox-pay.sqlite")
    build(Case("sqlite", n, 0, 100, 500, ""), *urls)


def _child_run(tree: Path, folder: Path, part: str) -> None:
    """Under callgrind: renew (and write the floor), counting only ``part``."""
    sys.path.insert(0, str(tree))  # that checkout's code, ``tests`` and ``bench``
    from bench.renewals import DUE_DAY, _host, floor
    from flask_subscriptions.services.renewals import renew_due
    from tests.hosts import db

    def counting(on: bool) -> None:
        switch = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
        subprocess.run(switch, check=True, capture_output=True)

    billing, sandbox = (
        f"sqlite:///{folder}/billing.sqlite",
        f"sqlite:///{folder}/sandbox-pay.sqlite",
    )
    with _host(billing, sandbox) as host:
        host.clock.set(DUE_DAY)
        host.gateway.takes_batches = True  # the bench's instant case: a batch in one call
        db.session.commit()
        counting(part == "renewal")
        report = renew_due(concurrency=100)
        counting(part == "floor")
        if part == "floor":
            floor(balance=True)
        counting(False)
    assert report.failed == report.pending == 0, str(report)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child-build"]:
        _child_build(int(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["--child-run"]:
        _child_run(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
