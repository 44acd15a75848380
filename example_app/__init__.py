"""The example app: a small SaaS host with billing plugged in (R-EX-1..3).

``make demo`` serves it on SQLite in its instance folder, after ``flask --app example_app
setup`` made its tables (no table is created when an app starts: four workers starting at
once raced on that) and seeded them, with the sandbox payment service and a test clock
that moves time forward. With ``SUBSCRIPTIONS_STRIPE_SECRET_KEY`` (and the publishable key
and webhook secret) in the environment it takes payments through Stripe instead (test-mode
keys, or localstripe with ``SUBSCRIPTIONS_STRIPE_API_BASE``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from flask import Flask, g, session
from flask.cli import with_appcontext
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect

from flask_subscriptions import OffsetClock, Subscriptions
from flask_subscriptions.core.catalog import load_catalog_file
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.i18n import LANGUAGES, browser_locale
from flask_subscriptions.migrations import upgrade
from flask_subscriptions.services.catalog import load_catalog
from flask_subscriptions.services.profiles import account_locale
from flask_subscriptions.state import get_state

from .models import User, db, load_account, load_signed_in, seed_demo_people, support_access
from .reads import begin_at_first_write

CATALOG = Path(__file__).with_name("catalog.toml")

subscriptions = Subscriptions()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str | None:
    """The host's own locale selector, which billing follows (R-I18N-1): the language picked
    in the header, else the signed-in account's preferred language (hana: Japanese), else
    the browser's best of English, Japanese and Korean."""
    picked = session.get("lang")
    if picked in LANGUAGES:
        return str(picked)
    if getattr(current_user, "is_authenticated", False):
        preferred = _preferred_locale(current_user._get_current_object())
        if preferred:
            return preferred
    return browser_locale()


#: ``flask.g`` key: the signed-in person as ``_load_user`` read them, with their account's
#: stored language (this request only).
_LOADED = "example_signed_in"


def _preferred_locale(user: User) -> str | None:
    """The account's preferred language: read with the person by ``_load_user`` (one
    statement for both), else asked for (a person just signed in by ``login_user``)."""
    loaded = g.get(_LOADED)
    if loaded is not None and loaded[0] is user:
        return loaded[1]  # type: ignore[no-any-return]
    return account_locale(user.account)


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "demo-only-not-secret"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{instance / 'example.sqlite'}"
        ),
        # Sandbox Pay keeps its own storage, as a remote payment service would.
        SANDBOX_PAY_DATABASE_URI=os.environ.get(
            "SANDBOX_PAY_DATABASE_URL", f"sqlite:///{instance / 'sandbox-pay.sqlite'}"
        ),
        MAIL_SUPPRESS_SEND=True,  # the Mail page reads the outbox; no SMTP needed (R-EX-3)
        MAIL_DEFAULT_SENDER="billing@example.com",
        SUBSCRIPTIONS_BASE_TEMPLATE="example/base.html",
        SUBSCRIPTIONS_SUPPORT_EMAIL="support@example.com",
        # Who the PDF receipts say was paid (R-INV-2).
        SUBSCRIPTIONS_SELLER_NAME="Example Software, Inc.",
        SUBSCRIPTIONS_SELLER_ADDRESS=(
            "100 Market Street, Suite 300\nSan Francisco, CA 94105\nUnited States"
        ),
        SUBSCRIPTIONS_SELLER_TAX_ID="US 12-3456789",
    )
    app.config.update(config or {})

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            begin_at_first_write(engine)
    csrf.init_app(app)
    # Before billing: it then uses this app's selector rather than setting up its own.
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "example.sign_in"
    clock = OffsetClock(instance / "test-clock.json")
    _stripe_settings_from_environment(app)
    if app.config.get("SUBSCRIPTIONS_STRIPE_SECRET_KEY"):
        from flask_subscriptions.gateways.stripe import StripeGateway

        subscriptions.init_app(app, db=db, gateway=StripeGateway(), clock=clock)
    else:
        gateway = SandboxGateway(app.config["SANDBOX_PAY_DATABASE_URI"])
        subscriptions.init_app(app, db=db, gateway=gateway, clock=clock)
        # Sandbox Pay judges card expiry on the test clock's date too, so moving time
        # forward shows a card expiring before a renewal (R-EX-2).
        gateway.today = get_state(app).today

    from .views import bp

    app.register_blueprint(bp)
    app.cli.add_command(setup_command)
    return app


@click.command("setup")
@with_appcontext
def setup_command() -> None:
    """Make the demo's tables and seed them (``make demo`` runs it first); safe to rerun."""
    prepare()
    click.echo("The demo is ready: demo people, the sample catalog, Sandbox Pay.")


def prepare() -> None:
    """The demo's tables, made explicitly, and its data: the example's own table (a host's
    business), billing's and the gateway's migrations (what ``flask subscriptions db
    upgrade`` runs), the demo people and the sample catalog. Idempotent."""
    db.create_all()
    upgrade(db.engine)
    gateway = get_state().gateway
    upgrade_storage = getattr(gateway, "upgrade_storage", None)
    if callable(upgrade_storage):
        upgrade_storage()
    seed_demo_people()
    load_catalog(load_catalog_file(CATALOG))


STRIPE_SETTINGS = (
    "SUBSCRIPTIONS_STRIPE_SECRET_KEY",
    "SUBSCRIPTIONS_STRIPE_PUBLISHABLE_KEY",
    "SUBSCRIPTIONS_STRIPE_WEBHOOK_SECRET",
    "SUBSCRIPTIONS_STRIPE_API_BASE",
)


def _stripe_settings_from_environment(app: Flask) -> None:
    """Stripe's settings from the environment, unless the caller's config set them; the
    sandbox stays the default (no secret key, no Stripe)."""
    for key in STRIPE_SETTINGS:
        if key not in app.config and os.environ.get(key):
            app.config[key] = os.environ[key]


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    found = load_signed_in(int(user_id))
    if found is None:
        return None
    setattr(g, _LOADED, found)
    return found[0]


@subscriptions.current_account_loader
def _current_account() -> Any:
    return current_user.account if current_user.is_authenticated else None


subscriptions.account_loader(load_account)
subscriptions.support_loader(support_access)
