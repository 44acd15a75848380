"""R-OPS-5: a misconfigured host is told at start, naming what to set, never at the first
payment; one test per misconfiguration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_subscriptions import ConfigurationError, Subscriptions, get_state
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.gateways.stripe import StripeGateway
from flask_subscriptions.jobs import run_due_jobs

STRIPE_KEYS = {
    "SUBSCRIPTIONS_STRIPE_SECRET_KEY": "sk_test_x",
    "SUBSCRIPTIONS_STRIPE_PUBLISHABLE_KEY": "pk_test_x",
    "SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET": "whsec_x",
}


def _host(tmp_path: Path, templates: dict[str, str] | None = None, **config: Any) -> Flask:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, source in (templates or {}).items():
        (folder / name).write_text(source)
    app = Flask(__name__, template_folder=str(folder))
    settings: dict[str, Any] = {
        "SECRET_KEY": "x",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'host.sqlite'}",
        "SUBSCRIPTIONS_SCHEDULER_ENABLED": False,
        "MAIL_SUPPRESS_SEND": True,
    }
    settings.update(config)
    app.config.update({k: v for k, v in settings.items() if v is not None})
    return app


def _start(app: Flask, gateway: Any = "sandbox", *, loader: bool = True) -> Subscriptions:
    db = SQLAlchemy()
    db.init_app(app)
    if gateway == "sandbox":
        gateway = SandboxGateway(f"sqlite:///{app.instance_path}-sandbox.sqlite")
    subscriptions = Subscriptions(db=db, gateway=gateway)
    if loader:
        subscriptions.account_loader(lambda account_id: None)
    subscriptions.init_app(app)
    return subscriptions


def test_a_host_that_starts_cleanly_R_OPS_5(tmp_path: Path) -> None:
    app = _host(tmp_path)
    _start(app)
    assert get_state(app).settings.require_mail is False


def test_no_account_loader_is_refused_by_init_app_R_OPS_5(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"@subscriptions\.account_loader"):
        _start(_host(tmp_path), loader=False)


def test_subscriptions_app_without_a_loader_refuses_before_anything_runs_R_OPS_5(
    tmp_path: Path,
) -> None:
    """``Subscriptions(app)`` registers loaders after init_app, so the check waits for the
    first request, CLI command or job, and comes before any gateway call: no payment can
    be taken that could not then be recorded."""
    app = _host(tmp_path, TESTING=True)  # the error reaches the test, not a 500 page
    db = SQLAlchemy(app)
    gateway = SandboxGateway(f"sqlite:///{tmp_path / 'sandbox.sqlite'}")
    Subscriptions(app, db=db, gateway=gateway)  # and no @subscriptions.account_loader
    with pytest.raises(ConfigurationError, match="account_loader"):
        app.test_client().get("/billing/plans")
    result = app.test_cli_runner().invoke(args=["subscriptions", "run-jobs"])
    assert result.exit_code != 0 and "account_loader" in str(result.exception)
    with app.app_context():
        with pytest.raises(ConfigurationError, match="account_loader"):
            run_due_jobs()
        with pytest.raises(ConfigurationError, match="no payment is taken"):
            get_state().require_gateway()
        gateway.create_storage()  # (no table is made at start: only to read what it holds)
        assert gateway.charges() == []


def test_subscriptions_app_with_the_loader_registered_after_it_works(tmp_path: Path) -> None:
    app = _host(tmp_path)
    db = SQLAlchemy(app)
    subscriptions = Subscriptions(app, db=db, gateway=SandboxGateway("sqlite://"))

    @subscriptions.account_loader
    def load(account_id: str) -> None:
        return None

    with app.app_context():
        get_state().require_gateway()
    result = app.test_cli_runner().invoke(args=["subscriptions", "db", "create"])
    assert result.exit_code == 0, result.output


def test_no_gateway_is_refused_R_OPS_5(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"gateway=SandboxGateway\(\)"):
        _start(_host(tmp_path), gateway=None)


def test_an_unknown_setting_is_refused_R_OPS_5(tmp_path: Path) -> None:
    app = _host(tmp_path, SUBSCRIPTIONS_GRACE_DAYZ=3)
    with pytest.raises(ConfigurationError, match="Unknown setting SUBSCRIPTIONS_GRACE_DAYZ"):
        _start(app)


def test_a_stripe_typo_is_refused_with_the_sandbox_R_OPS_5(tmp_path: Path) -> None:
    """It used to be let through, and the app took payments on Sandbox Pay."""
    app = _host(tmp_path, SUBSCRIPTIONS_STRIPE_SECRT_KEY="sk_test_x")
    with pytest.raises(ConfigurationError, match="Unknown setting SUBSCRIPTIONS_STRIPE_SECRT_KEY"):
        _start(app)


def test_a_stripe_typo_is_refused_with_stripe_R_OPS_5(tmp_path: Path) -> None:
    app = _host(tmp_path, SUBSCRIPTIONS_STRIPE_SECRT_KEY="sk_test_x", **STRIPE_KEYS)
    with pytest.raises(
        ConfigurationError,
        match=r"Unknown setting SUBSCRIPTIONS_STRIPE_SECRT_KEY.*SUBSCRIPTIONS_STRIPE_SECRET_KEY",
    ):
        _start(app, StripeGateway(database_url=f"sqlite:///{tmp_path / 'stripe.sqlite'}"))


def test_a_gateway_without_its_settings_is_refused_R_OPS_5(tmp_path: Path) -> None:
    keys = {**STRIPE_KEYS, "SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET": None}
    app = _host(tmp_path, **keys)
    with pytest.raises(ConfigurationError, match="Set SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET"):
        _start(app, StripeGateway(database_url=f"sqlite:///{tmp_path / 'stripe.sqlite'}"))


def test_a_locale_babel_does_not_know_is_refused_R_OPS_5(tmp_path: Path) -> None:
    app = _host(tmp_path, SUBSCRIPTIONS_LOCALE="xx_NOPE")
    with pytest.raises(ConfigurationError, match="Set SUBSCRIPTIONS_LOCALE to a locale Babel"):
        _start(app)


def test_a_known_locale_is_accepted(tmp_path: Path) -> None:
    app = _host(tmp_path, SUBSCRIPTIONS_LOCALE="ja_JP")
    _start(app)
    assert get_state(app).settings.locale == "ja_JP"


def test_a_missing_base_template_is_refused_R_OPS_5(tmp_path: Path) -> None:
    app = _host(tmp_path, SUBSCRIPTIONS_BASE_TEMPLATE="base.html")
    with pytest.raises(ConfigurationError, match=r"'base\.html', and no template of that name"):
        _start(app)


def test_a_base_template_without_the_blocks_is_refused_R_OPS_5(tmp_path: Path) -> None:
    app = _host(
        tmp_path,
        {"base.html": "<title>{% block head %}{% endblock %}</title><main>x</main>"},
        SUBSCRIPTIONS_BASE_TEMPLATE="base.html",
    )
    with pytest.raises(ConfigurationError, match=r"lacks the block.*`title`, `content`"):
        _start(app)


def test_a_base_template_whose_blocks_come_from_its_parent_is_accepted(tmp_path: Path) -> None:
    templates = {
        "root.html": (
            "<title>{% block title %}{% endblock %}</title>{% block content %}{% endblock %}"
        ),
        "base.html": "{% extends 'root.html' %}{% block title %}Acme{% endblock %}",
    }
    app = _host(tmp_path, templates, SUBSCRIPTIONS_BASE_TEMPLATE="base.html")
    _start(app)


def test_mail_neither_configured_nor_suppressed_warns_in_development_R_OPS_5(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _host(tmp_path, MAIL_SUPPRESS_SEND=None)
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        _start(app)
    assert "No mail server: set MAIL_SERVER" in caplog.text
    assert "MAIL_SUPPRESS_SEND = True" in caplog.text


def test_mail_neither_configured_nor_suppressed_is_an_error_when_required_R_OPS_5(
    tmp_path: Path,
) -> None:
    app = _host(tmp_path, MAIL_SUPPRESS_SEND=None, SUBSCRIPTIONS_REQUIRE_MAIL=True)
    with pytest.raises(ConfigurationError, match="No mail server: set MAIL_SERVER"):
        _start(app)


def test_a_configured_mail_server_satisfies_require_mail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _host(
        tmp_path, MAIL_SUPPRESS_SEND=None, MAIL_SERVER="smtp.host", SUBSCRIPTIONS_REQUIRE_MAIL=True
    )
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        _start(app)
    assert "No mail server" not in caplog.text


def test_usage_import_reports_an_id_the_hosts_loader_chokes_on_R_SEC_4(tmp_path: Path) -> None:
    """A loader like ``db.session.get(User, int(account_id))`` raises on 'acme': the CLI
    names the line and imports nothing, instead of a traceback."""
    app = _host(tmp_path)
    db = SQLAlchemy(app)
    subscriptions = Subscriptions(db=db, gateway=SandboxGateway("sqlite://"))
    subscriptions.account_loader(lambda account_id: int(account_id) and None)
    subscriptions.init_app(app)
    rows = tmp_path / "usage.csv"
    rows.write_text("acme,mau,10\n")
    result = app.test_cli_runner().invoke(args=["subscriptions", "usage", "import", str(rows)])
    assert result.exit_code == 1
    assert "line 1: No account has the id 'acme' (your account loader refused it:" in result.output
    assert "Traceback" not in result.output
