"""The billing core stays pure: stdlib and Babel only, no clock, no floats (STYLE, R-MON-1).

Money is decided in ``flask_subscriptions.core`` and nowhere else, so it must be provable
without an app, a database or a clock. These tests read every module of the package, the
ones written later included.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "flask_subscriptions" / "core"
MODULES = sorted(path for path in CORE.glob("*.py"))
ALLOWED = set(sys.stdlib_module_names) | {"babel"}
FORBIDDEN = ("flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug", "jinja2", "wtforms")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_roots(tree: ast.Module) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_has_the_expected_modules() -> None:
    """The scan below really looks at the core (an empty glob would prove nothing)."""
    names = {path.stem for path in MODULES}
    assert {"__init__", "money", "terms", "proration", "quotes"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_core_imports_only_stdlib_and_babel(path: Path) -> None:
    """STYLE "a pure core": a core module imports the stdlib, Babel and its siblings only."""
    assert _imported_roots(_tree(path)) <= ALLOWED


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_core_has_no_float_literal_or_call_R_MON_1(path: Path) -> None:
    """R-MON-1: no floats on a money path: no float literal and no float() in the core."""
    for node in ast.walk(_tree(path)):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), (
            f"{path.name}:{node.lineno} has a float literal"
        )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "float", f"{path.name}:{node.lineno} calls float()"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_core_never_reads_the_clock_R_TIME_1(path: Path) -> None:
    """R-TIME-1: "now" comes from one injectable clock, so the core never asks for it."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            called = node.func.attr
            assert called not in {"now", "today", "utcnow", "time"}, (
                f"{path.name}:{node.lineno} calls .{called}()"
            )


# The package's own __init__ imports Flask (it holds the extension), so the subprocess
# stands in an empty package object for it and imports the core module by itself.
_PROBE = """
import importlib, sys, types
package = types.ModuleType("flask_subscriptions")
package.__path__ = [{package!r}]
sys.modules["flask_subscriptions"] = package
importlib.import_module({module!r})
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})))
"""


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_importing_a_core_module_loads_no_web_or_database_code(path: Path) -> None:
    """STYLE "a pure core": importing a core module alone loads no Flask or SQLAlchemy."""
    module = "flask_subscriptions.core"
    if path.stem != "__init__":
        module += "." + path.stem
    code = _PROBE.format(package=str(CORE.parent), module=module, forbidden=set(FORBIDDEN))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
