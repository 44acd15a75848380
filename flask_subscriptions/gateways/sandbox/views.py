"""Sandbox Pay's hosted pages: the card form and the 3-D Secure stand-in.

They play an external service's pages, so they render their own standalone
templates (``sandbox_pay/*.html``), never the host's layout, and a card number
is only ever posted here (R-BUY-4, R-SEC-1).

``SandboxGateway.init_app`` mounts them; they ask the app's Sandbox Pay only for what
:class:`SandboxPay` lists, so this module does not import the service that mounts it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from flask import Blueprint, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField, SubmitField
from wtforms.validators import ValidationError

from ...i18n import N_, gettext, lazy_gettext
from ..base import CardSetupFailed, ChargeStatus, GatewayError
from .cards import TEST_CARDS, brand_of, luhn_valid, normalize_number
from .hosting import EXTENSION_KEY, is_safe_return_url, with_query
from .storage import SandboxCharge, SetupSession

blueprint = Blueprint(
    "sandbox_pay", __name__, template_folder=str(Path(__file__).parents[2] / "templates")
)

#: What ``_new_id`` makes (``seti_…``, ``ch_…``): anything else names nothing, and is never
#: sent to the storage (PostgreSQL refuses a NUL byte in a text comparison: a 500).
_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
_NOT_FOUND = N_("This page does not exist, or has expired.")
_EXPIRY = re.compile(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*")
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                 "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip


class SandboxPay(Protocol):
    """What the pages ask of the service behind them (``SandboxGateway``)."""

    today: Callable[[], date]

    def setup_session(self, session_id: str) -> SetupSession | None: ...

    def register_card(self, session_id: str, digits: str, exp_month: int, exp_year: int) -> str: ...

    def charge_by_id(self, charge_id: str) -> SandboxCharge | None: ...

    def complete_authentication(self, charge_id: str, succeeded: bool) -> SandboxCharge | None: ...


class CardForm(FlaskForm):  # type: ignore[misc]
    number = StringField(lazy_gettext("Card number"))
    expiry = StringField(lazy_gettext("Expiry date (MM/YY)"))
    cvc = StringField(lazy_gettext("Security code (CVC)"))

    def __init__(self, today: date, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.today = today
        self.digits = ""
        self.exp_month = self.exp_year = 0

    def validate_number(self, field: StringField) -> None:
        digits = normalize_number(field.data or "")
        if digits is None:
            raise ValidationError(gettext("Enter a card number of 13 to 19 digits."))
        if not luhn_valid(digits):
            raise ValidationError(gettext("Your card number is invalid."))
        self.digits = digits

    def validate_expiry(self, field: StringField) -> None:
        match = _EXPIRY.fullmatch(field.data or "")
        if match is None or not 1 <= int(match[1]) <= 12:
            raise ValidationError(gettext("Enter the expiry date as MM/YY."))
        month, year = int(match[1]), int(match[2])
        year += 2000 if year < 100 else 0
        if (year, month) < (self.today.year, self.today.month):
            raise ValidationError(gettext("Your card's expiration date is in the past."))
        self.exp_month, self.exp_year = month, year

    def validate_cvc(self, field: StringField) -> None:
        length = 4 if self.digits and brand_of(self.digits) == "amex" else 3
        value = (field.data or "").strip()
        if len(value) != length or not value.isascii() or not value.isdigit():
            raise ValidationError(
                gettext("Enter the %(length)s-digit security code.", length=length)
            )


class AuthenticateForm(FlaskForm):  # type: ignore[misc]
    complete = SubmitField(lazy_gettext("Complete authentication"))
    fail = SubmitField(lazy_gettext("Fail authentication"))


@blueprint.after_request
def _hosted_page_headers(response: Response) -> Response:
    # A payment page is never cached, framed, or leaked through the Referer header.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blueprint.route("/setup/<session_id>", methods=["GET", "POST"])
def setup(session_id: str) -> ResponseReturnValue:
    gateway = _gateway()
    session = gateway.setup_session(session_id) if _ID.fullmatch(session_id) else None
    if session is None:
        return _error(_NOT_FOUND, 404)
    if not is_safe_return_url(session.return_url, request.host):
        return _error(N_("This card form cannot send you back to the address it was given."), 400)
    if session.card_token:
        return redirect(with_query(session.return_url, setup_reference=session.id))
    form = CardForm(today=gateway.today())
    error = None
    if form.validate_on_submit():
        try:
            gateway.register_card(session.id, form.digits, form.exp_month, form.exp_year)
        except CardSetupFailed as exc:
            error = exc.message
        except GatewayError:
            error = gettext("Sandbox Pay is unavailable right now. Please try again.")
        else:
            return redirect(with_query(session.return_url, setup_reference=session.id))
    elif "csrf_token" in form.errors:
        error = gettext("This form has expired. Please try again.")
    form.number.data = form.cvc.data = ""  # never echo a card number or code back
    cancel_url = with_query(session.return_url, setup_cancelled="1")
    return render_template(
        "sandbox_pay/setup.html", form=form, error=error, cancel_url=cancel_url, cards=TEST_CARDS
    )


@blueprint.route("/authenticate/<charge_id>", methods=["GET", "POST"])
def authenticate(charge_id: str) -> ResponseReturnValue:
    gateway = _gateway()
    charge = gateway.charge_by_id(charge_id) if _ID.fullmatch(charge_id) else None
    if charge is None:
        return _error(_NOT_FOUND, 404)
    form = AuthenticateForm()
    pending = charge.status == ChargeStatus.REQUIRES_ACTION.value
    # An off-session charge (a renewal) has no return URL of its own: the page that sent
    # the person here names itself in ``next``.
    return_url = charge.return_url or request.args.get("next")
    if return_url and not is_safe_return_url(return_url, request.host):
        return_url = None
    if pending and form.validate_on_submit():
        charge = gateway.complete_authentication(charge_id, succeeded=bool(form.complete.data))
        assert charge is not None
        if return_url:
            return redirect(with_query(return_url, charge_id=charge.id))
    return render_template(
        "sandbox_pay/authenticate.html",
        form=form,
        charge=charge,
        pending=charge.status == ChargeStatus.REQUIRES_ACTION.value,
        amount=format_amount(charge.amount, charge.currency),
        return_url=return_url,
    )


def format_amount(amount: int, currency: str) -> str:
    """Integer arithmetic only (R-MON-1); the sandbox knows just 0- and 2-decimal currencies."""
    if currency.lower() in _ZERO_DECIMAL:
        return f"{amount:,} {currency.upper()}"
    return f"{amount // 100:,}.{amount % 100:02d} {currency.upper()}"


def _gateway() -> SandboxPay:
    gateway: SandboxPay = current_app.extensions[EXTENSION_KEY].gateway
    return gateway


def _error(message: str, status: int) -> ResponseReturnValue:
    return render_template("sandbox_pay/error.html", message=gettext(message)), status
