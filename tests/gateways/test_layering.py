"""Gateways are plugs that point inward (STYLE): they import no services, models or pages.

A third party writes a gateway with the protocol (``gateways/base.py``) and the neutral
events (``gateways/events.py``) alone, so ours must prove it can be done: every module
under ``gateways/`` is read, the ones written later included, and every import in it
counts, those inside functions too. Registration is explicit, so no import inside a
function dodges a cycle either: only the optional Stripe SDK may be imported late.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flask_subscriptions"
GATEWAYS = PACKAGE / "gateways"
MODULES = sorted(GATEWAYS.rglob("*.py"))
FORBIDDEN = tuple(f"flask_subscriptions.{name}" for name in ("services", "models", "blueprints"))
#: What a function may import for itself: the extra that may not be installed.
LAZY_ALLOWED = ("stripe",)


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """The absolute names ``node`` brings in: ``from . import links`` a module,
    ``from .x import y`` a name in ``x`` (and ``x`` itself, which runs first)."""
    base = node.module or ""
    if node.level:
        package = _package_of(path).split(".")
        anchor = ".".join(package[: len(package) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _imports(path: Path) -> list[tuple[ast.stmt, list[str]]]:
    """Every import statement of the module, wherever it is, with the names it brings in."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[ast.stmt, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.append((node, [alias.name for alias in node.names]))
        elif isinstance(node, ast.ImportFrom):
            found.append((node, _resolve(path, node)))
    return found


def _in_function(path: Path) -> list[tuple[int, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    late: list[tuple[int, list[str]]] = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    late.append((node.lineno, [alias.name for alias in node.names]))
                elif isinstance(node, ast.ImportFrom):
                    late.append((node.lineno, ["." * node.level + (node.module or "")]))
    return late


def test_the_scan_sees_every_gateway() -> None:
    """An empty glob would prove nothing."""
    names = {_name(path) for path in MODULES}
    assert {
        "flask_subscriptions.gateways.base",
        "flask_subscriptions.gateways.events",
        "flask_subscriptions.gateways.sandbox.service",
        "flask_subscriptions.gateways.stripe.events",
        "flask_subscriptions.gateways.stripe.views",
    } <= names


def test_relative_imports_are_resolved_as_python_does() -> None:
    """The scan's own check: ``from ...services import x`` in ``stripe/events.py`` is ours."""
    path = GATEWAYS / "stripe" / "events.py"
    statements = ast.parse("from ...services import payments\nfrom ..base import Gateway").body
    resolved = [_resolve(path, node) for node in statements if isinstance(node, ast.ImportFrom)]
    assert "flask_subscriptions.services.payments" in resolved[0]
    assert "flask_subscriptions.gateways.base" in resolved[1]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _name(path))
def test_a_gateway_imports_no_services_models_or_blueprints(path: Path) -> None:
    """STYLE "Plugs point inward": a gateway hands back results and events, and the
    services apply them; it never reaches up into them, not even from inside a function."""
    for node, names in _imports(path):
        reaching_up = [name for name in names if name.startswith(FORBIDDEN)]
        assert not reaching_up, f"{path.name}:{node.lineno} imports {reaching_up}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _name(path))
def test_a_gateway_imports_inside_a_function_only_the_optional_stripe_sdk(path: Path) -> None:
    """STYLE "Registration is explicit": no import inside a function to dodge a cycle."""
    for lineno, names in _in_function(path):
        assert all(name.split(".")[0] in LAZY_ALLOWED for name in names), (
            f"{path.name}:{lineno} imports {names} inside a function"
        )


def test_the_gateway_modules_import_each_other_without_a_cycle() -> None:
    """The pages are mounted by their gateway and never import it back (sandbox, Stripe)."""
    modules = {_name(path): path for path in MODULES}
    graph = {
        name: {
            imported
            for _node, names in _imports(path)
            for imported in names
            if imported in modules and imported != name
        }
        for name, path in modules.items()
    }
    # A package's __init__ re-exports its modules; the edges that matter are module to module.
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    for name in graph:
        graph[name] -= packages
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting, name])
        if name in done:
            return
        visiting.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("name", ["base", "events"])
def test_the_types_a_third_party_codes_against_need_no_flask_or_sqlalchemy(name: str) -> None:
    """``base.py`` and ``events.py`` are plain dataclasses and protocols."""
    path = GATEWAYS / f"{name}.py"
    roots = {imported.split(".")[0] for _node, names in _imports(path) for imported in names}
    assert not roots & {"flask", "sqlalchemy", "flask_sqlalchemy", "werkzeug"}
    ours = {i for _node, names in _imports(path) for i in names if i.startswith("flask_sub")}
    assert all(i.startswith("flask_subscriptions.gateways") for i in ours), ours
