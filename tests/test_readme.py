"""The README's examples run as written (issue: the README example runs as written)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    return text.split(f"### {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_quote_api_example_prints_E3_R_PRO_4() -> None:
    """The README's quote example is SPEC's E3, and prints what the README says it prints."""
    section = _section("The quote API")
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == printed
    assert "$19.35" in printed


def test_the_host_example_serves_the_plans_page(tmp_path: Path) -> None:
    """The README's "Plugging it into an app" example, as a module of its own."""
    import importlib.util

    code = re.findall(r'```python title="yourapp.py"\n(.*?)```', README.read_text(), re.S)[0]
    module_path = tmp_path / "yourapp.py"
    module_path.write_text(code)
    spec = importlib.util.spec_from_file_location("yourapp", module_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.sqlite'}")
    from flask_subscriptions.core.catalog import load_catalog_file
    from flask_subscriptions.services.catalog import load_catalog

    from .conftest import SAMPLE_CATALOG

    with app.app_context():
        module.db.create_all()
        # The README's set-up: our migrations (and Sandbox Pay's); the app made no table.
        done = app.test_cli_runner().invoke(args=["subscriptions", "db", "upgrade"])
        assert done.exit_code == 0, done.output
        load_catalog(load_catalog_file(SAMPLE_CATALOG))
        page = app.test_client().get("/billing/plans")
        assert page.status_code == 200 and page.text.count("Buy now") == 4
        for engine in module.db.engines.values():
            engine.dispose()
