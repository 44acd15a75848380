"""The billing pipeline: every charge takes the same three steps, one charge or five hundred.

A purchase, a plan change, a settlement, a dunning retry, a 3-D Secure confirmation, a
reconciled payment and a renewal batch all go through here:

1. :func:`reserve` — in the caller's transaction, write each invoice, its lines, its
   balance entries and a *pending* payment whose idempotency key comes from the invoice.
   An invoice with nothing left for the card is paid there and then. The caller commits.
2. :func:`charge` — call the gateway outside any transaction (a slow service holds no
   lock and no connection): the whole list in one call when the gateway takes batches,
   else one call per charge, several at a time.
3. :func:`record` — one transaction records every answer once and what follows from it:
   the invoice kind's :class:`Outcomes` (registered by ``init_app``), and signals after
   the commit.

A list of one and a list of five hundred take the same code; rows go in with executemany.
A timeout leaves a payment *unknown*; reconciliation looks it up by its key and records
the answer through :func:`record`. Nothing here charges a new key for the same attempt, so
nothing is charged twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import Exists, Table, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult

from ..core.proration import QuoteLine
from ..core.quotes import Quote
from ..gateways.base import (
    BulkCharges,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
)
from ..models import BillingProfile, Invoice, InvoiceLine, Payment, PaymentMethod
from ..signals import payment_failed, payment_succeeded
from ..state import get_state
from . import _tx
from ._sql import insert_rows, reserve_ids
from .balance import Balance, NewEntry, append_entries

INVOICES = cast(Table, Invoice.__table__)
LINES = cast(Table, InvoiceLine.__table__)
PAYMENTS = cast(Table, Payment.__table__)

#: Payment states an outcome may still move a payment out of.
OPEN_STATUSES = ("pending", "unknown", "requires_action")
NUMBER_PREFIX = "INV"


def invoice_number(invoice_id: int) -> str:
    """What people see and quote: ``INV-000042``, from the id, so it is unique and ordered."""
    return f"{NUMBER_PREFIX}-{invoice_id:06d}"


def payment_key(invoice_kind: str, invoice_id: int, attempt: int) -> str:
    """The idempotency key of one attempt to pay an invoice: from durable rows only."""
    return f"{invoice_kind}:{invoice_id}:{attempt}"


def attempt_open() -> Exists:
    """SQL, correlated to ``Invoice``: an attempt to pay it can still take money (in flight,
    its outcome unknown, or waiting for 3-D Secure). Nothing may start a second one then."""
    return exists().where(Payment.invoice_id == Invoice.id, Payment.status.in_(OPEN_STATUSES))


# --- what goes in and comes out ------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """The card that pays: our row, the gateway's token, and its customer reference."""

    id: int
    token: str
    customer: str


def card_of(method: PaymentMethod) -> Card:
    """The card that pays, with its account's customer reference at the gateway."""
    customer = get_state().session.scalar(
        select(BillingProfile.gateway_customer).where(
            BillingProfile.account_id == method.account_id
        )
    )
    return Card(method.id, method.token, customer or "")


@dataclass(frozen=True)
class Entry:
    """A balance entry of an invoice; ``{number}`` in the reason is its invoice number."""

    kind: str
    amount: int
    reason: str
    plan_change_id: int | None = None


@dataclass(frozen=True)
class Draft:
    """One invoice to write, from the core's quote, and who pays what is left of it."""

    account_id: str
    kind: str  # purchase | change | renewal | settlement
    quote: Quote
    #: What the gateway shows; ``{number}`` is replaced by the invoice number.
    description: str
    subscription_id: int | None = None
    term_id: int | None = None
    #: The card that pays ``quote.card_amount``; None leaves a renewal unpaid (dunning).
    card: Card | None = None
    entries: tuple[Entry, ...] = ()
    #: The ledger seq the quote read: a balance that moved since raises ``BalanceChanged``.
    balance_seq: int | None = None
    return_url: str | None = None
    #: What the kind's outcomes may reuse instead of reading it again (a batch's receipts).
    context: Any = None


