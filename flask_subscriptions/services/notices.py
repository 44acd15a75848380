"""The billing e-mails about one license: its owners, its plan, the invoice and payment
they concern, recorded in the outbox in the caller's transaction (R-NOTE-3)."""

from __future__ import annotations

from ..models import Invoice, Payment, PaymentMethod, Plan, Subscription
from ..notifications import enqueue
from ..state import get_state
from .invoices import named_lines


def mail_about(
    kind: str,
    subscription: Subscription,
    invoice: Invoice | None,
    payment: Payment | None,
    *,
    dedupe_key: str,
    **extra: object,
) -> None:
    """Record the ``kind`` e-mail about ``subscription`` once (``dedupe_key``)."""
    state = get_state()
    account = state.load_account(subscription.account_id)
    if account is None:
        return
    session = state.session
    method = session.get(PaymentMethod, payment.payment_method_id) if payment else None
    enqueue(
        kind,
        account,
        {
            "subscription": subscription,
            "plan": session.get(Plan, subscription.plan_id),
            "invoice": invoice,
            "lines": named_lines(invoice) if invoice else [],
            "payment": payment,
            "payment_method": method,
            "today": state.today(),
            **extra,
        },
        dedupe_key=dedupe_key,
    )
