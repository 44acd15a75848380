"""Every domain error the services raise, in one module (R-I18N-2).

An error is data: a stable ``code`` (snake_case, the key of its sentence in
:data:`flask_subscriptions.messages.MESSAGES`) and the ``values`` that sentence needs. It
carries no sentence and no HTTP status, because both belong to whoever shows it: a page
picks the status (``blueprints/_errors.py``) and the sentence in the person's language, a
log or the CLI the English one (``str(error)``).

A class says what kind of refusal it is, so callers can catch it (``CouponInvalid``,
``PaymentDeclined``, …); a code refines it (``CouponInvalid(code="coupon_expired",
coupon="SAVE10")``). Raising a class without a code means its ``default_code``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from .messages import sentence


class BillingError(Exception):
    """Base of every error a billing action can end with; nothing was changed."""

    #: The code of a bare ``raise`` of this class.
    default_code: ClassVar[str] = "billing_error"

    def __init__(self, *, code: str | None = None, **values: object) -> None:
        self.code: str = code or self.default_code
        self.values: dict[str, object] = values
        super().__init__(self.code)

    def __str__(self) -> str:
        """The English sentence, so a log line or a traceback reads like the page did."""
        return sentence(self)

    def __repr__(self) -> str:
        shown = "".join(f", {key}={value!r}" for key, value in self.values.items())
        return f"{type(self).__name__}(code={self.code!r}{shown})"

    def __reduce__(self) -> tuple[Callable[..., BillingError], tuple[()]]:
        """Keyword-only arguments survive pickling (an error crossing a process pool)."""
        values: dict[str, Any] = self.values
        return partial(type(self), code=self.code, **values), ()


class NotFound(BillingError):
    """That does not exist, or does not belong to the account (R-SEC-2)."""

    default_code = "not_found"


class NotAnOwner(BillingError):
    """The person is not one of the account's owners (R-SEC-2)."""

    default_code = "not_an_owner"


class RequestRefused(BillingError):
    """A request no page of ours accepts, whatever it asks for (R-SEC-1, R-SEC-4)."""

    default_code = "request_refused"


class PlanNotAnOption(BillingError):
    """The plan, add-on or price asked for is not among the license's options (R-CAT-2)."""

    default_code = "plan_not_an_option"


class AlreadySubscribed(BillingError):
    """The account holds a valid paid license: a second purchase is refused (R-BUY-8)."""

    default_code = "already_subscribed"


class CurrencyLocked(BillingError):
    """The account bills in another currency, fixed at its first purchase (R-MON-3)."""

    default_code = "currency_locked"


class CouponInvalid(BillingError):
    """The coupon cannot be used; its code says why (R-CPN-2)."""

    default_code = "coupon_invalid"


class PaymentMethodRequired(BillingError):
    """A card is needed and none usable was chosen."""

    default_code = "payment_method_required"


class PaymentDeclined(BillingError):
    """The card charge was declined; the gateway's own words may come as ``reason``."""

    default_code = "card_declined"


class PaymentPending(BillingError):
    """The payment service has not confirmed the payment yet (R-DUN-6)."""

    default_code = "payment_pending"


class QuoteChanged(BillingError):
    """What the person confirmed is no longer what would happen (R-BUY-9, R-PRO-7)."""

    default_code = "quote_changed"


class BalanceChanged(QuoteChanged):
    """Another action moved the balance between reading and writing it (R-BAL-1)."""

    default_code = "balance_changed"


class InsufficientBalance(BillingError):
    """The balance would go negative (R-BAL-1)."""

    default_code = "insufficient_balance"


class InvalidEmail(BillingError):
    """A billing address that is not one plain address (R-NOTE-2, R-SEC-4)."""

    default_code = "invalid_email"


class UsageInvalid(BillingError):
    """A usage report that is refused; nothing was recorded (R-USE-1, R-SEC-4)."""

    default_code = "usage_invalid"


class UsageImportError(UsageInvalid):
    """A usage file with bad rows; nothing was imported.

    ``problems`` holds one ``usage_line`` error per bad line, in line order, at most
    ``MAX_PROBLEMS_SHOWN`` of them; ``more`` counts the rest, so a file of a million bad
    rows makes a readable message. ``errors`` keeps every one for a caller that wants them.
    """

    default_code = "usage_import_failed"
    MAX_PROBLEMS_SHOWN: ClassVar[int] = 20

    def __init__(self, *, problems: tuple[UsageInvalid, ...]) -> None:
        shown, more = problems[: self.MAX_PROBLEMS_SHOWN], len(problems) - self.MAX_PROBLEMS_SHOWN
        if more > 0:
            super().__init__(code="usage_import_failed_more", problems=shown, more=more)
        else:
            super().__init__(problems=shown)
        self.errors = problems

    def __reduce__(self) -> tuple[Callable[..., BillingError], tuple[()]]:
        return partial(type(self), problems=self.errors), ()


class PurchaseInProgress(BillingError):
    """Another purchase for the account is being paid right now (R-BUY-6)."""

    default_code = "purchase_in_progress"


class OrderAlreadyPlaced(BillingError):
    """The order was placed already; it cannot be changed or placed again (R-BUY-6)."""

    default_code = "order_already_placed"


class CardRegistrationFailed(BillingError):
    """The payment service refused the card; its words may come as ``reason``."""

    default_code = "card_registration_failed"


class PaymentServiceUnavailable(BillingError):
    """The payment service could not be reached; nothing was changed."""

    default_code = "payment_service_unavailable"


class NothingUnpaid(BillingError):
    """A settlement was asked for, but nothing is unpaid (R-DUN-3)."""

    default_code = "nothing_unpaid"


class SettlementDeclined(BillingError):
    """The settlement's charge was declined; nothing was paid (R-DUN-3)."""

    default_code = "settlement_declined"


class PriceUnavailable(BillingError):
    """The plan has no price for that interval and currency."""

    default_code = "price_unavailable"


class NothingToWithdraw(BillingError):
    """A withdrawal was asked for with no balance (R-BAL-2)."""

    default_code = "nothing_to_withdraw"


class WithdrawalFailed(BillingError):
    """The payout failed and the balance was restored (R-BAL-2)."""

    default_code = "withdrawal_failed"


class ChangeNotPossible(BillingError):
    """The license cannot be changed now; its code says why (R-PRO, R-LIC)."""

    default_code = "change_not_possible"


class SupportActionRefused(BillingError):
    """A support action that cannot be done as asked; its code says why (R-OPS-1)."""

    default_code = "support_action_refused"
