"""The balance ledger (R-BAL-1): append-only, the sum of its entries, never negative.

Each entry stores the running balance and a per-account sequence number. Appending reads
the last entry and writes ``seq + 1``; the unique (account, seq) key turns two writers
racing for the same balance into one success and one ``BalanceChanged``, so the balance
can never be spent twice or go below zero, on any database, without table locks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from ..errors import BalanceChanged, InsufficientBalance
from ..models import BalanceEntry
from ..signals import balance_credited
from ..state import get_state
from ._sql import among
from ._tx import send_after_commit
from .paging import Cursor, Page, keyset, page_of

LEDGER = cast(Table, BalanceEntry.__table__)


@dataclass(frozen=True)
class Balance:
    amount: int
    currency: str | None
    seq: int


#: Built once: building a statement costs about as much as running it.
_LAST = (
    select(BalanceEntry.balance_after, BalanceEntry.currency, BalanceEntry.seq)
    .where(BalanceEntry.account_id == bindparam("account_id"))
    .order_by(BalanceEntry.seq.desc())
    .limit(1)
)
_ENTRIES = select(BalanceEntry).where(BalanceEntry.account_id == bindparam("account_id"))


def current_balance(account_id: str) -> Balance:
    """The latest running balance (one indexed query)."""
    last = get_state().session.execute(_LAST, {"account_id": account_id}).first()
    if last is None:
        return Balance(0, None, 0)
    return Balance(last.balance_after, last.currency, last.seq)


@dataclass(frozen=True)
class NewEntry:
    """One ledger entry to append: its amount is signed (a credit is positive).

    ``expected_seq`` is the sequence number the caller's quote was computed on: when
    another entry came in between, the caller's amounts are stale (R-PRO-7).
    """

    account_id: str
    kind: str
    amount: int
    currency: str
    reason: str
    expected_seq: int | None = None
    invoice_id: int | None = None
    plan_change_id: int | None = None
    withdrawal_id: int | None = None


def latest_balances(account_ids: Collection[str]) -> dict[str, Balance]:
    """Each account's running balance, in one query (accounts with no entry are left out)."""
    e = LEDGER.c
    last = (
        select(e.account_id, func.max(e.seq).label("seq"))
        .where(among(e.account_id, account_ids))
        .group_by(e.account_id)
        .subquery()
    )
    rows = get_state().session.execute(
        select(e.account_id, e.balance_after, e.currency, e.seq).join(
            last, (e.account_id == last.c.account_id) & (e.seq == last.c.seq)
        )
    )
    return {row.account_id: Balance(row.balance_after, row.currency, row.seq) for row in rows}


def append_entries(entries: Sequence[NewEntry], known: Mapping[str, Balance] | None = None) -> None:
    """Append entries in the caller's transaction, in order, with one INSERT: the only
    writer of the ledger, so its rules hold on every path (one currency per account, never
    negative, each entry's running balance and seq after the one before).

    A concurrent writer that took a seq first makes the INSERT fail on the unique
    (account, seq) key: ``BalanceChanged``, and the caller rolls back. ``known``: the
    balances the caller read in this transaction (a renewal batch has them), not read again.
    """
    if not entries:
        return
    state = get_state()
    session = state.session
    session.flush()  # rows the entries point at (invoices, changes) exist first
    accounts = {entry.account_id for entry in entries}
    balances = (
        {a: b for a, b in known.items() if a in accounts}
        if known is not None
        else latest_balances(accounts)
    )
    now = state.now()
    rows: list[dict[str, Any]] = []
    for entry in entries:
        last = balances.get(entry.account_id, Balance(0, None, 0))
        if entry.expected_seq is not None and last.seq != entry.expected_seq:
            raise BalanceChanged()
        if last.currency is not None and last.currency != entry.currency:
            raise ValueError(f"balance is kept in {last.currency}, not {entry.currency}")
        after = last.amount + entry.amount
        if after < 0:
            raise InsufficientBalance()
        balances[entry.account_id] = Balance(after, entry.currency, last.seq + 1)
        rows.append(
            {
                "account_id": entry.account_id,
                "seq": last.seq + 1,
                "kind": entry.kind,
                "amount": entry.amount,
                "balance_after": after,
                "currency": entry.currency,
                "reason": entry.reason,
                "invoice_id": entry.invoice_id,
                "plan_change_id": entry.plan_change_id,
                "withdrawal_id": entry.withdrawal_id,
                "created_at": now,
            }
        )
    try:
        session.execute(insert(LEDGER), rows)
    except IntegrityError:
        raise BalanceChanged() from None
    for row in rows:
        if row["amount"] > 0 and row["kind"] in ("credit", "restore"):
            send_after_commit(
                balance_credited,
                account_id=row["account_id"],
                amount=row["amount"],
                currency=row["currency"],
                kind=row["kind"],
                balance=row["balance_after"],
            )


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
) -> None:
    """One entry: :func:`append_entries` with a list of one."""
    append_entries(
        [
            NewEntry(
                account_id,
                kind,
                amount,
                currency,
                reason,
                expected_seq,
                invoice_id,
                plan_change_id,
                withdrawal_id,
            )
        ]
    )


def history(account_id: str, cursor: Cursor, size: int) -> Page[BalanceEntry]:
    """One page of the ledger, newest first, by its sequence number (one indexed read)."""
    found, more = keyset(_ENTRIES, (BalanceEntry.seq,), cursor, size, {"account_id": account_id})
    return page_of([row[0] for row in found], lambda entry: (entry.seq,), cursor, more)


def balance_and_history(
    account_id: str, cursor: Cursor, size: int
) -> tuple[Balance, Page[BalanceEntry]]:
    """The Balance page's reads (R-BAL-1, R-BAL-3): on the ledger's first page the newest
    entry, read first, holds the running balance, so the page costs one statement (two on
    older pages)."""
    page = history(account_id, cursor, size)
    if cursor.direction is not None:
        return current_balance(account_id), page
    if not page.items:
        return Balance(0, None, 0), page
    newest = page.items[0]
    return Balance(newest.balance_after, newest.currency, newest.seq), page
