"""The balance ledger (R-BAL-1): append-only, the sum of its entries, never negative.

Each entry stores the running balance and a per-account sequence number. Appending reads
the last entry and writes ``seq + 1``; the unique (account, seq) key turns two writers
racing for the same balance into one success and one ``BalanceChanged``, so the balance
can never be spent twice or go below zero, on any database, without table locks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import BalanceChanged, InsufficientBalance
from ..models import BalanceEntry
from ..state import get_state


@dataclass(frozen=True)
class Balance:
    amount: int
    currency: str | None
    seq: int


def current_balance(account_id: str) -> Balance:
    """The latest running balance (one indexed query)."""
    last = (
        get_state()
        .session.execute(
            select(BalanceEntry.balance_after, BalanceEntry.currency, BalanceEntry.seq)
            .where(BalanceEntry.account_id == account_id)
            .order_by(BalanceEntry.seq.desc())
            .limit(1)
        )
        .first()
    )
    if last is None:
        return Balance(0, None, 0)
    return Balance(last.balance_after, last.currency, last.seq)


def append_entry(
    account_id: str,
    kind: str,
    amount: int,
    currency: str,
    reason: str,
    *,
    expected_seq: int | None = None,
    invoice_id: int | None = None,
    plan_change_id: int | None = None,
    withdrawal_id: int | None = None,
) -> BalanceEntry:
    """Append one entry in the caller's transaction (flushed, not committed).

    ``expected_seq`` is the sequence number the caller's quote was computed on: when
    another entry came in between, the caller's amounts are stale (R-PRO-7).
    """
    state = get_state()
    session = state.session
    last = current_balance(account_id)
    if expected_seq is not None and last.seq != expected_seq:
        raise BalanceChanged()
    if last.currency is not None and last.currency != currency:
        raise ValueError(f"balance is kept in {last.currency}, not {currency}")
    after = last.amount + amount
    if after < 0:
        raise InsufficientBalance()
    entry = BalanceEntry(
        account_id=account_id,
        seq=last.seq + 1,
        kind=kind,
        amount=amount,
        balance_after=after,
        currency=currency,
        reason=reason,
        invoice_id=invoice_id,
        plan_change_id=plan_change_id,
        withdrawal_id=withdrawal_id,
        created_at=state.now(),
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        raise BalanceChanged() from None
    return entry


def history(account_id: str) -> list[BalanceEntry]:
    return list(
        get_state().session.scalars(
            select(BalanceEntry)
            .where(BalanceEntry.account_id == account_id)
            .order_by(BalanceEntry.seq.desc())
        )
    )
