"""Checkout: buying a plan in five steps (R-BUY), with coupons (R-CPN) and the purchase
e-mail (R-BUY-7, R-NOTE-2), driven through the pages as a person would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions import signals
from flask_subscriptions.models import (
    BalanceEntry,
    Coupon,
    Invoice,
    InvoiceLine,
    Order,
    Payment,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from flask_subscriptions.services.balance import append_entry

from .conftest import Outbox, csrf_token, sign_in
from .flows import (
    DECLINES_EVERY_CHARGE,
    INSUFFICIENT_FUNDS,
    VISA,
    apply_coupon,
    choose_card,
    confirm_page,
    place,
    place_form,
    post_form,
    register_card,
    start_order,
)
from .hosts import Team, User, db


def _card(number: str = VISA) -> PaymentMethod:
    last4 = number.replace(" ", "")[-4:]
    return db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == last4))


def _ready(
    client: FlaskClient, user: User, plan: str = "small", number: str = VISA, **kw: object
) -> str:
    """Signed in, a card registered, an order at step 4; returns the order key."""
    sign_in(client, user)
    register_card(client, number)
    key = start_order(client, plan, **kw)  # type: ignore[arg-type]
    assert choose_card(client, key, _card(number).id).status_code == 302
    return key


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_plans_page_lists_plans_with_formatted_prices_and_buy_now_R_BUY_1_R_MON_4(
    client: FlaskClient, catalog: None
) -> None:
    """R-BUY-1: every purchasable plan, its details and a Buy now button; R-MON-4: $100.00."""
    page = client.get("/billing/plans")
    assert page.status_code == 200
    for name, price in [
        ("X Small", "$50.00"),
        ("Small", "$100.00"),
        ("Medium", "$200.00"),
        ("Large", "$400.00"),
    ]:
        assert name in page.text and price in page.text
    assert "$1,080.00" in page.text  # Small annual: 12 × 100 at 90 %
    assert "MAU: 1,000" in page.text
    assert page.text.count("Buy now") == 4  # not on Free (R-CAT-3)


def test_step_1_confirms_plan_interval_price_and_auto_renewal_R_BUY_2(
    client: FlaskClient, catalog: None
) -> None:
    """R-BUY-2: the order, its price and the automatic renewal, then To Payment Methods."""
    page = client.get("/billing/checkout/small?interval=year&currency=USD")
    assert page.status_code == 200
    assert "Small" in page.text and "$1,080.00" in page.text and "$100.00" in page.text
    assert "renews automatically" in page.text
    assert "To Payment Methods" in page.text
    assert "1. Confirm your order" in page.text and 'aria-current="step"' in page.text


def test_anonymous_visitor_signs_in_and_comes_back_to_the_same_order_R_BUY_3(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-3: step 2 is the host's sign-in, then back to the same order."""
    key = start_order(client, "medium")
    step3 = f"/billing/orders/{key}/payment"
    response = client.get(step3)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert f"/billing/orders/{key}/payment" in response.headers["Location"].replace("%2F", "/")
    sign_in(client, alice)
    page = client.get(step3)
    assert page.status_code == 200 and "Select a payment method" in page.text
    register_card(client)
    assert choose_card(client, key, _card().id).status_code == 302
    assert db.session.scalar(select(Order.account_id).where(Order.key == key)) == alice.billing_id


def test_an_anonymous_order_cannot_be_taken_by_another_browser_R_SEC_2(
    app: Flask, alice: User, catalog: None
) -> None:
    """R-SEC-2: knowing another browser's order key is not enough."""
    stranger, owner = app.test_client(), app.test_client()
    key = start_order(stranger, "small")
    sign_in(owner, alice)
    assert owner.get(f"/billing/orders/{key}/payment").status_code == 404


