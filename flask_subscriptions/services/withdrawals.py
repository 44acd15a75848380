"""Withdrawing the balance as cash, less a fee (R-BAL-2).

The withdrawal row is written first, with ledger entries that take the amount and the fee
out of the balance in the same transaction (so nothing else can spend it meanwhile); then
the net is paid out through the gateway, keyed by the withdrawal's id, so it is paid at most
once. If the payout fails, the entries are given back and the balance is as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounts import BillingAccount
from ..core.quotes import withdrawal
from ..errors import BalanceChanged, NothingToWithdraw, WithdrawalFailed
from ..gateways.base import GatewayTimeout, GatewayUnavailable, PayoutResult
from ..models import Withdrawal
from ..notifications import enqueue
from ..signals import balance_withdrawn
from ..state import get_state
from . import _tx
from ._tx import send_after_commit
from .balance import append_entry, current_balance
from .profiles import gateway_customer


@dataclass(frozen=True)
class WithdrawalQuote:
    """What the confirmation shows: the amount, the fee, the net paid out."""

    amount: int
    fee: int
    net: int
    currency: str
    seq: int


def withdrawal_quote(account_id: str) -> WithdrawalQuote:
    balance = current_balance(account_id)
    if balance.amount <= 0 or balance.currency is None:
        raise NothingToWithdraw()
    fee, net = withdrawal(balance.amount, get_state().settings.withdrawal_fee_percent)
    return WithdrawalQuote(balance.amount, fee, net, balance.currency, balance.seq)


def withdraw(account: BillingAccount, expected_seq: int) -> Withdrawal:
    """Pay the whole balance out once, as confirmed (``expected_seq``: the balance seen)."""
    state = get_state()
    session = state.session
    try:
        quote = withdrawal_quote(account.billing_id)
        if quote.seq != expected_seq:
            raise BalanceChanged()
        row = Withdrawal(
            account_id=account.billing_id,
            currency=quote.currency,
            amount=quote.amount,
            fee=quote.fee,
            net=quote.net,
            status="pending",
            created_at=state.now(),
        )
        session.add(row)
        session.flush()
        append_entry(
            account.billing_id,
            "withdrawal",
            -quote.net,
            quote.currency,
            f"Withdrawal {row.id}: paid out",
            expected_seq=quote.seq,
            withdrawal_id=row.id,
        )
        if quote.fee:
            append_entry(
                account.billing_id,
                "fee",
                -quote.fee,
                quote.currency,
                f"Withdrawal {row.id}: fee",
                withdrawal_id=row.id,
            )
        reference = gateway_customer(account.billing_id)
        withdrawal_id, net, currency = row.id, quote.net, quote.currency
        _tx.commit()
    except BaseException:
        _tx.rollback()
        raise
    result = _payout(reference, net, currency, withdrawal_id)
    return _record(withdrawal_id, result, account)


def _payout(
    customer: str | None, net: int, currency: str, withdrawal_id: int
) -> PayoutResult | None:
    """None when the service did not answer: the withdrawal stays pending, to be retried
    with the same key (which can only pay once)."""
    if not customer or net <= 0:
        return PayoutResult(status="failed", message="No payout account is registered.")
    try:
        return (
            get_state()
            .require_gateway()
            .payout(customer, net, currency, f"withdrawal:{withdrawal_id}")
        )
    except GatewayTimeout:
        return None
    except GatewayUnavailable as exc:
        return PayoutResult(status="failed", message=f"The payment service is unavailable ({exc}).")


def _record(withdrawal_id: int, result: PayoutResult | None, account: BillingAccount) -> Withdrawal:
    state = get_state()
    session = state.session
    row = session.get(Withdrawal, withdrawal_id)
    assert row is not None
    if result is None:
        row.message = "The payout is being processed."
    elif result.status == "succeeded":
        row.status, row.payout_reference = "paid", result.payout_id
        row.completed_at = state.now()
        enqueue(
            "withdrawal_paid",
            account,
            {"withdrawal": row, "today": state.today()},
            dedupe_key=f"withdrawal_paid:{row.id}",
        )
        send_after_commit(
            balance_withdrawn,
            account_id=row.account_id,
            withdrawal_id=row.id,
            amount=row.amount,
            fee=row.fee,
            net=row.net,
            currency=row.currency,
        )
    else:
        row.status, row.message, row.completed_at = "failed", result.message, state.now()
        append_entry(
            row.account_id,
            "restore",
            row.net + row.fee,
            row.currency,
            f"Withdrawal {row.id} failed: balance returned",
            withdrawal_id=row.id,
        )
    _tx.commit()
    if row.status == "failed":
        raise (
            WithdrawalFailed(code="withdrawal_failed_by_gateway", reason=row.message)
            if row.message
            else WithdrawalFailed()
        )
    return row
