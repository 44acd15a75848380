"""What goes through the billing pipeline: drafts in, reserved payments out, and what an
outcome means for each kind of invoice (``Outcomes``, handed over by ``init_app``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Exists, Table, exists, select

from ...core.quotes import Quote
from ...gateways.base import (
    ChargeRequest,
)
from ...models import BillingProfile, Invoice, InvoiceLine, Payment, PaymentMethod
from ...state import get_state

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


def attempt_open(invoice: Any = Invoice) -> Exists:
    """SQL, correlated to ``invoice`` (``Invoice`` or an alias of it): an attempt to pay it
    can still take money (in flight, its outcome unknown, or waiting for 3-D Secure).
    Nothing may start a second one then."""
    return exists().where(Payment.invoice_id == invoice.id, Payment.status.in_(OPEN_STATUSES))


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


def outcomes_for(kind: str) -> Outcomes:
    return get_state().outcomes[kind]
