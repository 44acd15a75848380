"""The billing forms. Every one carries a CSRF token (Flask-WTF), and none has a card field:
card details go only to the payment service's own form (R-SEC-1, R-SEC-3)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from babel.support import NullTranslations, Translations
from flask import current_app, has_request_context
from flask_babel import get_locale
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import HiddenField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.csrf.core import CSRFTokenField
from wtforms.i18n import messages_path
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp
from wtforms.widgets import HiddenInput

from .i18n import N_, lazy_gettext


class WTFormsWords:
    """WTForms' own words (its field labels and messages) in the request's language, as
    Flask-WTF gives them, but with each language's catalog read once per process:
    Flask-WTF reads it from disk in every request that builds a form."""

    def gettext(self, string: str) -> str:
        return str(_catalog().ugettext(string))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return str(_catalog().ungettext(singular, plural, n))


def _catalog() -> NullTranslations:
    if not has_request_context() or "babel" not in current_app.extensions:
        return _NULL  # Flask-WTF's own conditions for leaving the words as they are
    return _wtforms_catalog(str(get_locale()))


_NULL = NullTranslations()


@lru_cache(maxsize=32)
def _wtforms_catalog(locale: str) -> NullTranslations:
    return Translations.load(messages_path(), [locale], domain="wtforms")


_WORDS = WTFormsWords()


class BillingForm(FlaskForm):
    """Every billing form: Flask-WTF's (the CSRF token), with WTForms' words from
    :class:`WTFormsWords`."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form: Any) -> Any:
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _WORDS

        def render_field(self, field: Any, render_kw: dict[str, Any]) -> Any:
            """The CSRF token's hidden input, written as WTForms' ``HiddenInput`` writes it:
            its generic attribute handling was a third of the payment methods page's
            rendering (a page shows one per button)."""
            if isinstance(field, CSRFTokenField) and not render_kw and not field.render_kw:
                return _CSRF_INPUT % (field.id, field.name, field._value())
            return super().render_field(field, render_kw)


#: ``HiddenInput()(field)`` for a field without flags: its attributes in sorted order.
_CSRF_INPUT = Markup('<input id="%s" name="%s" type="hidden" value="%s">')


class ActionForm(BillingForm):
    """A button that changes something: only the CSRF token."""


INTERVALS = {"month": N_("Monthly"), "year": N_("Annual")}


class OrderForm(BillingForm):
    interval = StringField(validators=[DataRequired(), AnyOf(list(INTERVALS))])
    currency = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Z]{3}$")])
    addons = SelectMultipleField(choices=[], validate_choice=False)


class ChooseCardForm(BillingForm):
    payment_method = IntegerField(validators=[DataRequired(lazy_gettext("Choose a card."))])


class CouponForm(BillingForm):
    code = StringField(
        lazy_gettext("Use Coupon"),
        validators=[DataRequired(lazy_gettext("Enter a coupon code.")), Length(max=64)],
    )


class PlaceOrderForm(BillingForm):
    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])


class BillingEmailForm(BillingForm):
    email = StringField(
        lazy_gettext("Payment-notification e-mail"), validators=[Optional(), Length(max=320)]
    )


class LicenseForm(BillingForm):
    """The license page (R-LIC-3..5): the plan is checked against the options on the server."""

    auto_renewal = StringField(validators=[DataRequired(), AnyOf(["enabled", "disabled"])])
    renew_with = StringField(validators=[Optional(), Length(max=64)])


class SettleForm(BillingForm):
    """Pay all unpaid (R-DUN-3): the quote shown, and the card to pay with."""

    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    payment_method = IntegerField(validators=[Optional()])


class ChangeForm(BillingForm):
    """Confirm change (R-PRO-7): what was chosen, and the fingerprint of the quote shown."""

    plan = StringField(validators=[DataRequired(), Length(max=64)])
    interval = StringField(validators=[DataRequired(), AnyOf(list(INTERVALS))])
    addons = SelectMultipleField(choices=[], validate_choice=False)
    fingerprint = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    payment_method = IntegerField(validators=[Optional()])


class WithdrawForm(BillingForm):
    """Confirm withdrawal (R-BAL-2): the balance the person saw, by its ledger position."""

    seq = IntegerField(widget=HiddenInput(), validators=[DataRequired()])


# --- support console (R-OPS-1): a reason and an idempotency key on every action --------


def new_key() -> str:
    """A fresh key for one showing of a form (a random value is right here: it names one
    person's one intention, and the audit entry makes it durable before anything runs)."""
    return uuid.uuid4().hex


class SupportActionForm(BillingForm):
    """What every action needs; the action's own fields are read by its view."""

    key = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$")])
    reason = TextAreaField(lazy_gettext("Reason"), validators=[DataRequired(), Length(max=2000)])