def test_step_4_shows_items_discount_balance_total_card_and_notice_R_BUY_5(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-5: items, discount, balance applied, total, card, no-refund notice."""
    key = _ready(client, alice)
    append_entry(alice.billing_id, "credit", 2500, "USD", "Goodwill credit")
    db.session.commit()
    assert apply_coupon(client, key, "welcome10").status_code == 302
    page = confirm_page(client, key)
    assert "Small, Mar 17, 2026 to Apr 16, 2026" in page.text
    assert "-$10.00" in page.text  # WELCOME10 (R-CPN-1)
    assert "-$25.00" in page.text  # balance first (R-PRO-3)
    assert "<strong>$65.00</strong>" in page.text
    assert "Visa •••• 4242" in page.text
    assert "No cancellation or refund after purchase." in page.text
    assert "Place Order" in page.text and "Apply" not in page.text.split("Remove coupon")[1][:5]


def test_purchase_completes_with_one_charge_invoice_license_and_email_R_BUY_7(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox, gateway: object
) -> None:
    """R-BUY-7: the completion page, and the e-mail with the payment details."""
    key = _ready(client, alice)
    response = place(client, key)
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Thank you for your order" in page.text
    assert "INV-000001" in page.text and "$100.00" in page.text
    assert "April 17, 2026" in page.text
    subscription = db.session.scalar(select(Subscription))
    assert (subscription.current_term_start, subscription.current_term_end) == (
        date(2026, 3, 17),
        date(2026, 4, 17),
    )
    assert subscription.live_account_id == alice.billing_id
    invoice = db.session.scalar(select(Invoice))
    assert (invoice.status, invoice.amount_due, invoice.total) == ("paid", 10000, 10000)
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]
    [mail] = outbox.of_kind("purchase_completed")
    assert mail.recipients == ["alice@example.com"]
    assert "INV-000001" in mail.subject
    for detail in (
        "Amount paid:  $100.00",
        "Visa ending in 4242",
        "Next renewal: April 17, 2026",
        "Date:         March 17, 2026",
    ):
        assert detail in mail.text_body


def test_team_purchase_email_goes_to_every_owner_once_R_NOTE_2(
    team_app: Flask, acme: Team, catalog: None
) -> None:
    """R-NOTE-2: the billing address and every owner, each once; never a plain member."""
    from flask_subscriptions.services.profiles import set_billing_email

    client = team_app.test_client()
    olivia = next(m for m in acme.members if m.name == "olivia")
    set_billing_email(acme.billing_id, "OSCAR@acme.example")
    key = _ready(client, olivia, "x_small")
    place(client, key)
    [mail] = Outbox().of_kind("purchase_completed")
    assert mail.recipients == ["OSCAR@acme.example", "olivia@acme.example"]


def test_member_cannot_buy_for_the_team_R_SEC_2(team_app: Flask, acme: Team, catalog: None) -> None:
    """R-SEC-2: only owners manage billing."""
    client = team_app.test_client()
    mike = next(m for m in acme.members if m.name == "mike")
    sign_in(client, mike)
    url = "/billing/checkout/small?interval=month&currency=USD"
    refused = post_form(client, url, url, {"interval": "month", "currency": "USD"})
    assert refused.status_code == 403  # before any order is written (issue #17 item 17)
    assert db.session.scalar(select(Order.id)) is None


def test_coupon_apply_and_remove_R_CPN_1(client: FlaskClient, alice: User, catalog: None) -> None:
    """R-CPN-1: a percent coupon off the first payment; the trash icon removes it."""
    key = _ready(client, alice)
    assert apply_coupon(client, key, "WELCOME10").status_code == 302
    assert "<strong>$90.00</strong>" in confirm_page(client, key).text
    page = confirm_page(client, key)
    removed = client.post(
        f"/billing/orders/{key}/coupon/remove", data={"csrf_token": csrf_token(page.text)}
    )
    assert removed.status_code == 302
    assert "<strong>$100.00</strong>" in confirm_page(client, key).text


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        (None, "NOPE", "That coupon code does not exist."),
        ({"valid_until": date(2026, 3, 1)}, "OLD", "The coupon OLD has expired."),
        ({"valid_from": date(2026, 4, 1)}, "SOON", "The coupon SOON is not valid yet."),
        ({"max_redemptions": 1, "times_redeemed": 1}, "GONE", "The coupon GONE has been used up."),
        ({"plan_codes": ["large"]}, "BIG", "The coupon BIG does not apply to the Small plan."),
        (
            {"kind": "fixed", "value": 500, "currency": "EUR"},
            "EURO",
            "The coupon EURO is for payments in EUR.",
        ),
    ],
)
def test_bad_coupon_gets_a_clear_message_and_changes_nothing_R_CPN_2(
    client: FlaskClient, alice: User, catalog: None, setup: dict | None, code: str, message: str
) -> None:
    """R-CPN-2: invalid, expired, not yet valid, used up, inapplicable: each says so."""
    if setup is not None:
        db.session.add(Coupon(code=code, **{"kind": "percent", "value": 20, **setup}))
        db.session.commit()
    key = _ready(client, alice)
    before = confirm_page(client, key).text
    response = apply_coupon(client, key, code)
    assert response.status_code == 400
    assert message in response.text
    assert db.session.scalar(select(Order.coupon_id).where(Order.key == key)) is None
    assert "<strong>$100.00</strong>" in before and "<strong>$100.00</strong>" in response.text


def test_coupon_used_once_per_account_R_CPN_1(
    client: FlaskClient, alice: User, catalog: None, clock: object
) -> None:
    """R-CPN-1: once per account, even after the first license ended."""
    key = _ready(client, alice)
    apply_coupon(client, key, "WELCOME10")
    place(client, key)
    db.session.execute(Subscription.__table__.update().values(live_account_id=None, state="ended"))
    db.session.commit()
    key2 = start_order(client, "medium")
    choose_card(client, key2, _card().id)
    response = apply_coupon(client, key2, "WELCOME10")
    assert "You have already used the coupon WELCOME10." in response.text


def test_fixed_coupon_for_three_terms_is_recorded_on_the_license_R_CPN_1_R_CPN_3(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-CPN-1: duration is kept for renewals; R-CPN-3: the list price stays on the item."""
    db.session.add(
        Coupon(
            code="THREE",
            kind="fixed",
            value=1500,
            currency="USD",
            duration="repeating",
            duration_terms=3,
        )
    )
    db.session.commit()
    key = _ready(client, alice)
    apply_coupon(client, key, "THREE")
    place(client, key)
    subscription = db.session.scalar(select(Subscription))
    assert subscription.coupon_terms_used == 1 and subscription.coupon_id is not None
    item = db.session.scalar(select(SubscriptionItem))
    assert (item.paid_amount, item.list_amount) == (8500, 10000)


def test_double_submit_and_resubmission_charge_once_R_BUY_6(
    client: FlaskClient, alice: User, catalog: None, gateway: object
) -> None:
    """R-BUY-6: a double click, a retry or a back-button resubmission charges once."""
    key = _ready(client, alice)
    form = place_form(client, key)
    first = client.post(f"/billing/orders/{key}/place", data=form)
    second = client.post(f"/billing/orders/{key}/place", data=form)
    third = client.post(f"/billing/orders/{key}/place", data=form)
    assert first.headers["Location"] == second.headers["Location"] == third.headers["Location"]
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]
    assert (_count(Subscription), _count(Invoice), _count(Payment)) == (1, 1, 1)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (DECLINES_EVERY_CHARGE, "declined"),
        (INSUFFICIENT_FUNDS, "insufficient funds"),
    ],
)
def test_declined_card_buys_nothing_and_says_why_R_BUY_6(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox, number: str, message: str
) -> None:
    """A decline leaves no license, gives back the coupon and balance, and says why."""
    append_entry(alice.billing_id, "credit", 1000, "USD", "Goodwill credit")
    db.session.commit()
    key = _ready(client, alice, number=number)
    apply_coupon(client, key, "WELCOME10")
    response = place(client, key)
    assert response.status_code == 302 and response.headers["Location"].endswith("/payment")
    page = client.get(response.headers["Location"])
    assert message in page.text.lower()
    assert _count(Subscription) == 0
    assert db.session.scalar(select(Invoice.status)) == "void"
    assert db.session.scalar(select(Coupon.times_redeemed).where(Coupon.code == "WELCOME10")) == 0
    balance = db.session.scalar(
        select(BalanceEntry.balance_after).order_by(BalanceEntry.seq.desc())
    )
    assert balance == 1000
    assert outbox.of_kind("purchase_completed") == []
    # another card then works, on the same order
    register_card(client, VISA)
    choose_card(client, key, _card(VISA).id)
    assert "Coupon <strong>WELCOME10</strong> applied" in confirm_page(client, key).text
    done = client.get(place(client, key).headers["Location"])
    assert "Thank you for your order" in done.text and "$80.00" in done.text


