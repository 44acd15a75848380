"""Taking money: the one path every charge follows (checkout, renewal, dunning, changes).

1. The caller's transaction records the invoice and a *pending* payment whose idempotency
   key comes from that durable row, and commits.
2. ``execute`` calls the gateway outside any transaction, so a slow service holds no lock
   and no connection.
3. The outcome is recorded in a new transaction, and the invoice's kind decides what a
   success or a failure means (a purchase completes, a renewal ends its dunning, …).

A timeout leaves the payment *unknown*; the reconciliation job looks it up by its key and
records the outcome then. Nothing on this path ever charges with a new key for the same
attempt, so nothing is charged twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Exists, exists, select, update

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
from ..models import Invoice, Payment, PaymentMethod
from ..state import get_state
from . import _tx
from ._sql import updated
from .accounts import gateway_customer

#: What the outcome of a charge means for each kind of invoice.
OutcomeHandler = Callable[[Invoice, Payment], None]


@dataclass(frozen=True)
class OutcomeHandlers:
    paid: OutcomeHandler
    failed: OutcomeHandler
    #: Called when a charge waits for the person (3-D Secure); may be a no-op.
    action_required: OutcomeHandler | None = None
    #: A payment whose process died before the gateway saw it: charge it now with the same
    #: key (renewals), or count it as not paid (a purchase, whose buyer has left the page).
    charge_when_never_sent: bool = False


_HANDLERS: dict[str, OutcomeHandlers] = {}

#: Payment states an outcome may still move a payment out of.
OPEN_STATUSES = ("pending", "unknown", "requires_action")


def attempt_open() -> Exists:
    """SQL, correlated to ``Invoice``: an attempt to pay it can still take money (in flight,
    its outcome unknown, or waiting for 3-D Secure). Nothing may start a second one then."""
    return exists().where(Payment.invoice_id == Invoice.id, Payment.status.in_(OPEN_STATUSES))


def register_outcome_handlers(invoice_kind: str, handlers: OutcomeHandlers) -> None:
    """Each service that creates invoices of a kind says what their outcomes mean."""
    _HANDLERS[invoice_kind] = handlers


def handlers_for(kind: str) -> OutcomeHandlers:
    if not _HANDLERS:
        _load_handlers()
    return _HANDLERS[kind]


def _load_handlers() -> None:
    # Importing a service module registers its handlers.
    from . import changes, checkout, renewals, settlement  # noqa: F401


def invoice_key(invoice: Invoice, attempt: int) -> str:
    """The idempotency key of one attempt to pay an invoice: from durable rows only."""
    return payment_key(invoice.kind, invoice.id, attempt)


def payment_key(invoice_kind: str, invoice_id: int, attempt: int) -> str:
    return f"{invoice_kind}:{invoice_id}:{attempt}"


def open_payment(invoice: Invoice, method: PaymentMethod, amount: int, attempt: int = 1) -> Payment:
    """Add the pending payment for ``invoice`` to the session (the caller commits)."""
    state = get_state()
    now = state.now()
    payment = Payment(
        idempotency_key=invoice_key(invoice, attempt),
        account_id=invoice.account_id,
        invoice_id=invoice.id,
        purpose="charge",
        attempt=attempt,
        gateway=state.require_gateway().name,
        payment_method_id=method.id,
        amount=amount,
        currency=invoice.currency,
        status="pending",
        created_at=now,
        updated_at=now,
    )
    state.session.add(payment)
    return payment


def execute(payment_id: int, *, description: str, return_url: str | None = None) -> Payment:
    """Call the gateway for a committed pending payment and record what happened.

    Must be called with no transaction open on the session (it ends any that is).
    """
    state = get_state()
    session = state.session
    payment = session.get(Payment, payment_id)
    if payment is None or payment.status != "pending":
        raise LookupError(f"payment {payment_id} is not pending")
    method = session.get(PaymentMethod, payment.payment_method_id)
    customer = gateway_customer(payment.account_id)
    request = ChargeRequest(
        customer=customer or "",
        payment_method=method.token if method is not None else "",
        amount=payment.amount,
        currency=payment.currency,
        idempotency_key=payment.idempotency_key,
        description=description,
        off_session=return_url is None,
        return_url=return_url,
    )
    session.commit()  # no transaction, lock or connection is held while the gateway works
    record_outcome(payment_id, charge(request))
    return session.get(Payment, payment_id)  # type: ignore[return-value]


def charge(request: ChargeRequest) -> ChargeResult:
    """Ask the gateway; a timeout is an *unknown* outcome, an outage a soft decline.

    Call it outside any transaction of ours (a slow service must hold no lock).
    """
    try:
        return get_state().require_gateway().charge(request)
    except (GatewayTimeout, GatewayUnavailable) as error:
        return _unanswered(error)


def charge_many(requests: Sequence[ChargeRequest]) -> list[ChargeResult] | None:
    """Hand the gateway every request at once, when it takes batches (``BulkCharges``);
    None when it wants one call per charge. Answers read as :func:`charge`'s."""
    gateway = get_state().require_gateway()
    if not isinstance(gateway, BulkCharges) or not gateway.bulk_charges:
        return None
    answers = gateway.charge_many(requests)
    if len(answers) != len(requests):
        raise GatewayError(f"{len(answers)} answers to {len(requests)} charges")
    return [_answered(answer) for answer in answers]


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


