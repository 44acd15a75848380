"""The billing forms. Every one carries a CSRF token (Flask-WTF), and none has a card field:
card details go only to the payment service's own form (R-SEC-1, R-SEC-3)."""

from __future__ import annotations

import uuid

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp
from wtforms.widgets import HiddenInput

from .i18n import N_, lazy_gettext


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


INTERVALS = {"month": N_("Monthly"), "year": N_("Annual")}


class OrderForm(FlaskForm):
    interval = StringField(validators=[DataRequired(), AnyOf(list(INTERVALS))])
    currency = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Z]{3}$")])
    addons = SelectMultipleField(choices=[], validate_choice=False)


class ChooseCardForm(FlaskForm):
    payment_method = IntegerField(validators=[DataRequired(lazy_gettext("Choose a card."))])


class CouponForm(FlaskForm):
    code = StringField(
        lazy_gettext("Use Coupon"),
        validators=[DataRequired(lazy_gettext("Enter a coupon code.")), Length(max=64)],
    )


class PlaceOrderForm(FlaskForm):
    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])


class BillingEmailForm(FlaskForm):
    email = StringField(
        lazy_gettext("Payment-notification e-mail"), validators=[Optional(), Length(max=320)]
    )


class LicenseForm(FlaskForm):
    """The license page (R-LIC-3..5): the plan is checked against the options on the server."""

    auto_renewal = StringField(validators=[DataRequired(), AnyOf(["enabled", "disabled"])])
    renew_with = StringField(validators=[Optional(), Length(max=64)])


class SettleForm(FlaskForm):
    """Pay all unpaid (R-DUN-3): the quote shown, and the card to pay with."""

    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    payment_method = IntegerField(validators=[Optional()])


class ChangeForm(FlaskForm):
    """Confirm change (R-PRO-7): what was chosen, and the fingerprint of the quote shown."""

    plan = StringField(validators=[DataRequired(), Length(max=64)])
    interval = StringField(validators=[DataRequired(), AnyOf(list(INTERVALS))])
    addons = SelectMultipleField(choices=[], validate_choice=False)
    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    payment_method = IntegerField(validators=[Optional()])


class WithdrawForm(FlaskForm):
    """Confirm withdrawal (R-BAL-2): the balance the person saw, by its ledger position."""

    seq = IntegerField(widget=HiddenInput(), validators=[DataRequired()])


# --- support console (R-OPS-1): a reason and an idempotency key on every action --------


def new_key() -> str:
    """A fresh key for one showing of a form (a random value is right here: it names one
    person's one intention, and the audit entry makes it durable before anything runs)."""
    return uuid.uuid4().hex


class SupportActionForm(FlaskForm):
    """What every action needs; the action's own fields are read by its view."""

    key = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$")])
    reason = TextAreaField(lazy_gettext("Reason"), validators=[DataRequired(), Length(max=2000)])
