"""The package's layers, read from its source: no import cycle, and plugs point inward.

Imports written inside functions count like any other (a cycle hidden in a function is
still a cycle), and there are none but the optional Stripe SDK's. Imports under
``TYPE_CHECKING`` are for annotations only and do not count. These tests read every module
of the package, the ones written later included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flask_subscriptions"
ROOT = "flask_subscriptions"

#: Who may not import whom: (importer prefix, forbidden prefixes).
LAYERS = [
    ("core", ("",)),  # the core imports nothing of ours but the core (test_purity.py)
    ("models", ("services", "blueprints", "jobs", "cli", "extension", "gateways")),
    ("services", ("blueprints", "jobs", "cli", "extension", "entitlements")),
    ("notifications", ("blueprints", "jobs", "cli", "extension")),
    ("state", ("services", "blueprints", "jobs", "cli", "extension", "models")),
    ("gateways", ("services", "models", "blueprints", "jobs", "cli", "extension")),
]
#: Optional extras a module may import where it needs them, and only there.
LAZY = ("stripe",)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(child) for child in ast.walk(node))
    return hidden


def _imports(name: str) -> Iterator[tuple[ast.stmt, str, bool]]:
    """(statement, module of ours it imports, whether it sits inside a function)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.walk(node)
    }
    hidden = _type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join([ROOT, *package[: len(package) - node.level + 1]]) if node.level else ROOT
            )
            if node.level:
                module = ".".join(p for p in (base, node.module) if p)
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            yield node, target, id(node) in in_function


def _ours(target: str) -> str | None:
    """The module of ours ``target`` names (``a.b.name`` → ``a.b``), without the root."""
    if not target.startswith(ROOT):
        return None
    parts = target.split(".")[1:]
    while parts and ".".join(parts) not in MODULES:
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for _node, target, _inside in _imports(name):
            module = _ours(target)
            if module is not None and module != name:
                graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_scan_sees_the_package() -> None:
    """An empty scan would prove nothing."""
    graph = _graph()
    assert {"services.pipeline", "extension", "state", "core.money"} <= set(graph)
    assert "services.pipeline" in graph["services.checkout"]


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    assert _cycles(_graph()) == []


def test_no_import_inside_a_function_but_optional_extras() -> None:
    """STYLE: no import inside a function to dodge a cycle; an optional extra (the Stripe
    SDK) is imported where it is needed, so the package works without it."""
    inside = [
        f"{name}: {target}"
        for name in MODULES
        for _node, target, in_function in _imports(name)
        if in_function and target.split(".")[0] not in LAZY
    ]
    assert inside == []


@pytest.mark.parametrize(("layer", "forbidden"), LAYERS, ids=[layer for layer, _ in LAYERS])
def test_layers_point_inward(layer: str, forbidden: tuple[str, ...]) -> None:
    """The core imports only the core; models nothing above them; services never the web,
    jobs or CLI layers; the app's state nothing above the settings; a gateway hands back
    results and events and never reaches into our services, models or pages."""
    graph = _graph()
    members = [name for name in graph if name == layer or name.startswith(f"{layer}.")]
    assert members, layer
    wrong = [
        f"{name} → {other}"
        for name in members
        for other in graph[name]
        if not other.startswith(layer)
        and any(other == f or other.startswith(f"{f}.") or f == "" for f in forbidden)
    ]
    assert wrong == []
