"""Step 1: write each draft's invoice, lines, balance entries and pending payment, in the
caller's transaction, with executemany; an invoice with nothing left for the card is paid
there and then."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update

from ...core.proration import QuoteLine
from ...gateways.base import (
    ChargeRequest,
)
from ...state import get_state
from .._sql import insert_rows, reserve_ids
from ..balance import Balance, NewEntry, append_entries
from .drafts import (
    INVOICES,
    LINES,
    PAYMENTS,
    Attempt,
    Draft,
    Reserved,
    invoice_number,
    outcomes_for,
    payment_key,
)


def reserve(
    drafts: Sequence[Draft], balances: Mapping[str, Balance] | None = None
) -> list[Reserved]:
    """Write each draft's invoice, lines, balance entries and pending payment, in the
    caller's transaction (the caller commits). ``balances``: the ledger as the caller read it
    in this transaction, if it did."""
    if not drafts:
        return []
    session = get_state().session
    now = get_state().now()
    session.flush()  # what the rows point at (orders, changes, terms) exists first
    rows = [_invoice_row(d, now) for d in drafts]
    ids, numbers = _insert_invoices(rows)
    lines = [_line(i, line) for d, i in zip(drafts, ids, strict=True) for line in d.quote.lines]
    if lines:
        session.execute(insert(LINES), lines)
    append_entries(_entries(drafts, ids, numbers), balances)
    attempts = [
        _first_attempt(d, i, n)
        for d, i, n in zip(drafts, ids, numbers, strict=True)
        if d.card is not None and d.quote.card_amount > 0
    ]
    payments = _open_payments(attempts)
    opened = {a.invoice_id: p for a, p in zip(attempts, payments, strict=True)}
    reserved = []
    for d, i, n, row in zip(drafts, ids, numbers, rows, strict=True):
        payment_id, request = opened.get(i, (None, None))
        invoice = {**row, "id": i, "number": n}
        reserved.append(
            Reserved(i, n, d.kind, d.account_id, payment_id, request, d.context, invoice)
        )
    paid_now = [r for r, d in zip(reserved, drafts, strict=True) if d.quote.card_amount == 0]
    for kind in dict.fromkeys(r.kind for r in paid_now):
        outcomes_for(kind).paid([r for r in paid_now if r.kind == kind])
    return reserved


def open_attempts(attempts: Sequence[Attempt]) -> list[Reserved]:
    """A pending payment for each attempt, in the caller's transaction (the caller commits),
    with the request that charges it."""
    return [
        Reserved(a.invoice_id, a.number, a.kind, a.account_id, payment_id, request)
        for a, (payment_id, request) in zip(attempts, _open_payments(attempts), strict=True)
    ]


def _open_payments(attempts: Sequence[Attempt]) -> list[tuple[int, ChargeRequest]]:
    """Each attempt's new pending payment: its id and the request that charges it."""
    if not attempts:
        return []
    state = get_state()
    now, gateway = state.now(), state.require_gateway().name
    keys = [payment_key(a.kind, a.invoice_id, a.attempt) for a in attempts]
    ids = insert_rows(
        PAYMENTS,
        [
            {
                "idempotency_key": key,
                "account_id": a.account_id,
                "invoice_id": a.invoice_id,
                "purpose": "charge",
                "attempt": a.attempt,
                "gateway": gateway,
                "payment_method_id": a.card.id,
                "amount": a.amount,
                "currency": a.currency,
                "status": "pending",
                "created_at": now,
                "updated_at": now,
            }
            for a, key in zip(attempts, keys, strict=True)
        ],
    )
    return [
        (payment_id, _request(a, key))
        for a, key, payment_id in zip(attempts, keys, ids, strict=True)
    ]


def _request(a: Attempt, key: str) -> ChargeRequest:
    return ChargeRequest(
        customer=a.card.customer,
        payment_method=a.card.token,
        amount=a.amount,
        currency=a.currency,
        idempotency_key=key,
        description=a.description.replace("{number}", a.number),
        off_session=a.return_url is None,
        return_url=a.return_url,
    )


def _first_attempt(draft: Draft, invoice_id: int, number: str) -> Attempt:
    assert draft.card is not None
    return Attempt(
        invoice_id,
        number,
        draft.kind,
        draft.account_id,
        draft.quote.card_amount,
        draft.quote.currency,
        draft.card,
        1,
        draft.description,
        draft.return_url,
    )


def _invoice_row(draft: Draft, now: datetime) -> dict[str, Any]:
    quote, term = draft.quote, draft.quote.new_term
    paid = quote.card_amount == 0
    return {
        "account_id": draft.account_id,
        "subscription_id": draft.subscription_id,
        "term_id": draft.term_id,
        "kind": draft.kind,
        "status": "paid" if paid else "open",
        "currency": quote.currency,
        "total": quote.total,
        "balance_applied": quote.balance_used,
        "amount_due": quote.card_amount,
        "period_start": term.start if term else None,
        "period_end": term.end if term else None,
        "quote_fingerprint": quote.fingerprint,
        "created_at": now,
        "paid_at": now if paid else None,
    }


def _insert_invoices(rows: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
    """Insert the invoices with their numbers, which come from their ids."""
    session = get_state().session
    ids = reserve_ids(INVOICES, len(rows))
    if ids is None:  # no ids reserved on this database: numbered after the insert
        ids = insert_rows(INVOICES, rows)
        numbers = [invoice_number(i) for i in ids]
        session.execute(
            update(INVOICES)
            .where(INVOICES.c.id == bindparam("b_id"))
            .values(number=bindparam("b_number")),
            [{"b_id": i, "b_number": n} for i, n in zip(ids, numbers, strict=True)],
        )
        return ids, numbers
    numbers = [invoice_number(i) for i in ids]
    session.execute(
        insert(INVOICES),
        [{"id": i, "number": n, **row} for i, n, row in zip(ids, numbers, rows, strict=True)],
    )
    return ids, numbers


def _line(invoice_id: int, line: QuoteLine) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "kind": line.kind.value,
        "item_code": line.item_code or "",
        "description": line.description,
        "price_id": line.price_id,
        "settled_invoice_id": line.invoice_id,
        "start": line.start,
        "end": line.end,
        "days": line.days,
        "term_days": line.term_days,
        "basis": line.basis,
        "amount": line.amount,
    }


def _entries(drafts: Sequence[Draft], ids: list[int], numbers: list[str]) -> list[NewEntry]:
    """Each draft's entries; the first checks the seq its quote read."""
    entries = []
    for draft, invoice_id, number in zip(drafts, ids, numbers, strict=True):
        for position, entry in enumerate(draft.entries):
            entries.append(
                NewEntry(
                    draft.account_id,
                    entry.kind,
                    entry.amount,
                    draft.quote.currency,
                    entry.reason.replace("{number}", number),
                    expected_seq=draft.balance_seq if position == 0 else None,
                    invoice_id=invoice_id,
                    plan_change_id=entry.plan_change_id,
                )
            )
    return entries