@dataclass(frozen=True)
class Attempt:
    """A payment attempt on an invoice already written (the first, or a dunning retry)."""

    invoice_id: int
    number: str
    kind: str
    account_id: str
    amount: int
    currency: str
    card: Card
    attempt: int
    description: str
    return_url: str | None = None


@dataclass(frozen=True)
class Reserved:
    """A written invoice and, when the card pays part of it, its pending payment."""

    invoice_id: int
    number: str
    kind: str
    account_id: str
    payment_id: int | None = None
    request: ChargeRequest | None = None
    context: Any = None
    #: The invoice's columns as :func:`reserve` wrote them (None when read back later).
    invoice: dict[str, Any] | None = field(default=None, compare=False, repr=False)


Handler = Callable[[Sequence[Reserved]], None]


@dataclass(frozen=True)
class Outcomes:
    """What the outcome of a charge means for one kind of invoice."""

    paid: Handler
    failed: Handler
    #: Called when a charge waits for the person (3-D Secure).
    action_required: Handler | None = None
    #: A payment whose process died before the gateway saw it: charge it now with the same
    #: key (renewals), or count it as not paid (a purchase, whose buyer has left the page).
    charge_when_never_sent: bool = False


def one_by_one(handle: Callable[[Invoice, Payment | None], None]) -> Handler:
    """A :data:`Handler` for an outcome that works on one invoice's rows at a time."""

    def run(reserved: Sequence[Reserved]) -> None:
        session = get_state().session
        for one in reserved:
            invoice = session.get_one(Invoice, one.invoice_id, populate_existing=True)
            payment = (
                session.get_one(Payment, one.payment_id, populate_existing=True)
                if one.payment_id is not None
                else None
            )
            handle(invoice, payment)

    return run


def _outcomes(kind: str) -> Outcomes:
    return get_state().outcomes[kind]


# --- 1. reserve ------------------------------------------------------------------------------


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
    opened = {r.invoice_id: r for r in open_attempts(attempts)}
    reserved = [
        replace(
            opened.get(i) or Reserved(i, n, d.kind, d.account_id),
            context=d.context,
            invoice={**row, "id": i, "number": n},
        )
        for d, i, n, row in zip(drafts, ids, numbers, rows, strict=True)
    ]
    paid_now = [r for r, d in zip(reserved, drafts, strict=True) if d.quote.card_amount == 0]
    for kind in dict.fromkeys(r.kind for r in paid_now):
        _outcomes(kind).paid([r for r in paid_now if r.kind == kind])
    return reserved


def open_attempts(attempts: Sequence[Attempt]) -> list[Reserved]:
    """A pending payment for each attempt, in the caller's transaction (the caller commits),
    with the request that charges it."""
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
        Reserved(a.invoice_id, a.number, a.kind, a.account_id, payment_id, _request(a, key))
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


# --- 2. charge -------------------------------------------------------------------------------


def charge(
    requests: Sequence[ChargeRequest], pool: ThreadPoolExecutor | None = None
) -> list[ChargeResult]:
    """Ask the gateway, outside any transaction of ours: the whole list in one call when it
    takes batches (``BulkCharges``), else one call per charge (``pool``: several at once).

    A timeout is an *unknown* outcome, an outage a soft decline.
    """
    if not requests:
        return []
    gateway = get_state().require_gateway()
    if len(requests) > 1 and isinstance(gateway, BulkCharges) and gateway.bulk_charges:
        answers = gateway.charge_many(requests)
        if len(answers) != len(requests):
            raise GatewayError(f"{len(answers)} answers to {len(requests)} charges")
        return [_answered(answer) for answer in answers]
    if pool is None or len(requests) == 1:
        return [_charge_one(request) for request in requests]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return list(pool.map(lambda request: _charge_in(app, request), requests))


def _charge_in(app: Flask, request: ChargeRequest) -> ChargeResult:
    with app.app_context():
        return _charge_one(request)


