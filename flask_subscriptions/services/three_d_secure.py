"""Renewal charges the bank wants the card holder to confirm (3-D Secure, R-REN / #11).

An off-session renewal charge may come back ``requires_action``: the bank wants the card
holder present. Until they confirm it the invoice is unpaid, so the license enters dunning
as after a decline (R-DUN), and the owners get an e-mail with a link to our page, which
sends them to the gateway's ``action_url`` and, when they come back, asks the gateway how
the charge ended and records it (``record_outcome``: the renewal's own paid or failed).

While an attempt waits for the card holder, dunning makes no new attempt on that invoice
(``dunning._retry``): the waiting one can still take the money, and two could take it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NotFound
from ..models import Invoice, Payment, PaymentMethod
from ..state import get_state
from .reconciliation import reconcile_payment

__all__ = ["WaitingPayment", "find_waiting_payment", "refresh"]


@dataclass(frozen=True)
class WaitingPayment:
    """What the confirmation page shows about one charge of the account."""

    payment: Payment
    invoice: Invoice | None
    payment_method: PaymentMethod | None

    @property
    def can_confirm(self) -> bool:
        """Only a charge still waiting, for an invoice nothing else has paid since."""
        invoice = self.invoice
        return (
            self.payment.status == "requires_action"
            and bool(self.payment.action_url)
            and invoice is not None
            and invoice.status == "open"
            and invoice.paid_by_invoice_id is None
        )


def find_waiting_payment(account_id: str, payment_id: int) -> WaitingPayment:
    """The account's own charge; anyone else's is "not found" (R-SEC-2)."""
    session = get_state().session
    payment = session.get(Payment, payment_id)
    if payment is None or payment.account_id != account_id or payment.purpose != "charge":
        raise NotFound(code="payment_not_found")
    invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    method = session.get(PaymentMethod, payment.payment_method_id)
    return WaitingPayment(payment, invoice, method)


def refresh(waiting: WaitingPayment) -> WaitingPayment:
    """Back from the bank (or opened again): ask the gateway, and record how it ended."""
    payment = waiting.payment
    if payment.status not in ("requires_action", "unknown"):
        return waiting
    account_id, payment_id = payment.account_id, payment.id
    reconcile_payment(payment_id)
    get_state().session.expire_all()
    return find_waiting_payment(account_id, payment_id)
