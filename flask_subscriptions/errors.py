"""The domain errors services raise. Each carries a message fit to show the person."""

from __future__ import annotations


class BillingError(Exception):
    """Base of every error a billing action can end with; nothing was changed."""

    status_code = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(BillingError):
    """That does not exist, or is not yours."""

    status_code = 404


class NotAnOwner(BillingError):
    """Only the account's owners can manage its billing."""

    status_code = 403


class PlanNotAnOption(BillingError):
    """You cannot change to a plan that is not an option."""


class AlreadySubscribed(BillingError):
    """You already hold a valid license: change its plan in License Management."""


class CurrencyLocked(BillingError):
    """This account already bills in another currency."""


class CouponInvalid(BillingError):
    """That coupon cannot be used."""


class PaymentMethodRequired(BillingError):
    """Choose or register a card first."""


class PaymentDeclined(BillingError):
    """The card was declined."""

    status_code = 402


class PaymentPending(BillingError):
    """The payment service has not confirmed the payment yet."""

    status_code = 202


class QuoteChanged(BillingError):
    """The amounts changed since you saw them: please confirm the new quote."""

    status_code = 409


class InsufficientBalance(BillingError):
    """The balance is not enough for that."""
