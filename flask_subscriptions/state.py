"""One app's billing state: settings, database, gateway, clock and the host's loaders.

Everything below the extension object (services, jobs, notifications, gateways) reads it
through :func:`get_state`; this module imports nothing of ours above ``config``,
``accounts`` and the gateway types, so every layer may use it without a cycle. A gateway
hands what its service reported to :attr:`State.apply_gateway_event`, which ``init_app``
sets to the services' function: the gateway never imports the services.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from .accounts import BillingAccount, default_current_account
from .clock import Clock, today, utcnow_naive
from .config import ConfigurationError, Settings
from .messages import setup_sentence

if TYPE_CHECKING:
    from datetime import datetime

    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session

    from .extension import Subscriptions
    from .fanout import TaskQueue
    from .gateways.base import Gateway
    from .gateways.events import EventSink
    from .services.entitlement_cache import EntitlementCache
    from .services.pipeline import Outcomes

EXTENSION_KEY = "subscriptions"


@dataclass
class State:
    """Everything one app's billing needs, built once by ``init_app``."""

    settings: Settings
    db: SQLAlchemy
    gateway: Gateway | None
    clock: Clock
    extension: Subscriptions
    #: Applies a gateway's :class:`~.gateways.events.GatewayNotice`; what came of it.
    apply_gateway_event: EventSink
    scheduler: Any = None
    #: Where ``--on-workers`` sends the jobs: set by ``flask_subscriptions.celery`` (or any
    #: :class:`~.fanout.TaskQueue` a host plugs in); None runs them in-process only.
    task_queue: TaskQueue | None = None
    #: What a payment's outcome means for each kind of invoice (``services/outcomes.py``).
    outcomes: Mapping[str, Outcomes] = field(default_factory=dict)
    #: This process's entitlements (R-USE-3), built by ``init_app``.
    entitlement_cache: EntitlementCache | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        return self.db.session  # type: ignore[return-value]

    def today(self) -> date:
        """Today's billing date in the configured time zone (R-TIME-1)."""
        return today(self.clock, self.settings.timezone)

    def now(self) -> datetime:
        """Now as the naive UTC datetime the tables store."""
        return utcnow_naive(self.clock)

    def require_gateway(self) -> Gateway:
        """The gateway, for a call that may move money: refused before the call when the
        host could not record its outcome (no account loader), so no path takes a payment
        it cannot then record (R-OPS-5)."""
        self.require_loaders()
        if self.gateway is None:
            raise ConfigurationError(setup_sentence("no_gateway"))
        return self.gateway

    def require_loaders(self) -> None:
        """Refuse to go on without the host's account loader. ``init_app`` calls it, or,
        for ``Subscriptions(app)`` (whose loaders are registered just after it), the
        first request, CLI command and job do, before anything else runs."""
        if self.extension._account_loader is None:
            raise ConfigurationError(setup_sentence("no_account_loader"))

    def load_account(self, account_id: str) -> BillingAccount | None:
        self.require_loaders()
        loader = self.extension._account_loader
        assert loader is not None
        return loader(account_id)

    def load_accounts(self, account_ids: Collection[str]) -> dict[str, BillingAccount]:
        """Many accounts at once (a renewal batch mails hundreds): the host's
        ``accounts_loader`` when it registered one, else ``account_loader`` per id."""
        many = self.extension._accounts_loader
        if many is not None:
            return dict(many(list(account_ids)))
        loaded = ((account_id, self.load_account(account_id)) for account_id in account_ids)
        return {account_id: account for account_id, account in loaded if account is not None}

    def current_account(self) -> BillingAccount | None:
        loader = self.extension._current_account_loader or default_current_account
        return loader()


def get_state(app: Flask | None = None) -> State:
    """The billing state of ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
    except KeyError:
        raise RuntimeError(
            "flask-subscriptions is not initialised on this app: call Subscriptions(app)."
        ) from None
