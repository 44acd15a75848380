"""Building licenses through the services (the pages are tested in test_checkout.py)."""

from __future__ import annotations

from sqlalchemy import select

from flask_subscriptions import get_state
from flask_subscriptions.models import Invoice, Payment, PaymentMethod, Subscription
from flask_subscriptions.services import checkout, payment_methods

from .flows import VISA
from .hosts import Team, User, db


def add_card(account: User, number: str = VISA, exp: tuple[int, int] = (12, 2030)) -> PaymentMethod:
    """Register a card as the payment service's form would (its own API, not our pages)."""
    gateway = get_state().require_gateway()
    setup = payment_methods.start_registration(account, "http://host.test/back")
    assert setup.reference is not None
    gateway.register_card(setup.reference, number.replace(" ", ""), *exp)  # type: ignore[attr-defined]
    return payment_methods.finish_registration(account, setup.reference)


def subscribe(
    account: User,
    plan: str = "small",
    *,
    interval: str = "month",
    card: str | None = VISA,
    coupon: str | None = None,
    addons: tuple[str, ...] = (),
) -> Subscription:
    """Buy a plan the way checkout does: order, card, coupon, the confirmed quote."""
    method = add_card(account, card) if card else None
    order = checkout.start_order(plan, interval, "USD", list(addons), account)
    if method is not None:
        checkout.choose_payment_method(order, account, method.id)
    if coupon:
        checkout.apply_coupon(order, account, coupon)
    view = checkout.view_order(order, account)
    placed = checkout.place_order(order.key, account, view.quote.fingerprint)
    assert placed.state == "paid", placed.failure_message
    return db.session.scalar(select(Subscription).where(Subscription.id == placed.subscription_id))


def new_user(name: str) -> User:
    user = User(name=name, email=f"{name}@example.com")
    db.session.add(user)
    db.session.commit()
    return user


def team_member() -> User:
    """Mike, the only member of team Acme and not an owner: he may never see its billing."""
    team = Team(name="Acme")
    team.members = [User(name="mike", email="mike@acme.example", role="member")]
    db.session.add(team)
    db.session.commit()
    return team.members[0]


def renewal_attempts() -> list[Payment]:
    """Every charge attempt of a renewal invoice, oldest first, as the database has them now."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Payment)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.kind == "renewal")
            .order_by(Payment.id)
        )
    )
