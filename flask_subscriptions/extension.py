"""The ``Subscriptions`` extension object (the Flask-SQLAlchemy pattern).

Per-app state lives in ``app.extensions["subscriptions"]`` (``state.py``) and never on
``self``, so one extension object can serve several apps (app factories, tests with two apps
at once). This is the top of the package: it wires the layers below it together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask
from flask_mail import Mail
from sqlalchemy import event

from .access import SupportLoader
from .accounts import (
    AccountLoader,
    AccountsLoader,
    BillingAccount,
    CurrentAccountLoader,
)
from .blueprints import register_blueprints
from .checks import check_base_template, check_mail
from .cli import subscriptions_cli
from .clock import Clock, SystemClock
from .config import ConfigurationError, apply_defaults, load_settings
from .features import forget_entitlements
from .jobs import register_jobs
from .messages import setup_sentence
from .receipt_content import FONTS_KEY
from .receipts import find_fonts
from .services.entitlement_cache import EntitlementCache, listen_for_commits
from .services.gateway_events import apply_gateway_event
from .services.outcomes import OUTCOMES
from .services.usage import report_usage
from .state import EXTENSION_KEY, State
from .templating import register_assets, register_template_helpers

if TYPE_CHECKING:
    from datetime import datetime

    from flask_sqlalchemy import SQLAlchemy

    from .gateways.base import Gateway
    from .models import UsageReport


class Subscriptions:
    """Subscription billing for a Flask app.

    ``Subscriptions(app, db=db, gateway=SandboxGateway())`` or, in an app factory,
    ``subscriptions = Subscriptions()`` then ``subscriptions.init_app(app, db=db, ...)``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        gateway: Gateway | None = None,
        clock: Clock | None = None,
        scheduler: Any = None,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._clock = clock
        self._scheduler = scheduler
        self._account_loader: AccountLoader | None = None
        self._current_account_loader: CurrentAccountLoader | None = None
        self._accounts_loader: AccountsLoader | None = None
        self._support_loader: SupportLoader | None = None
        if app is not None:
            # ``Subscriptions(app)``: the loaders' decorators can only run after this line,
            # so the loader check waits for the first request, CLI command or job.
            self._init(app, loaders_follow=True)

    # --- host hooks ----------------------------------------------------------------------

    def account_loader(self, fn: AccountLoader) -> AccountLoader:
        """Register ``fn(account_id: str) -> account | None`` (used by jobs and e-mails)."""
        self._account_loader = fn
        return fn

    def accounts_loader(self, fn: AccountsLoader) -> AccountsLoader:
        """Optionally register ``fn(account_ids: list[str]) -> {account_id: account}``, one
        query for many accounts; renewals use it for their receipts. Missing ids are left out."""
        self._accounts_loader = fn
        return fn

    def current_account_loader(self, fn: CurrentAccountLoader) -> CurrentAccountLoader:
        """Register ``fn() -> account | None``: the account the signed-in user acts for.

        Without it, the Flask-Login ``current_user`` is the payer.
        """
        self._current_account_loader = fn
        return fn

    def support_loader(self, fn: SupportLoader) -> SupportLoader:
        """Register ``fn(user) -> SupportAccess | None``: who may open the support console
        (R-OPS-1) and whether they may act or only view. Without it nobody may."""
        self._support_loader = fn
        return fn

    # --- usage (R-USE-1) -----------------------------------------------------------------

    def report_usage(
        self,
        account: BillingAccount | str,
        metric: str,
        value: int,
        *,
        at: datetime | None = None,
    ) -> UsageReport:
        """Record the account's usage of ``metric`` (``"mau"``); the latest report counts.

        Over the plan's limit, paid features are restricted at once (R-USE-2). Bad input
        raises ``UsageInvalid`` and records nothing (R-SEC-4).
        """
        report = report_usage(account, metric, value, at=at)
        forget_entitlements(account)
        return report

    # --- set-up --------------------------------------------------------------------------

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        gateway: Gateway | None = None,
        clock: Clock | None = None,
        scheduler: Any = None,
    ) -> None:
        """Validate the settings and the host's set-up, then register everything billing
        needs on ``app``. A misconfigured host stops here, naming what to set (R-OPS-5):
        register the loaders before calling it (decorators on a module-level
        ``Subscriptions()`` run at import, before an app factory calls this)."""
        self._init(
            app, db=db, gateway=gateway, clock=clock, scheduler=scheduler, loaders_follow=False
        )

    def _init(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        gateway: Gateway | None = None,
        clock: Clock | None = None,
        scheduler: Any = None,
        loaders_follow: bool,
    ) -> None:
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("flask-subscriptions is already registered on this app.")
        gateway = self._resolve_gateway(gateway or self._gateway)
        apply_defaults(app.config)
        settings = load_settings(app.config, getattr(gateway, "settings_keys", ()))
        state = State(
            settings=settings,
            db=self._resolve_db(app, db or self._db),
            gateway=gateway,
            clock=clock or self._clock or SystemClock(),
            extension=self,
            apply_gateway_event=apply_gateway_event,
            scheduler=scheduler or self._scheduler,
            outcomes=OUTCOMES,
        )
        self._check_loaders(app, state, loaders_follow)
        self._keep_entitlements(state)
        self._register_assets(app, state)
        self._check_base_template(app, state)
        self._check_mail(app, state)
        self._find_receipt_fonts(app, state)
        app.extensions[EXTENSION_KEY] = state
        self._configure_sqlite(app, state)
        self._init_gateway(app, state)
        self._register_mail(app)
        self._register_template_helpers(app, state)
        if settings.register_blueprints:
            self._register_blueprints(app, state)
        self._register_cli(app)
        self._register_jobs(app, state)

    @staticmethod
    def _resolve_gateway(gateway: Gateway | None) -> Gateway:
        """No gateway, no way to take a payment: say so now, not at the first order."""
        if gateway is None:
            raise ConfigurationError(setup_sentence("no_gateway"))
        return gateway

    @staticmethod
    def _check_loaders(app: Flask, state: State, loaders_follow: bool) -> None:
        """The account loader is required: without it a payment could be taken and never
        recorded. Checked now, or (``Subscriptions(app)``) before the first request; the
        CLI group, the jobs and every gateway call check it too (``State.require_loaders``)."""
        if not loaders_follow:
            state.require_loaders()
            return
        checked = False

        @app.before_request
        def _require_loaders() -> None:
            nonlocal checked
            if not checked:
                state.require_loaders()
                checked = True

    @staticmethod
    def _keep_entitlements(state: State) -> None:
        """Feature checks answer from memory while the database says nothing changed."""
        settings = state.settings
        state.entitlement_cache = EntitlementCache(
            settings.entitlements_ttl, settings.entitlements_cache_size
        )
        listen_for_commits(state.db.session)

    @staticmethod
    def _register_assets(app: Flask, state: State) -> None:
        register_assets(app, state.settings.url_prefix)

    @staticmethod
    def _check_base_template(app: Flask, state: State) -> None:
        check_base_template(app, state.settings.base_template)

    @staticmethod
    def _check_mail(app: Flask, state: State) -> None:
        check_mail(app, state.settings.require_mail)

    @staticmethod
    def _find_receipt_fonts(app: Flask, state: State) -> None:
        """Japanese and Korean receipts need a font with their glyphs: found now, and a host
        without one is told at start (its receipts in those languages print in English)."""
        configured = state.settings.pdf_font
        fonts = find_fonts(str(configured) if configured else None)
        state.extras[FONTS_KEY] = fonts
        if not fonts:
            app.logger.warning(setup_sentence("no_receipt_font"))

    @staticmethod
    def _resolve_db(app: Flask, db: SQLAlchemy | None) -> SQLAlchemy:
        if db is not None:
            return db
        found = app.extensions.get("sqlalchemy")
        if found is None:
            raise ConfigurationError(
                "flask-subscriptions needs Flask-SQLAlchemy: call db.init_app(app) first, "
                "or pass db=... to Subscriptions()."
            )
        return found  # type: ignore[no-any-return]

    @staticmethod
    def _configure_sqlite(app: Flask, state: State) -> None:
        """Give SQLite real transactions (pysqlite's defaults break SAVEPOINT and let two
        writers deadlock); ``SUBSCRIPTIONS_SQLITE_BEGIN = None`` leaves the engine alone."""
        mode = state.settings.sqlite_begin
        if mode is None:
            return
        with app.app_context():
            engines = list(state.db.engines.values())
        for engine in engines:
            if engine.dialect.name == "sqlite":
                use_real_transactions(engine, mode)

    @staticmethod
    def _init_gateway(app: Flask, state: State) -> None:
        init = getattr(state.gateway, "init_app", None)
        if callable(init):
            init(app)

    @staticmethod
    def _register_mail(app: Flask) -> None:
        if "mail" not in app.extensions:
            Mail(app)

    @staticmethod
    def _register_template_helpers(app: Flask, state: State) -> None:
        register_template_helpers(app, state)

    @staticmethod
    def _register_blueprints(app: Flask, state: State) -> None:
        register_blueprints(app, state.settings.url_prefix)

    @staticmethod
    def _register_cli(app: Flask) -> None:
        app.cli.add_command(subscriptions_cli)

    @staticmethod
    def _register_jobs(app: Flask, state: State) -> None:
        register_jobs(app, state)


def use_real_transactions(engine: Any, mode: str) -> None:
    """The SQLAlchemy recipe for pysqlite: we emit BEGIN ourselves."""
    if getattr(engine, "_subs_real_transactions", False):
        return
    engine._subs_real_transactions = True

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        # Writers queue for the one write lock; several workers may wait a while. WAL lets
        # readers go on while one writes, and commits without waiting for the disk each time
        # (still durable if a process dies; SQLite's recommended mode for servers).
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(f"BEGIN {mode}")
