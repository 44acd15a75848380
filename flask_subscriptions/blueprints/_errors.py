"""How a refused action is shown: the page says why, with the right status, and nothing
changed (R-SEC-4).

The services raise errors that carry a code and values (R-I18N-2); this module is where
the web picks the two things an error does not carry: the HTTP status (:data:`STATUS`)
and the sentence (:func:`message`, from the one table in ``flask_subscriptions.messages``,
where translation will plug in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flask import render_template

from ..errors import (
    BillingError,
    CardRegistrationFailed,
    NotAnOwner,
    NotFound,
    PaymentDeclined,
    PaymentPending,
    PaymentServiceUnavailable,
    PurchaseInProgress,
    QuoteChanged,
    SettlementDeclined,
    WithdrawalFailed,
)
from ..messages import sentence

#: The status of each kind of refusal; a subclass gets its nearest listed base's, and
#: anything not listed is a plain 400 (bad or refused input).
STATUS: Final[Mapping[type[BillingError], int]] = {
    NotFound: 404,
    NotAnOwner: 403,
    PaymentDeclined: 402,
    SettlementDeclined: 402,
    CardRegistrationFailed: 402,
    WithdrawalFailed: 402,
    PaymentPending: 202,
    QuoteChanged: 409,  # and BalanceChanged
    PurchaseInProgress: 409,
    PaymentServiceUnavailable: 503,
}
DEFAULT_STATUS: Final = 400


def status_of(error: BillingError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return DEFAULT_STATUS


def message(error: BillingError) -> str:
    """The sentence a person reads for ``error``."""
    return sentence(error)


def fail(text: str, status: int) -> tuple[str, int]:
    """The error page with ``text`` (a sentence the page itself owns, like a stale form's)."""
    return render_template("subscriptions/error.html", message=text, status=status), status


def refuse(error: BillingError) -> tuple[str, int]:
    """The error page for a refused action: its sentence, with its status."""
    return fail(message(error), status_of(error))