def test_quote_changed_between_steps_must_be_confirmed_again_R_BUY_9(
    app: Flask, client: FlaskClient, alice: User, catalog: None, tmp_path: object, gateway: object
) -> None:
    """R-BUY-9: the server prices every step; a catalog change shows the new amount first."""
    from pathlib import Path

    from .conftest import SAMPLE_CATALOG

    key = _ready(client, alice)
    form = place_form(client, key)
    changed = Path(str(tmp_path)) / "catalog.toml"
    changed.write_text(SAMPLE_CATALOG.read_text().replace('month = "100.00"', 'month = "110.00"'))
    app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(changed)])
    refused = client.post(f"/billing/orders/{key}/place", data=form)
    assert refused.status_code == 409
    assert "changed since you saw them" in refused.text and "$110.00" in refused.text
    assert gateway.charge_count() == 0  # type: ignore[attr-defined]
    assert _count(Invoice) == 0
    done = client.get(place(client, key).headers["Location"])
    assert "$110.00" in done.text


def test_posted_amounts_are_ignored_R_BUY_9_R_SEC_4(
    client: FlaskClient, alice: User, catalog: None, gateway: object
) -> None:
    """R-SEC-4: nothing the browser posts sets an amount; a forged fingerprint changes nothing."""
    key = _ready(client, alice)
    page = confirm_page(client, key)
    response = client.post(
        f"/billing/orders/{key}/place",
        data={
            "csrf_token": csrf_token(page.text),
            "fingerprint": "0" * 64,
            "amount": "1",
            "total": "1",
        },
    )
    assert response.status_code == 409
    assert gateway.charge_count() == 0  # type: ignore[attr-defined]
    done = client.get(place(client, key).headers["Location"])
    assert "$100.00" in done.text