def record_outcome(payment_id: int, result: ChargeResult) -> bool:
    """Record a gateway answer once, and let the invoice's kind act on it, in one transaction.

    Returns False when the payment had already left the state this answer applies to (a
    second worker, a webhook and a lookup may all report the same outcome).
    """
    state = get_state()
    session = state.session
    # The conditional UPDATE is the claim: of several reporters, exactly one moves the row.
    claimed = updated(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status.in_(OPEN_STATUSES),
            Payment.status != result.status.value,
        )
        .values(status=result.status.value, updated_at=state.now())
        .execution_options(synchronize_session=False)
    )
    if claimed != 1:
        session.rollback()
        return False
    payment = session.scalars(
        select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    ).one()
    invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    payment.charge_id = result.charge_id or payment.charge_id
    payment.decline_kind = result.decline_kind.value if result.decline_kind else None
    payment.decline_code = result.decline_code
    payment.message = result.message
    payment.action_url = result.action_url
    _tx.after_commit(lambda: _send_signals(payment))
    if invoice is not None:
        handlers = handlers_for(invoice.kind)
        if result.status is ChargeStatus.SUCCEEDED:
            handlers.paid(invoice, payment)
        elif result.status is ChargeStatus.DECLINED:
            handlers.failed(invoice, payment)
        elif result.status is ChargeStatus.REQUIRES_ACTION and handlers.action_required:
            handlers.action_required(invoice, payment)
    _tx.commit()
    return True


def _send_signals(payment: Payment) -> None:
    from flask import current_app

    from ..signals import payment_failed

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if payment.status == "succeeded":
        send_succeeded(
            payment.account_id, payment.id, payment.invoice_id, payment.amount, payment.currency
        )
    elif payment.status == "declined":
        payment_failed.send(
            app,
            account_id=payment.account_id,
            payment_id=payment.id,
            invoice_id=payment.invoice_id,
            decline_kind=payment.decline_kind,
            message=payment.message,
        )


def send_succeeded(
    account_id: str, payment_id: int, invoice_id: int | None, amount: int, currency: str
) -> None:
    """The ``payment_succeeded`` signal (after the commit that recorded it)."""
    from flask import current_app

    from ..signals import payment_succeeded

    payment_succeeded.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account_id=account_id,
        payment_id=payment_id,
        invoice_id=invoice_id,
        amount=amount,
        currency=currency,
    )
