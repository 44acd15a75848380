"""A pytest plugin for hosts: test "renews next month" in a few lines.

Installed with the package and loaded by pytest through the ``pytest11`` entry point. It
needs one fixture from the host, ``app`` (as pytest-flask does): the host's app, set up
with ``SandboxGateway()`` and its tables created. Every fixture of ours is named
``billing_*`` so it never shadows a host's own ``clock``, ``outbox`` or ``gateway``.

- ``billing_clock``: a :class:`FrozenClock` the app's billing reads; ``advance(days=31)``.
- ``billing_gateway``: the app's Sandbox Pay, with its fault switches
  (``fail_before_charge``, ``timeout_after_charge``, ``latency``); the test cards are
  :data:`CARDS`.
- ``billing_outbox``: the billing e-mails recorded (``kinds()``, ``of_kind()``, ``to()``).
- ``billing``: :class:`Billing`, to buy a plan as an owner would and to run the jobs.

Why the clock is swapped into the app's state rather than passed to ``init_app``: a host's
app factory should not need a test-only argument to be testable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from .accounts import BillingAccount
from .clock import FrozenClock
from .gateways.sandbox import SandboxGateway
from .jobs import run_due_jobs
from .models import OutboxMessage, Subscription
from .services.checkout import choose_payment_method, place_order, start_order, view_order
from .services.payment_methods import finish_registration, start_registration
from .state import State, get_state

#: When a test's billing day starts unless the host overrides ``billing_clock``.
START = datetime(2026, 1, 15, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Cards:
    """Sandbox Pay's test cards (any future expiry, any CVC)."""

    visa: str = "4242 4242 4242 4242"
    mastercard: str = "5555 5555 5555 4444"
    declined_at_registration: str = "4000 0000 0000 0002"
    declines_every_charge: str = "4000 0000 0000 0341"
    insufficient_funds: str = "4000 0000 0000 9995"
    fails_at_renewal: str = "4000 0000 0000 1232"
    requires_authentication: str = "4000 0027 6000 3184"


CARDS = Cards()


class Outbox:
    """The billing e-mails recorded so far (delivered or not), oldest first."""

    def __init__(self, state: State) -> None:
        self._state = state

    def all(self) -> list[OutboxMessage]:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        return list(self._state.session.scalars(query))

    def kinds(self) -> list[str]:
        return [message.kind for message in self.all()]

    def of_kind(self, kind: str) -> list[OutboxMessage]:
        return [message for message in self.all() if message.kind == kind]

    def to(self, address: str) -> list[OutboxMessage]:
        return [message for message in self.all() if address in message.recipients]


class Billing:
    """What an owner and the jobs do, through the same services as the pages."""

    def __init__(self, app: Flask, clock: FrozenClock) -> None:
        self.app = app
        self.clock = clock
        self.state = get_state(app)

    def buy(
        self,
        account: BillingAccount,
        plan: str,
        *,
        interval: str = "month",
        currency: str | None = None,
        card: str = CARDS.visa,
        addons: tuple[str, ...] = (),
    ) -> Subscription | None:
        """Register ``card`` at Sandbox Pay, then buy ``plan``: the license it bought, or
        None when the card was declined (the order stays open, as on the page)."""
        method_id = self.add_card(account, card)
        order = start_order(
            plan,
            interval,
            currency or self.state.settings.default_currency,
            list(addons),
            account,
        )
        choose_payment_method(order, account, method_id)
        fingerprint = view_order(order, account).quote.fingerprint
        order = place_order(order.key, account, fingerprint)
        return self.license(account) if order.state == "paid" else None

    def add_card(self, account: BillingAccount, number: str = CARDS.visa) -> int:
        """A card typed into Sandbox Pay's form and kept as the account's payment method."""
        gateway = self.state.gateway
        if not isinstance(gateway, SandboxGateway):
            raise TypeError("billing.add_card needs the app's gateway to be SandboxGateway()")
        with self.app.test_request_context():
            reference = start_registration(account, "/").reference
            assert reference is not None  # Sandbox Pay always names its setup session
            gateway.register_card(reference, number.replace(" ", ""), 12, 2099)
            return finish_registration(account, reference).id

    def license(self, account: BillingAccount) -> Subscription | None:
        """The account's latest license (``state``, ``current_term_end``, …)."""
        query = (
            select(Subscription)
            .where(Subscription.account_id == account.billing_id)
            .order_by(Subscription.id.desc())
        )
        self.state.session.expire_all()
        return self.state.session.scalars(query).first()

    def run_jobs(self) -> dict[str, Any]:
        """Every billing job once, as the scheduler or cron would: renewals, dunning,
        reconciliation, then the mail they caused."""
        return run_due_jobs()

    def advance(self, days: int = 0, **delta: float) -> dict[str, Any]:
        """Move the billing clock forward, then run the jobs, as time passing would."""
        self.clock.advance(days, **delta)
        return self.run_jobs()


@pytest.fixture
def billing_clock() -> FrozenClock:
    """Override it to start elsewhere: ``return FrozenClock(datetime(2026, 1, 31, ...))``."""
    return FrozenClock(START)


@pytest.fixture
def billing_app(app: Flask, billing_clock: FrozenClock) -> Iterator[Flask]:
    """The host's ``app``, its billing on ``billing_clock``, inside an app context."""
    state = get_state(app)
    previous = state.clock
    state.clock = billing_clock
    if isinstance(state.gateway, SandboxGateway):
        state.gateway.today = state.today  # card expiry follows the billing clock too
    with app.app_context():
        yield app
        state.db.session.remove()
    state.clock = previous


@pytest.fixture
def billing_gateway(billing_app: Flask) -> SandboxGateway:
    gateway = get_state(billing_app).gateway
    if not isinstance(gateway, SandboxGateway):
        raise TypeError("billing_gateway needs the app's gateway to be SandboxGateway()")
    return gateway


@pytest.fixture
def billing_outbox(billing_app: Flask) -> Outbox:
    return Outbox(get_state(billing_app))


@pytest.fixture
def billing(billing_app: Flask, billing_clock: FrozenClock) -> Billing:
    return Billing(billing_app, billing_clock)
