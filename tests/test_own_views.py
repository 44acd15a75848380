"""A host that mounts its own views on our services (``SUBSCRIPTIONS_REGISTER_BLUEPRINTS =
False``) with a gateway of its own, not Sandbox Pay: our templates still render its e-mails,
its renewals and the feature-refused page (issue #18: they failed with TemplateNotFound)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

from flask_subscriptions import BillingAccountMixin, FrozenClock, Subscriptions, requires_feature
from flask_subscriptions.core.catalog import load_catalog_file
from flask_subscriptions.gateways.base import (
    CardSetup,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    PaymentMethodInfo,
)
from flask_subscriptions.jobs import run_due_jobs
from flask_subscriptions.models import OutboxMessage, metadata
from flask_subscriptions.services.catalog import load_catalog
from flask_subscriptions.services.checkout import (
    choose_payment_method,
    place_order,
    start_order,
    view_order,
)
from flask_subscriptions.services.payment_methods import finish_registration

from .conftest import SAMPLE_CATALOG


class InHouseGateway:
    """A gateway of the host's own that always succeeds (no pages, no templates)."""

    name = "inhouse"

    def __init__(self) -> None:
        self.charges: dict[str, ChargeResult] = {}

    def create_customer(self, account_id: str, email: str | None) -> str:
        return f"cus_{account_id}"

    def start_card_setup(self, customer: str, return_url: str) -> CardSetup:
        return CardSetup(redirect_url=return_url, reference="setup-1")

    def finish_card_setup(self, customer: str, setup_reference: str) -> PaymentMethodInfo:
        return PaymentMethodInfo(f"pm_{customer}", "visa", "4242", 12, 2099)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        key = request.idempotency_key
        result = ChargeResult(ChargeStatus.SUCCEEDED, charge_id=f"ch_{key}")
        return self.charges.setdefault(key, result)

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        return self.charges.get(idempotency_key)

    def refund(self, *args: Any) -> Any:
        raise NotImplementedError

    def payout(self, *args: Any) -> Any:
        raise NotImplementedError

    def remove_payment_method(self, token: str) -> None:
        return None


db = SQLAlchemy()


class Member(BillingAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "own_views_members"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(200))
    is_authenticated = True
    is_active = True

    def get_id(self) -> str:
        return str(self.id)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Flask, FrozenClock]]:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="x",
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'host.sqlite'}",
        SUBSCRIPTIONS_REGISTER_BLUEPRINTS=False,
        SUBSCRIPTIONS_SCHEDULER_ENABLED=False,
        MAIL_SUPPRESS_SEND=True,
        MAIL_DEFAULT_SENDER="billing@host.example",
        SERVER_NAME="host.test",
    )
    db.init_app(app)
    login = LoginManager(app)
    login.user_loader(lambda user_id: db.session.get(Member, int(user_id)))
    clock = FrozenClock(datetime(2026, 3, 17, 12, tzinfo=UTC))
    subscriptions = Subscriptions(db=db, gateway=InHouseGateway(), clock=clock)
    subscriptions.account_loader(
        lambda account_id: db.session.get(Member, int(account_id)) if account_id.isdigit() else None
    )
    subscriptions.init_app(app)

    @app.post("/buy/<int:member_id>/<plan>")
    def buy(member_id: int, plan: str) -> str:
        """The host's own checkout: one view on our services."""
        member = db.session.get(Member, member_id)
        method = finish_registration(member, "setup-1")
        order = start_order(plan, "month", "USD", [], member)
        choose_payment_method(order, member, method.id)
        order = place_order(order.key, member, view_order(order, member).quote.fingerprint)
        return order.state

    @app.get("/reports/<int:member_id>")
    @requires_feature("reports")
    def reports(member_id: int) -> str:
        return "the reports"

    with app.app_context():
        db.create_all()
        metadata.create_all(db.engine)
        load_catalog(load_catalog_file(SAMPLE_CATALOG))
        yield app, clock
        db.session.remove()
        db.engine.dispose()


def _member(email: str) -> Member:
    member = Member(email=email)
    db.session.add(member)
    db.session.commit()
    return member


def test_own_views_buy_renew_and_mail_without_our_blueprints(
    host: tuple[Flask, FrozenClock],
) -> None:
    app, clock = host
    ada = _member("ada@host.example")
    assert "subscriptions.catalog.plans" not in {r.endpoint for r in app.url_map.iter_rules()}
    client = app.test_client()
    assert client.post(f"/buy/{ada.id}/small").text == "paid"
    clock.advance(days=31)
    run_due_jobs()
    mail = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.kind for m in mail] == ["purchase_completed", "renewal_receipt"]
    assert all(m.status == "sent" for m in mail)
    assert "Small" in mail[1].text_body


def test_the_feature_refused_page_renders_without_our_blueprints(
    host: tuple[Flask, FrozenClock],
) -> None:
    app, _ = host
    nobody = _member("nobody@host.example")
    with app.test_request_context():
        login_user(nobody)
        response = app.make_response(reports_view(app, nobody.id))
    assert response.status_code == 402
    assert "Needs the X Small plan." in response.get_data(as_text=True)


def reports_view(app: Flask, member_id: int) -> Any:
    return app.view_functions["reports"](member_id=member_id)


def test_our_stylesheet_is_served_without_our_blueprints(host: tuple[Flask, FrozenClock]) -> None:
    app, _ = host
    css = app.test_client().get("/billing/static/subscriptions.css")
    assert css.status_code == 200 and ".subs-" in css.text
    css.close()