def _charge_one(request: ChargeRequest) -> ChargeResult:
    try:
        return get_state().require_gateway().charge(request)
    except (GatewayTimeout, GatewayUnavailable) as error:
        return _unanswered(error)


def _answered(answer: ChargeResult | GatewayError) -> ChargeResult:
    if isinstance(answer, GatewayTimeout | GatewayUnavailable):
        return _unanswered(answer)
    if isinstance(answer, GatewayError):
        raise answer  # what ``charge`` would have raised: a bug, not a payment outcome
    return answer


def _unanswered(error: GatewayTimeout | GatewayUnavailable) -> ChargeResult:
    if isinstance(error, GatewayTimeout):
        return ChargeResult(
            status=ChargeStatus.UNKNOWN,
            message="The payment service did not answer; we will confirm the payment shortly.",
        )
    return ChargeResult(
        status=ChargeStatus.DECLINED,
        decline_kind=DeclineKind.SOFT,
        decline_code="service_unavailable",
        message="The payment service is unavailable. Nothing was charged; please try again.",
    )


# --- 3. record -------------------------------------------------------------------------------


@dataclass
class Recorded:
    """Which of the answers this call recorded, by outcome."""

    succeeded: list[Reserved] = field(default_factory=list)
    declined: list[Reserved] = field(default_factory=list)
    waiting: list[Reserved] = field(default_factory=list)  # unknown, or 3-D Secure

    def __len__(self) -> int:
        return len(self.succeeded) + len(self.declined) + len(self.waiting)


def record(
    answers: Sequence[tuple[Reserved, ChargeResult]],
    before_commit: Callable[[], None] | None = None,
) -> Recorded:
    """Record gateway answers once, and what they mean for each invoice, in one transaction.

    Of several reporters (two workers, a webhook and a lookup) exactly one moves a payment:
    the others' answers for it are left out of what this returns. ``before_commit`` runs
    in the same transaction (a batch gives its claims back there).
    """
    state = get_state()
    now = state.now()
    moved = _move(answers, now)
    mine = [(r, result) for r, result in answers if r.payment_id in moved]
    done = Recorded()
    for r, result in mine:
        if result.status is ChargeStatus.SUCCEEDED:
            done.succeeded.append(r)
        elif result.status is ChargeStatus.DECLINED:
            done.declined.append(r)
        else:
            done.waiting.append(r)
    signals = [(r, result) for r, result in mine if r.request is not None]
    _tx.after_commit(lambda: _send_signals(signals))  # the payment's, then its outcome's
    if done.succeeded:
        state.session.execute(
            update(INVOICES)
            .where(INVOICES.c.id.in_([r.invoice_id for r in done.succeeded]))
            .values(status="paid", paid_at=now)
        )
    _dispatch(done.succeeded, lambda o: o.paid)
    _dispatch(done.declined, lambda o: o.failed)
    _dispatch(
        [r for r, result in mine if result.status is ChargeStatus.REQUIRES_ACTION],
        lambda o: o.action_required,
    )
    if before_commit is not None:
        before_commit()
    _tx.commit()
    return done


def _dispatch(reserved: list[Reserved], pick: Callable[[Outcomes], Handler | None]) -> None:
    for kind in dict.fromkeys(r.kind for r in reserved):
        handler = pick(_outcomes(kind))
        if handler is not None:
            handler([r for r in reserved if r.kind == kind])


