from __future__ import annotations

from sqlalchemy import select

from flask_subscriptions.models import PaymentMethod

from .conftest import sign_in
from .flows import choose_card, place, register_card, start_order
from .hosts import db


def test_buy_small(app, client, alice, catalog, outbox, gateway):
    sign_in(client, alice)
    r = register_card(client)
    assert "Visa •••• 4242" in r.text, r.text
    method = db.session.scalar(select(PaymentMethod))
    key = start_order(client)
    r = choose_card(client, key, method.id)
    assert r.status_code == 302, r.text
    r = place(client, key)
    assert r.status_code == 302, r.text
    r = client.get(r.headers["Location"])
    assert "Thank you for your order" in r.text, r.text
    assert "$100.00" in r.text
    assert outbox.kinds() == ["purchase_completed"]
    print(outbox.all()[0].text_body)
