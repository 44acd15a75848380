"""Checkout under real concurrent requests (R-BUY-6, R-CPN-2).

Each request runs in its own thread with its own client, app context and database
connection, released together by a barrier; on PostgreSQL (as CI runs it) the rows are
really contended. The same tests run on SQLite, where writers queue instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from flask_subscriptions.models import Coupon, Invoice, Order, Payment, PaymentMethod, Subscription

from .conftest import sign_in
from .flows import apply_coupon, choose_card, place_form, register_card, start_order
from .hosts import User, db

pytestmark = pytest.mark.slow


def _race(calls: list[Callable[[], TestResponse]]) -> list[TestResponse]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], TestResponse]) -> TestResponse:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _prepared_place(client: FlaskClient, key: str) -> Callable[[], TestResponse]:
    """What the browser will post when the person clicks Place Order on step 4."""
    form = place_form(client, key)
    return lambda: client.post(f"/billing/orders/{key}/place", data=form)


def _buyer(app: Flask, name: str) -> tuple[FlaskClient, str]:
    user = User(name=name, email=f"{name}@example.com")
    db.session.add(user)
    db.session.commit()
    client = app.test_client()
    sign_in(client, user)
    register_card(client)
    key = start_order(client, "small")
    method = db.session.scalar(
        select(PaymentMethod.id).where(PaymentMethod.account_id == user.billing_id)
    )
    assert choose_card(client, key, method).status_code == 302
    return client, key


def test_two_simultaneous_place_order_posts_charge_once_R_BUY_6(
    app: Flask, catalog: None, gateway: object
) -> None:
    """R-BUY-6: a double click sends two requests at once: one charge, one license, one
    invoice, and both land on the same completion page."""
    client, key = _buyer(app, "alice")
    submit = _prepared_place(client, key)
    responses = _race([submit, submit])
    assert [r.status_code for r in responses] == [302, 302]
    assert {r.headers["Location"] for r in responses} == {f"/billing/orders/{key}/complete"}
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]
    counts = [
        db.session.scalar(select(func.count()).select_from(m))
        for m in (Subscription, Invoice, Payment)
    ]
    assert counts == [1, 1, 1]
    page = client.get(f"/billing/orders/{key}/complete")
    assert "Thank you for your order" in page.text


def test_twenty_orders_race_for_the_last_coupon_use_R_CPN_2(
    app: Flask, catalog: None, gateway: object
) -> None:
    """R-CPN-2: the redemption limit holds under concurrent orders; the others are told the
    coupon is used up, and nothing is charged for them."""
    db.session.add(
        Coupon(code="LAST", kind="percent", value=50, max_redemptions=5, times_redeemed=4)
    )
    db.session.commit()
    buyers = [_buyer(app, f"buyer{i}") for i in range(20)]
    for client, key in buyers:
        assert apply_coupon(client, key, "LAST").status_code == 302
    responses = _race([_prepared_place(client, key) for client, key in buyers])
    won = [r for r in responses if r.status_code == 302]
    lost = [r for r in responses if r.status_code != 302]
    assert len(won) == 1
    assert all(r.status_code == 400 and "The coupon LAST has been used up." in r.text for r in lost)
    db.session.expire_all()
    assert db.session.scalar(select(Coupon.times_redeemed).where(Coupon.code == "LAST")) == 5
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]
    [charge] = gateway.charges()  # type: ignore[attr-defined]
    assert charge.amount == 5000  # half of $100.00
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 1
    open_orders = db.session.scalar(
        select(func.count()).select_from(Order).where(Order.state == "open")
    )
    assert open_orders == 19  # they can still buy without the coupon