def test_account_with_a_license_is_sent_to_license_management_R_BUY_8(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-BUY-8: no second valid license; the plan held is not bought again."""
    place(client, _ready(client, alice))
    for plan in ("small", "medium"):
        page = client.get(f"/billing/checkout/{plan}?interval=month&currency=USD")
        assert "You already hold a valid license" in page.text
        assert "/billing/licenses" in page.text and "To Payment Methods" not in page.text
    url = "/billing/checkout/medium?interval=month&currency=USD"
    refused = post_form(client, url, url, {"interval": "month", "currency": "USD"})
    assert refused.status_code == 200 and "You already hold a valid license" in refused.text
    assert _count(Order) == 1 and _count(Subscription) == 1


def test_second_order_placed_after_a_purchase_is_refused_R_BUY_8(
    client: FlaskClient, alice: User, catalog: None, gateway: object
) -> None:
    """R-BUY-8: two open orders; once one is bought the other cannot buy a second license."""
    first = _ready(client, alice)
    second = start_order(client, "medium")
    choose_card(client, second, _card().id)
    place(client, first)
    response = place(client, second)
    assert response.status_code == 400
    assert "You already hold a valid license" in response.text
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]


def test_currency_is_fixed_at_the_first_purchase_R_MON_3(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-MON-3: the plans page then shows the account's currency only."""
    place(client, _ready(client, alice))
    page = client.get("/billing/plans?currency=JPY")
    assert "$100.00" in page.text


def test_signals_are_sent_after_the_commit(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    """subscription_purchased and payment_succeeded fire once, after the purchase is stored."""
    seen: list[tuple[str, dict]] = []

    def receiver(name: str) -> Callable[..., None]:
        def receive(sender: Flask, **kw: object) -> None:
            stored = db.session.scalar(select(func.count()).select_from(Subscription))
            seen.append((name, {**kw, "stored": stored}))

        return receive

    purchased, succeeded = receiver("purchased"), receiver("succeeded")
    signals.subscription_purchased.connect(purchased, app)
    signals.payment_succeeded.connect(succeeded, app)
    try:
        place(client, _ready(client, alice))
    finally:
        signals.subscription_purchased.disconnect(purchased, app)
        signals.payment_succeeded.disconnect(succeeded, app)
    assert [name for name, _ in seen] == ["succeeded", "purchased"]
    assert all(kw["stored"] == 1 and kw["account_id"] == alice.billing_id for _, kw in seen)
    assert seen[0][1]["amount"] == 10000


def test_payment_failed_signal_on_decline(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    failures: list[dict] = []

    def receive(sender: Flask, **kw: object) -> None:
        failures.append(kw)

    signals.payment_failed.connect(receive, app)
    try:
        place(client, _ready(client, alice, number=DECLINES_EVERY_CHARGE))
    finally:
        signals.payment_failed.disconnect(receive, app)
    assert len(failures) == 1 and failures[0]["decline_kind"] == "hard"


def test_annual_purchase_with_add_on_prices_each_line_R_CAT_4(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-CAT-4: annual lines at 90 % of 12 months; add-ons bought with the plan."""
    key = _ready(client, alice, interval="year", addons=["operation"])
    page = confirm_page(client, key)
    assert "$1,080.00" in page.text and "$324.00" in page.text  # 12 × 30 × 90 %
    assert "<strong>$1,404.00</strong>" in page.text
    place(client, key)
    subscription = db.session.scalar(select(Subscription))
    assert subscription.current_term_end == date(2027, 3, 17)
    lines = db.session.scalars(select(InvoiceLine.amount).order_by(InvoiceLine.id)).all()
    assert lines == [108000, 32400]


def test_balance_covering_everything_needs_no_card_charge_R_PRO_3(
    client: FlaskClient, alice: User, catalog: None, gateway: object
) -> None:
    """R-PRO-3: the balance is spent before any card; nothing left to charge, no charge."""
    append_entry(alice.billing_id, "credit", 15000, "USD", "Goodwill credit")
    db.session.commit()
    key = _ready(client, alice)
    done = client.get(place(client, key).headers["Location"])
    assert "Thank you for your order" in done.text
    assert gateway.charge_count() == 0  # type: ignore[attr-defined]
    entries = db.session.scalars(select(BalanceEntry).order_by(BalanceEntry.seq)).all()
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("credit", 15000, 15000),
        ("use", -10000, 5000),
    ]


def test_order_a_day_later_is_priced_for_the_new_day(
    client: FlaskClient, alice: User, catalog: None, clock: object
) -> None:
    """R-BUY-9: a confirmation left open overnight is re-quoted (the term starts today)."""
    key = _ready(client, alice)
    form = place_form(client, key)
    clock.advance(days=1)  # type: ignore[attr-defined]
    assert client.post(f"/billing/orders/{key}/place", data=form).status_code == 409
    place(client, key)
    start = db.session.scalar(select(Subscription.current_term_start))
    assert start == date(2026, 3, 17) + timedelta(days=1)
