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
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

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
    RequestRefused,
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

#: A refusal that comes as an HTTP status (an ``abort`` in an access check, a missing CSRF
#: token, a URL that matches no route), told as the domain error it amounts to.
HTTP_REFUSALS: Final[Mapping[int, BillingError]] = {
    400: RequestRefused(),
    401: NotAnOwner(code="sign_in_required"),
    403: NotAnOwner(),  # owner_required: only the account's owners see billing (R-SEC-2)
    404: NotFound(),
    405: RequestRefused(code="method_not_allowed"),
    409: QuoteChanged(code="conflict"),
}


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


def http_error(error: HTTPException) -> ResponseReturnValue:
    """A 4xx raised rather than returned (``abort`` in an access check, CSRF, routing) as
    our error page inside the host's layout; anything else is left as it is."""
    status = error.code or 500
    if not 400 <= status < 500:
        return error
    page, _ = fail(message(HTTP_REFUSALS.get(status) or BillingError()), status)
    response = error.get_response()
    response.set_data(page)
    response.mimetype = "text/html"
    return response
