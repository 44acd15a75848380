"""The README's host test runs with our pytest plugin, as a host's suite would: the README's
``yourapp.py``, ``catalog.toml`` and ``test_billing.py`` in a folder of their own, run by a
pytest that loads ``flask_subscriptions.testing`` through its ``pytest11`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_readme_install import readme_block


def test_the_readme_host_test_passes_with_the_plugin(tmp_path: Path) -> None:
    for name in ("yourapp.py", "catalog.toml", "test_billing.py"):
        (tmp_path / name).write_text(readme_block(name))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_billing.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
