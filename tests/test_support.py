"""The support console (R-OPS-1, R-LIC-7, R-SEC-2..4): who may open it, find and see, and
every action through the pages with its audit entry and what the owner sees afterwards."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions.models import AuditEntry, BalanceEntry, Payment, Plan, Subscription
from flask_subscriptions.notifications import deliver_due
from flask_subscriptions.services.renewals import renew_due

from .conftest import at_noon, csrf_token, signed_in
from .factories import new_user, subscribe, team_member
from .flows import flashes, text_of
from .hosts import User, db


def _person(name: str, role: str) -> User:
    user = User(name=name, email=f"{name}@support.example", role=role)
    db.session.add(user)
    db.session.commit()
    return user


@pytest.fixture
def sam(app: Flask) -> User:
    return _person("sam", "support")


@pytest.fixture
def vera(app: Flask) -> User:
    """Support who may only look."""
    return _person("vera", "viewer")


@pytest.fixture
def sam_client(app: Flask, sam: User) -> FlaskClient:
    return signed_in(app, sam)


def _form_of(html: str, css_class: str) -> dict[str, object]:
    """The hidden fields of the first form with ``css_class`` (CSRF token, key, …)."""
    match = re.search(rf'<form[^>]*class="{css_class}"[^>]*>(.*?)</form>', html, re.S)
    assert match, f"no {css_class} form"
    fields: dict[str, object] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', match[1]):
        fields.setdefault(name, value)
    fields["csrf_token"] = csrf_token(html)
    return fields


def _audit() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _balance(account_id: str) -> int:
    db.session.expire_all()
    last = db.session.scalar(
        select(BalanceEntry.balance_after)
        .where(BalanceEntry.account_id == account_id)
        .order_by(BalanceEntry.seq.desc())
        .limit(1)
    )
    return last or 0


# --- who may open it ------------------------------------------------------------------------


def test_r_ops_1_console_refuses_everyone_but_support(
    app: Flask, catalog: None, alice: User, vera: User, sam: User
) -> None:
    subscribe(alice, "x_small")
    anonymous = app.test_client()
    assert anonymous.get("/billing/admin").status_code == 302  # to sign-in
    owner = signed_in(app, alice)
    assert owner.get("/billing/admin").status_code == 404
    assert owner.get(f"/billing/admin/accounts/{alice.billing_id}").status_code == 404
    assert owner.get("/billing/admin/metrics").status_code == 404
    mike = team_member()
    assert signed_in(app, mike).get("/billing/admin").status_code == 404
    viewer = signed_in(app, vera)
    assert viewer.get("/billing/admin").status_code == 200
    page = viewer.get(f"/billing/admin/accounts/{alice.billing_id}")
    assert page.status_code == 200
    assert "subs-admin-credit" not in page.text  # no action forms for view-only support
    token = csrf_token(viewer.get("/billing/payment-methods").text)
    refused = viewer.post(
        f"/billing/admin/accounts/{alice.billing_id}/credit",
        data={"csrf_token": token, "key": "a" * 32, "reason": "x", "amount": "5"},
    )
    assert refused.status_code == 403
    assert _audit() == []


def test_r_sec_3_an_action_needs_csrf_and_a_reason(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    no_token = sam_client.post(
        f"{url}/credit", data={"key": "a" * 32, "reason": "r", "amount": "5"}
    )
    assert no_token.status_code == 400
    page = sam_client.get(url)
    no_reason = sam_client.post(
        f"{url}/credit",
        data={"csrf_token": csrf_token(page.text), "key": "a" * 32, "reason": " ", "amount": "5"},
    )
    assert no_reason.status_code == 400
    assert "a reason is required" in text_of(no_reason.text)
    assert _balance(alice.billing_id) == 0
    assert _audit() == []


# --- find and see ---------------------------------------------------------------------------


def test_r_ops_1_find_by_every_reference(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscription = subscribe(alice, "x_small")
    bob = new_user("bob")
    subscribe(bob, "small")
    payment = db.session.scalar(
        select(Payment).where(Payment.account_id == alice.billing_id, Payment.status == "succeeded")
    )
    number = db.session.scalar(
        select(func.min(Payment.invoice_id)).where(Payment.account_id == alice.billing_id)
    )
    page = sam_client.get("/billing/admin")
    assert 'type="search"' in page.text
    for query in (
        alice.billing_id,
        "alice@example.com",
        "ALICE@example.com",
        f"INV-{number:06d}",
        payment.charge_id,
        "4242",
    ):
        found = text_of(sam_client.get("/billing/admin", query_string={"q": query}).text)
        assert "alice" in found, query
    assert "bob" not in text_of(
        sam_client.get("/billing/admin", query_string={"q": "alice@example.com"}).text
    )
    assert "No account matches" in text_of(
        sam_client.get("/billing/admin", query_string={"q": "nobody@example.com"}).text
    )
    account = text_of(sam_client.get(f"/billing/admin/accounts/{alice.billing_id}").text)
    for seen in ("X Small", "Enabled", "Invoices", "INV-", "succeeded", "Visa", "4242",
                 "pending", "No support actions yet"):  # fmt: skip
        assert seen.lower() in account.lower(), seen
    assert subscription.id


# --- actions --------------------------------------------------------------------------------


def test_r_lic_7_support_changes_to_a_plan_that_is_not_an_option(
    app: Flask, catalog: None, clock, alice: User, sam_client: FlaskClient, outbox
) -> None:
    """X Small → Large is not one of X Small's options: support does it with the owner's
    own quote; a double submit changes once; alice sees it on her own pages."""
    subscription = subscribe(alice, "x_small")
    at_noon(clock, date(2026, 4, 6))
    url = f"/billing/admin/accounts/{alice.billing_id}"
    quote = sam_client.get(
        f"{url}/change",
        query_string={"license": subscription.id, "plan": "large", "interval": "month"},
    )
    assert quote.status_code == 200, quote.text
    shown = text_of(quote.text)
    assert "Large" in shown and "upgrade" in shown and "Confirm change" in shown
    form = _form_of(quote.text, "subs-admin-confirm-change")
    form["reason"] = "Customer asked by phone for Large (ticket 4711)"
    first = sam_client.post(f"{url}/change", data=form)
    assert first.status_code == 303, first.text
    again = sam_client.post(f"{url}/change", data=form)
    assert again.status_code == 303
    db.session.expire_all()
    held = db.session.get(Subscription, subscription.id)
    assert db.session.get(Plan, held.plan_id).code == "large"
    entries = _audit()
    assert [(e.action, e.outcome, e.actor) for e in entries] == [
        ("change_plan", "done", "sam@support.example")
    ]
    assert entries[0].reason == "Customer asked by phone for Large (ticket 4711)"
    assert entries[0].details["plan"] == "large"
    page = text_of(sam_client.get(url).text)
    assert "That action was already done" in page or "Large" in page
    owner = signed_in(app, alice)
    licenses = text_of(owner.get("/billing/licenses").text)
    assert "Large" in licenses
    charges = db.session.scalar(
        select(func.count(Payment.id)).where(
            Payment.account_id == alice.billing_id, Payment.purpose == "charge"
        )
    )
    assert charges == 2  # the purchase and one change, not two
    assert "plan_change_applied" in outbox.kinds()


def test_r_ops_1_grant_and_remove_credit_reviewed_audited_once(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    review = sam_client.get(f"{url}/review/grant_credit", query_string={"amount": "25.00"})
    assert review.status_code == 200
    shown = text_of(review.text)
    assert "$25.00" in shown and "Balance after" in shown
    form = _form_of(review.text, "subs-admin-confirm")
    form["reason"] = "Apology for the outage"
    assert sam_client.post(f"{url}/credit", data=form).status_code == 303
    assert sam_client.post(f"{url}/credit", data=form).status_code == 303
    assert _balance(alice.billing_id) == 2500
    owner_page = text_of(signed_in(app, alice).get("/billing/balance").text)
    assert "$25.00" in owner_page and "Credit granted by support" in owner_page
    review = sam_client.get(f"{url}/review/remove_credit", query_string={"amount": "10"})
    form = _form_of(review.text, "subs-admin-confirm")
    form["reason"] = "Granted twice by mistake"
    assert sam_client.post(f"{url}/credit", data=form).status_code == 303
    assert _balance(alice.billing_id) == 1500
    too_much = sam_client.get(f"{url}/review/remove_credit", query_string={"amount": "99"})
    assert too_much.status_code == 400
    assert [(e.action, e.outcome, e.details["amount"]) for e in _audit()] == [
        ("grant_credit", "done", 2500),
        ("remove_credit", "done", 1000),
    ]
    assert "Apology for the outage" in text_of(sam_client.get(url).text)


@pytest.mark.parametrize("amount", ["-5", "0", "abc", "1e3", "9.999", "99999999999999"])
def test_r_sec_4_bad_amounts_change_nothing(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient, amount: str
) -> None:
    subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    page = sam_client.get(url)
    form = {"csrf_token": csrf_token(page.text), "key": "b" * 32, "reason": "r", "amount": amount}
    response = sam_client.post(f"{url}/credit", data=form)
    assert response.status_code == 400
    assert _balance(alice.billing_id) == 0
    assert _audit() == []


@pytest.mark.parametrize("to", ["balance", "card"])
def test_r_ops_1_refund_part_then_the_rest_never_more(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient, gateway, to: str
) -> None:
    subscribe(alice, "x_small")
    charge = db.session.scalar(select(Payment).where(Payment.account_id == alice.billing_id))
    url = f"/billing/admin/accounts/{alice.billing_id}"

    def refund(amount: str) -> object:
        review = sam_client.get(
            f"{url}/review/refund", query_string={"payment": charge.id, "amount": amount, "to": to}
        )
        if review.status_code != 200:
            return review
        form = _form_of(review.text, "subs-admin-confirm")
        form["reason"] = "Charged in error"
        first = sam_client.post(f"{url}/refund", data=form)
        assert sam_client.post(f"{url}/refund", data=form).status_code == 303  # acts once
        return first

    assert refund("20.00").status_code == 303
    assert refund("40.00").status_code == 400  # only $30.00 is left
    assert refund("30.00").status_code == 303
    db.session.expire_all()
    refunds = list(db.session.scalars(select(Payment).where(Payment.refund_of_id == charge.id)))
    assert sorted(r.amount for r in refunds) == [2000, 3000]
    assert all(r.status == "succeeded" for r in refunds)
    assert _balance(alice.billing_id) == (5000 if to == "balance" else 0)
    assert [e.outcome for e in _audit()] == ["done", "done"]
    account = text_of(sam_client.get(url).text)
    assert "refund of payment" in account


def test_r_ops_1_extend_and_end(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscription = subscribe(alice, "x_small")
    end = subscription.current_term_end
    url = f"/billing/admin/accounts/{alice.billing_id}"
    page = sam_client.get(url)
    form = _form_of(page.text, "subs-admin-extend") | {"days": "10", "reason": "Outage week"}
    assert sam_client.post(f"{url}/extend", data=form).status_code == 303
    assert sam_client.post(f"{url}/extend", data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).current_term_end == date(
        end.year, end.month, end.day + 10
    )
    page = sam_client.get(url)
    form = _form_of(page.text, "subs-admin-end") | {"reason": "Fraud"}
    assert sam_client.post(f"{url}/end", data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).state == "ended"
    owner = text_of(signed_in(app, alice).get("/billing/licenses").text)
    assert "Expired" in owner
    assert [e.action for e in _audit()] == ["extend", "end"]


def test_r_ops_1_end_with_a_prorated_credit_is_the_change_to_free(
    app: Flask, catalog: None, clock, alice: User, sam_client: FlaskClient
) -> None:
    subscription = subscribe(alice, "x_small")
    at_noon(clock, date(2026, 4, 1))
    url = f"/billing/admin/accounts/{alice.billing_id}"
    quote = sam_client.get(f"{url}/change", query_string={"license": subscription.id, "end": "1"})
    assert quote.status_code == 200, quote.text
    assert "End the license" in text_of(quote.text)
    form = _form_of(quote.text, "subs-admin-confirm-change") | {"reason": "Closing the account"}
    assert sam_client.post(f"{url}/end", data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).state == "ended"
    assert _balance(alice.billing_id) > 0
    assert "Credit from plan change" in text_of(signed_in(app, alice).get("/billing/balance").text)


def test_r_ops_1_resend_an_email(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient, outbox
) -> None:
    subscribe(alice, "x_small")
    deliver_due()
    sent = outbox.all()[0]
    url = f"/billing/admin/accounts/{alice.billing_id}"
    page = sam_client.get(url)
    form = _form_of(page.text, "subs-admin-send") | {"reason": "Customer lost it"}
    assert sam_client.post(f"{url}/emails/{sent.id}/send", data=form).status_code == 303
    assert sam_client.post(f"{url}/emails/{sent.id}/send", data=form).status_code == 303
    assert len(outbox.all()) == 2
    assert outbox.all()[1].status == "pending" and outbox.all()[1].subject == sent.subject


def test_r_ops_1_another_accounts_ids_are_refused(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscribe(alice, "x_small")
    bob = new_user("bob")
    bob_sub = subscribe(bob, "small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    page = sam_client.get(url)
    form = _form_of(page.text, "subs-admin-extend") | {
        "days": "10",
        "reason": "x",
        "license": str(bob_sub.id),
    }
    assert sam_client.post(f"{url}/extend", data=form).status_code == 404
    assert sam_client.get("/billing/admin/accounts/nobody").status_code == 404
    assert flashes(page.text) == []


def test_r_lic_7_support_schedules_any_plan_for_the_next_renewal(
    app: Flask, catalog: None, clock: Any, alice: User, sam_client: FlaskClient
) -> None:
    """X Small → Large at the next renewal: the owner's license page says it is scheduled,
    and the renewal on April 17 renews with Large."""
    subscription = subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    form = _form_of(sam_client.get(url).text, "subs-admin-schedule") | {
        "plan": "large",
        "reason": "Agreed on the phone",
    }
    assert sam_client.post(f"{url}/schedule", data=form).status_code == 303
    assert sam_client.post(f"{url}/schedule", data=form).status_code == 303
    owner = text_of(signed_in(app, alice).get("/billing/licenses").text)
    assert "Your plan is scheduled to change." in owner
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    db.session.expire_all()
    held = db.session.get_one(Subscription, subscription.id)
    assert db.session.get_one(Plan, held.plan_id).code == "large"
    assert [(e.action, e.outcome) for e in _audit()] == [("schedule_plan", "done")]


def test_r_ops_1_an_extended_term_renews_from_its_new_end(
    app: Flask, catalog: None, clock: Any, alice: User, sam_client: FlaskClient
) -> None:
    """Term March 17 – April 17, extended by 10 days: renewal on April 27, for a month."""
    subscription = subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    form = _form_of(sam_client.get(url).text, "subs-admin-extend") | {"days": "10", "reason": "x"}
    assert sam_client.post(f"{url}/extend", data=form).status_code == 303
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 0
    at_noon(clock, date(2026, 4, 27))
    assert renew_due().renewed == 1
    db.session.expire_all()
    held = db.session.get_one(Subscription, subscription.id)
    assert (held.current_term_start, held.current_term_end) == (
        date(2026, 4, 27),
        date(2026, 5, 27),
    )


def test_r_ops_1_end_twice_ends_once_and_owners_cannot_post(
    app: Flask, catalog: None, alice: User, sam_client: FlaskClient
) -> None:
    subscription = subscribe(alice, "x_small")
    url = f"/billing/admin/accounts/{alice.billing_id}"
    form = _form_of(sam_client.get(url).text, "subs-admin-end") | {"reason": "Fraud"}
    owner = signed_in(app, alice)
    stolen = form | {"csrf_token": csrf_token(owner.get("/billing/payment-methods").text)}
    assert owner.post(f"{url}/end", data=stolen).status_code == 404
    assert db.session.get_one(Subscription, subscription.id).state == "active"
    assert sam_client.post(f"{url}/end", data=form).status_code == 303
    again = sam_client.post(f"{url}/end", data=form, follow_redirects=True)
    assert "That action was already done" in text_of(again.text)
    assert [(e.action, e.outcome) for e in _audit()] == [("end", "done")]