def _move(answers: Sequence[tuple[Reserved, ChargeResult]], now: datetime) -> set[int]:
    """Move each payment still open to its answer's state; the ids this call moved.

    One executemany when every row moves (the rule); when some had already moved (another
    reporter got there first), each is asked again on its own to tell which are ours.
    """
    session = get_state().session
    rows = [_moved_values(r, result) for r, result in answers if r.payment_id is not None]
    if not rows:
        return set()
    p = PAYMENTS.c
    statement = (
        update(PAYMENTS)
        # (an IN list expands per execution, which executemany does not allow)
        .where(
            p.id == bindparam("b_id"),
            or_(*(p.status == status for status in OPEN_STATUSES)),
            p.status != bindparam("b_status"),
        )
        .values(
            status=bindparam("b_status"),
            charge_id=func.coalesce(bindparam("b_charge"), p.charge_id),
            decline_kind=bindparam("b_decline_kind"),
            decline_code=bindparam("b_decline_code"),
            message=bindparam("b_message"),
            action_url=bindparam("b_action_url"),
            updated_at=now,
        )
    )
    if len(rows) == 1 or session.get_bind().dialect.supports_sane_multi_rowcount:
        result = cast(CursorResult[Any], session.execute(statement, rows))
        if result.rowcount == len(rows):
            return {row["b_id"] for row in rows}
        if len(rows) == 1:
            _tx.rollback()
            return set()
        _tx.rollback()
    moved = set()
    for row in rows:
        if cast(CursorResult[Any], session.execute(statement, row)).rowcount == 1:
            moved.add(row["b_id"])
    return moved


def _moved_values(r: Reserved, result: ChargeResult) -> dict[str, Any]:
    return {
        "b_id": r.payment_id,
        "b_status": result.status.value,
        "b_charge": result.charge_id,
        "b_decline_kind": result.decline_kind.value if result.decline_kind else None,
        "b_decline_code": result.decline_code,
        "b_message": result.message,
        "b_action_url": result.action_url,
    }


def _send_signals(recorded: list[tuple[Reserved, ChargeResult]]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for r, result in recorded:
        assert r.request is not None
        if result.status is ChargeStatus.SUCCEEDED:
            payment_succeeded.send(
                app,
                account_id=r.account_id,
                payment_id=r.payment_id,
                invoice_id=r.invoice_id,
                amount=r.request.amount,
                currency=r.request.currency,
            )
        elif result.status is ChargeStatus.DECLINED:
            payment_failed.send(
                app,
                account_id=r.account_id,
                payment_id=r.payment_id,
                invoice_id=r.invoice_id,
                decline_kind=result.decline_kind.value if result.decline_kind else None,
                message=result.message,
            )


# --- the three steps at once -------------------------------------------------------------------


def charge_and_record(
    reserved: Sequence[Reserved], pool: ThreadPoolExecutor | None = None
) -> Recorded:
    """Steps 2 and 3 for reserved payments the caller has committed."""
    to_charge = [r for r in reserved if r.request is not None]
    get_state().session.commit()  # no transaction, lock or connection is held meanwhile
    results = charge([r.request for r in to_charge if r.request is not None], pool)
    return record(list(zip(to_charge, results, strict=True)))


def reserved_payment(payment_id: int) -> Reserved | None:
    """A payment already written, as :func:`reserve` returned it (for a lookup, a
    webhook, or a charge its process never sent), with the request that charges it."""
    p, i, m = Payment, Invoice, PaymentMethod
    row = (
        get_state()
        .session.execute(
            select(
                p.id,
                p.idempotency_key,
                p.account_id,
                p.amount,
                p.currency,
                i.id.label("invoice_id"),
                i.number,
                i.kind,
                m.token,
                BillingProfile.gateway_customer,
            )
            .join(i, i.id == p.invoice_id)
            .outerjoin(m, m.id == p.payment_method_id)
            .outerjoin(BillingProfile, BillingProfile.account_id == p.account_id)
            .where(p.id == payment_id)
        )
        .first()
    )
    if row is None:
        return None
    request = ChargeRequest(
        customer=row.gateway_customer or "",
        payment_method=row.token or "",
        amount=row.amount,
        currency=row.currency,
        idempotency_key=row.idempotency_key,
        description=f"{row.kind.capitalize()} {row.number}",
    )
    return Reserved(row.invoice_id, row.number, row.kind, row.account_id, row.id, request)


def record_outcome(payment_id: int, result: ChargeResult) -> bool:
    """Record one gateway answer (a webhook, a lookup); False when it was recorded before."""
    reserved = reserved_payment(payment_id)
    if reserved is None:
        return False
    return len(record([(reserved, result)])) == 1
