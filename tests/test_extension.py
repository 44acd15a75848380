"""The extension object: app factories, two apps, settings validated at start."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_subscriptions import ConfigurationError, FrozenClock, Subscriptions, get_state
from flask_subscriptions.gateways.sandbox import SandboxGateway


def _bare_app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="x",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SUBSCRIPTIONS_SCHEDULER_ENABLED=False,
        MAIL_SUPPRESS_SEND=True,
        **config,
    )
    return app


def _extension(db: SQLAlchemy) -> Subscriptions:
    """An extension with the one loader every host must register (R-OPS-5)."""
    subscriptions = Subscriptions(db=db, gateway=SandboxGateway("sqlite://"))
    subscriptions.account_loader(lambda account_id: None)
    return subscriptions


def test_init_app_in_a_factory_and_two_apps_in_one_process() -> None:
    db = SQLAlchemy()
    subscriptions = _extension(db)
    apps = [_bare_app(), _bare_app(SUBSCRIPTIONS_URL_PREFIX="/pay")]
    for app in apps:
        db.init_app(app)
        subscriptions.init_app(app)
    assert get_state(apps[0]).settings.url_prefix == "/billing"
    assert get_state(apps[1]).settings.url_prefix == "/pay"
    assert get_state(apps[0]) is not get_state(apps[1])
    assert "subscriptions" in apps[0].extensions
    assert apps[0].url_map.bind("x").match("/billing/plans")[0] == "subscriptions.catalog.plans"
    assert apps[1].url_map.bind("x").match("/pay/plans")[0] == "subscriptions.catalog.plans"


def test_second_registration_is_refused() -> None:
    db = SQLAlchemy()
    app = _bare_app()
    db.init_app(app)
    subscriptions = _extension(db)
    subscriptions.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        subscriptions.init_app(app)


def test_unknown_setting_fails_at_start_and_says_what_to_set() -> None:
    db = SQLAlchemy()
    app = _bare_app(SUBSCRIPTIONS_GRACE_DAYZ=3)
    db.init_app(app)
    with pytest.raises(
        ConfigurationError,
        match=r"Unknown setting SUBSCRIPTIONS_GRACE_DAYZ.*SUBSCRIPTIONS_GRACE_DAYS",
    ):
        _extension(db).init_app(app)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("DUNNING_POLICY", "forgive", "'restrict' or 'free'"),
        ("TIMEZONE", "Mars/Olympus", "IANA time zone"),
        ("WITHDRAWAL_FEE_PERCENT", 10.5, "whole number"),
        ("GRACE_DAYS", 0, "whole number of days"),
        ("URL_PREFIX", "billing", "a path"),
    ],
)
def test_wrong_setting_fails_at_start(key: str, value: object, message: str) -> None:
    db = SQLAlchemy()
    app = _bare_app(**{f"SUBSCRIPTIONS_{key}": value})
    db.init_app(app)
    with pytest.raises(ConfigurationError, match=f"Set SUBSCRIPTIONS_{key} to .*{message}"):
        _extension(db).init_app(app)


def test_defaults_are_visible_in_app_config_and_policy_sets_the_grace() -> None:
    db = SQLAlchemy()
    app = _bare_app(SUBSCRIPTIONS_DUNNING_POLICY="free")
    db.init_app(app)
    _extension(db).init_app(app)
    assert app.config["SUBSCRIPTIONS_URL_PREFIX"] == "/billing"
    assert get_state(app).settings.grace_days == 10  # R-DUN-2's default
    assert get_state(app).settings.timezone == "UTC"


def test_without_flask_sqlalchemy_the_error_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="needs Flask-SQLAlchemy"):
        _extension(None).init_app(_bare_app())  # type: ignore[arg-type]


def test_one_clock_gives_today_in_the_configured_time_zone_R_TIME_1() -> None:
    """R-TIME-1: billing dates come from one injectable clock, in one time zone."""
    from datetime import UTC, date, datetime

    db = SQLAlchemy()
    app = _bare_app(SUBSCRIPTIONS_TIMEZONE="Asia/Tokyo")
    db.init_app(app)
    clock = FrozenClock(datetime(2026, 3, 31, 16, 0, tzinfo=UTC))  # 01:00 on April 1 in Tokyo
    _extension(db).init_app(app, clock=clock)
    state = get_state(app)
    assert state.today() == date(2026, 4, 1)
    clock.advance(days=30)
    assert state.today() == date(2026, 5, 1)
