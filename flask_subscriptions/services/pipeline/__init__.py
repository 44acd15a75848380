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

from .charging import answered_in_one_call, charge
from .drafts import (
    OPEN_STATUSES,
    Attempt,
    Card,
    Draft,
    Entry,
    Handler,
    Outcomes,
    Reserved,
    attempt_open,
    card_of,
    invoice_number,
    one_by_one,
    payment_key,
)
from .recording import Recorded, charge_and_record, record, record_outcome, reserved_payment
from .reserving import open_attempts, reserve

__all__ = [
    "OPEN_STATUSES",
    "Attempt",
    "Card",
    "Draft",
    "Entry",
    "Handler",
    "Outcomes",
    "Recorded",
    "Reserved",
    "answered_in_one_call",
    "attempt_open",
    "card_of",
    "charge",
    "charge_and_record",
    "invoice_number",
    "one_by_one",
    "open_attempts",
    "payment_key",
    "record",
    "record_outcome",
    "reserve",
    "reserved_payment",
]
