"""License Management (R-LIC): the list, and each license's page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..access import owner_required
from ..accounts import BillingAccount
from ..errors import BillingError
from ..forms import LicenseForm
from ..i18n import gettext as _
from ..services import licenses as service
from ..services.payment_methods import renews_without_card
from ..state import get_state
from ._errors import message, refuse, status_of

bp = Blueprint("licenses", __name__, url_prefix="/licenses")


@bp.get("")
@owner_required
def index(account: BillingAccount) -> str:
    return render_template(
        "subscriptions/licenses.html", licenses=service.list_licenses(account.billing_id)
    )


@bp.route("/<subs_id:subscription_id>", methods=["GET", "POST"])
@owner_required
def detail(account: BillingAccount, subscription_id: int) -> str | Response | tuple[str, int]:
    try:
        page = service.license_page(account.billing_id, subscription_id)
    except BillingError as exc:
        return refuse(exc)
    license_ = page.license
    form = LicenseForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                service.update_license(
                    account,
                    subscription_id,
                    auto_renew=form.auto_renewal.data == "enabled",
                    renew_with=form.renew_with.data or None,
                )
            except BillingError as exc:
                flash(message(exc), "error")
                status = status_of(exc)
            else:
                flash(_("Your license was saved."), "success")
                return redirect(url_for(".index"))
        else:
            flash(_("Choose Enabled or Disabled and a plan from the list."), "error")
            status = 400
    return render_template(
        "subscriptions/license.html",
        license=license_,
        form=form,
        options=page.options,
        dunning=service.dunning_notice(license_.subscription),
        no_renewal_card=renews_without_card(license_.subscription, page.renewal_card),
        support_email=get_state().settings.support_email,
    ), status
