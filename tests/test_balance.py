"""The balance (R-BAL-1, R-BAL-3) and withdrawals (R-BAL-2)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_subscriptions.errors import BillingError
from flask_subscriptions.models import BalanceEntry, PaymentMethod, Withdrawal
from flask_subscriptions.services.balance import append_entry, current_balance
from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.withdrawals import WithdrawalFailed, withdraw, withdrawal_quote

from .conftest import Outbox, csrf_token, sign_in, signed_in
from .factories import add_card, subscribe, team_member
from .hosts import User, db


def _at(clock: Any, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _credit(user: User, amount: int) -> None:
    append_entry(user.billing_id, "credit", amount, "USD", "Credit from a plan change")
    db.session.commit()


def test_withdraw_the_whole_balance_keeps_the_fee_R_BAL_2(
    app: Flask, client: Any, alice: User, catalog: None, gateway: Any, outbox: Outbox
) -> None:
    """R-BAL-2: the page shows the fee and the net first; the net is paid out once."""
    add_card(alice)
    _credit(alice, 4000)
    sign_in(client, alice)
    review = client.get("/billing/balance/withdraw")
    assert (
        "$40.00" in review.text
        and "-$4.00" in review.text
        and "<strong>$36.00</strong>" in review.text
    )
    done = client.post(
        "/billing/balance/withdraw",
        data={"csrf_token": csrf_token(review.text), "seq": withdrawal_quote(alice.billing_id).seq},
        follow_redirects=True,
    )
    assert "Your withdrawal was paid out." in done.text
    assert current_balance(alice.billing_id).amount == 0
    entries = db.session.execute(
        select(BalanceEntry.kind, BalanceEntry.amount, BalanceEntry.balance_after).order_by(
            BalanceEntry.seq
        )
    ).all()
    assert [tuple(e) for e in entries] == [
        ("credit", 4000, 4000),
        ("withdrawal", -3600, 400),
        ("fee", -400, 0),
    ]
    row = db.session.scalar(select(Withdrawal))
    assert (row.status, row.amount, row.fee, row.net) == ("paid", 4000, 400, 3600)
    again = client.post(
        "/billing/balance/withdraw",
        data={"csrf_token": csrf_token(review.text), "seq": 1},
        follow_redirects=True,
    )
    assert "There is no balance to withdraw." in again.text
    [mail] = outbox.of_kind("withdrawal_paid")
    assert "Paid out:          $36.00" in mail.text_body
    page = client.get("/billing/balance")
    assert "Withdrawal 1: fee" in page.text and "Credit from a plan change" in page.text


def test_a_payout_the_gateway_rejects_leaves_the_balance_as_it_was_R_BAL_2(
    app: Flask, alice: User, catalog: None
) -> None:
    """No card at the payment service: the payout fails and every cent comes back."""
    _credit(alice, 2500)
    with pytest.raises(WithdrawalFailed, match="Your balance is unchanged"):
        withdraw(alice, withdrawal_quote(alice.billing_id).seq)
    assert current_balance(alice.billing_id).amount == 2500
    assert db.session.scalar(select(Withdrawal.status)) == "failed"


def test_balance_is_never_negative_when_a_change_and_a_withdrawal_race_R_BAL_1(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-BAL-1: two actions spend the same balance at once: one wins, one is refused."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice)
    _credit(alice, 5000)
    _at(clock, date(2026, 4, 6))
    request = ChangeRequest("small", "month", ("operation",))  # 30 × 11/31 = $10.65
    shown = quote_for(alice, subscription.id, request)
    seq = withdrawal_quote(alice.billing_id).seq
    method = db.session.scalar(select(PaymentMethod.id))
    alice_id, subscription_id, fingerprint = alice.id, subscription.id, shown.quote.fingerprint
    db.session.commit()  # the test holds no lock while the two requests run
    barrier = threading.Barrier(2, timeout=60)
    results: dict[str, Any] = {}

    def run(name: str, action: Any) -> None:
        with app.app_context():  # each request has its own session and connection
            try:
                owner = db.session.get(User, alice_id)
                db.session.commit()
                barrier.wait()
                results[name] = action(owner)
            except BillingError as exc:
                results[name] = exc
            except Exception as exc:
                results[name] = repr(exc)
                barrier.abort()

    threads = [
        threading.Thread(
            target=run,
            args=(
                "change",
                lambda owner: apply_change(owner, subscription_id, request, fingerprint, method),
            ),
        ),
        threading.Thread(target=run, args=("withdraw", lambda owner: withdraw(owner, seq))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [name for name, value in results.items() if isinstance(value, BillingError)]
    assert len(failed) == 1, results
    balances = db.session.scalars(select(BalanceEntry.balance_after)).all()
    assert min(balances) >= 0
    final = current_balance(alice.billing_id).amount
    assert final == (5000 - 1065 if failed == ["withdraw"] else 0)


def test_the_owner_sees_the_balance_and_its_history_R_BAL_3(
    app: Flask, client: Any, alice: User, catalog: None, clock: Any
) -> None:
    """R-BAL-3: the Balance page shows the balance, then each entry, newest first, with its
    date, reason, amount and the balance after it."""
    _at(clock, date(2026, 3, 17))
    subscription = subscribe(alice, addons=("operation",))
    method = db.session.scalar(select(PaymentMethod.id))
    for day, addons in ((6, ()), (10, ("marketing",))):  # remove Operation, add Marketing
        _at(clock, date(2026, 4, day))
        request = ChangeRequest("small", "month", addons)
        shown = quote_for(alice, subscription.id, request)
        apply_change(alice, subscription.id, request, shown.quote.fingerprint, method)
    sign_in(client, alice)
    page = client.get("/billing/balance")
    assert '<strong class="subs-balance-amount">$0.65</strong>' in page.text
    rows = [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r'<tr class="subs-entry[^"]*">(.*?)</tr>', page.text, re.S)
    ]
    assert rows == [
        "April 10, 2026 Used for plan change (invoice INV-000003) -$9.03 $0.65",
        "April 6, 2026 Credit from plan change (invoice INV-000002) $9.68 $9.68",
    ]


def test_only_owners_see_the_balance_R_SEC_2(team_app: Flask, catalog: None) -> None:
    client = signed_in(team_app, team_member())
    assert client.get("/billing/balance").status_code == 403
    assert client.post("/billing/balance/withdraw", data={}).status_code == 403
