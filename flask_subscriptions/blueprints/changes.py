"""Change plan now (R-PRO): every choice shows its quote; Confirm change executes it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..access import owner_required
from ..accounts import BillingAccount
from ..core.quotes import NothingToChange
from ..errors import BillingError, QuoteChanged
from ..forms import INTERVALS, ChangeForm
from ..i18n import gettext as _
from ..services import changes as service
from ..services.licenses import License, find_license
from ..services.payment_methods import preselected_method_id, usable_methods
from ._errors import message, refuse, status_of

bp = Blueprint("changes", __name__, url_prefix="/licenses")


@bp.get("/<subs_id:subscription_id>/change")
@owner_required
def choose(account: BillingAccount, subscription_id: int) -> str | tuple[str, int]:
    """The choice, from the query string, and the quote for it."""
    try:
        license_ = find_license(account.billing_id, subscription_id)
    except BillingError as exc:
        return refuse(exc)
    held_addons = tuple(a.code for a in license_.addons)
    choice = service.ChangeRequest(
        plan_code=request.args.get("plan", license_.plan.code),
        interval=request.args.get("interval", license_.subscription.interval),
        addon_codes=tuple(request.args.getlist("addons"))
        if "plan" in request.args
        else held_addons,
    )
    return _render(account, license_, choice)


@bp.post("/<subs_id:subscription_id>/change")
@owner_required
def confirm(account: BillingAccount, subscription_id: int) -> str | Response | tuple[str, int]:
    form = ChangeForm()
    choice = service.ChangeRequest(
        form.plan.data or "", form.interval.data or "", tuple(form.addons.data or ())
    )
    if not form.validate_on_submit():
        flash(_("The form expired or was changed; please look at the quote again."), "error")
        return _render_again(account, subscription_id, choice, status=400)
    try:
        service.apply_change(
            account, subscription_id, choice, form.fingerprint.data, form.payment_method.data
        )
    except QuoteChanged as exc:
        flash(_("%(problem)s Nothing was changed.", problem=message(exc)), "error")
        return _render_again(account, subscription_id, choice, status=409)
    except BillingError as exc:
        flash(message(exc), "error")
        return _render_again(account, subscription_id, choice, status=status_of(exc))
    flash(_("Your plan was changed."), "success")
    return redirect(url_for("subscriptions.licenses.index"))


def _render_again(
    account: BillingAccount, subscription_id: int, choice: service.ChangeRequest, status: int
) -> tuple[str, int]:
    """After a refused POST the license is read again: the attempt may have changed it."""
    try:
        license_ = find_license(account.billing_id, subscription_id)
    except BillingError as exc:
        return refuse(exc)
    return _render(account, license_, choice, status)


def _render(
    account: BillingAccount, license_: License, choice: service.ChangeRequest, status: int = 200
) -> tuple[str, int]:
    quote, problem = None, None
    try:
        quote = service.quote_license(account, license_, choice)
    except NothingToChange:
        problem = None
    except BillingError as exc:
        problem = message(exc)
        status = max(status, status_of(exc)) if status != 200 else status_of(exc)
    methods = usable_methods(account.billing_id)
    page = render_template(
        "subscriptions/change.html",
        license=license_,
        choice=choice,
        quote=quote,
        problem=problem,
        options=license_.renewal_options,
        intervals=INTERVALS,
        methods=methods,
        chosen=preselected_method_id(account.billing_id, methods),
        form=ChangeForm(
            formdata=None,
            plan=choice.plan_code,
            interval=choice.interval,
            fingerprint=quote.quote.fingerprint if quote else "",
        ),
    )
    return page, status
