"""The payment methods page (R-BUY-10): list, register, set default, remove; and the
payment-notification address (R-NOTE-2)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..access import owner_required, safe_next
from ..accounts import BillingAccount
from ..errors import BillingError
from ..forms import ActionForm, BillingEmailForm
from ..i18n import gettext as _
from ..models import PaymentMethod
from ..services import payment_methods as service
from ..services.profiles import set_billing_email
from ..state import get_state
from ._errors import fail, message, refuse

bp = Blueprint("payment_methods", __name__, url_prefix="/payment-methods")


@bp.get("")
@owner_required
def index(account: BillingAccount) -> str:
    return _render(account)


def _render(
    account: BillingAccount,
    removing: PaymentMethod | None = None,
    at_risk: list[service.RenewalAtRisk] | None = None,
) -> str:
    cards = service.methods_and_default(account.billing_id)
    return render_template(
        "subscriptions/payment_methods.html",
        methods=cards.methods,
        default_id=cards.default_id,
        today=get_state().today(),
        form=ActionForm(),
        email_form=BillingEmailForm(email=cards.billing_email),
        removing=removing,
        at_risk=at_risk or [],
    )


@bp.post("/register")
@owner_required
def register(account: BillingAccount) -> Response | tuple[str, int]:
    if not ActionForm().validate_on_submit():
        return fail(_("The form expired; please try again."), 400)
    next_url = safe_next(request.form.get("next"))
    return_url = url_for(".finish", next=next_url, _external=True)
    try:
        setup = service.start_registration(account, return_url)
    except BillingError as exc:
        return refuse(exc)
    if setup.redirect_url:
        return redirect(setup.redirect_url)
    return render_template(
        "subscriptions/payment_methods_embedded.html",
        setup=setup,  # type: ignore[return-value]
        return_url=return_url,
    )


@bp.get("/return")
@owner_required
def finish(account: BillingAccount) -> Response:
    next_url = safe_next(request.args.get("next")) or url_for(".index")
    if request.args.get("setup_cancelled"):
        flash(_("No card was registered."), "info")
        return redirect(next_url)
    reference = request.args.get("setup_reference", "")
    try:
        method = service.finish_registration(account, reference)
    except BillingError as exc:
        flash(message(exc), "error")
        return redirect(next_url)
    flash(_("%(card)s registered.", card=_card(method)), "success")
    return redirect(_with_card(next_url, method.id))


@bp.post("/<subs_id:method_id>/default")
@owner_required
def make_default(account: BillingAccount, method_id: int) -> Response | tuple[str, int]:
    if not ActionForm().validate_on_submit():
        return fail(_("The form expired; please try again."), 400)
    try:
        method = service.set_default(account, method_id)
    except BillingError as exc:
        return refuse(exc)
    flash(_("%(card)s is now your default card.", card=_card(method)), "success")
    return redirect(url_for(".index"))


@bp.post("/<subs_id:method_id>/remove")
@owner_required
def remove(account: BillingAccount, method_id: int) -> Response | tuple[str, int]:
    """Remove a card; one that the next renewal of a license needs only once the owner,
    warned that the renewal will then fail, confirms it."""
    if not ActionForm().validate_on_submit():
        return fail(_("The form expired; please try again."), 400)
    try:
        if not request.form.get("confirm"):
            method = service.find_method(account, method_id)
            at_risk = service.renewals_left_without_card(account.billing_id, method_id)
            if at_risk:  # asked first: the next renewal would fail without it
                return _render(account, method, at_risk), 200
        service.remove(account, method_id)
    except BillingError as exc:
        return refuse(exc)
    flash(_("The card was removed."), "success")
    return redirect(url_for(".index"))


@bp.post("/billing-email")
@owner_required
def billing_email(account: BillingAccount) -> Response | tuple[str, int]:
    form = BillingEmailForm()
    if not form.validate_on_submit():
        return fail(_("Enter a valid e-mail address."), 400)
    try:
        set_billing_email(account.billing_id, form.email.data)
    except BillingError as exc:
        return refuse(exc)
    flash(
        _("Payment notifications will go to %(email)s and every owner.", email=form.email.data)
        if form.email.data
        else _("Payment notifications will go to every owner."),
        "success",
    )
    return redirect(url_for(".index"))


def _card(method: PaymentMethod) -> str:
    return f"{method.brand.capitalize()} •••• {method.last4}"


def _with_card(url: str, method_id: int) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}card={method_id}"
