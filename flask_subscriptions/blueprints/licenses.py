"""License Management (R-LIC-1): the account's licenses, current and past."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..accounts import BillingAccount
from ..services.licenses import list_licenses
from ._access import owner_required

bp = Blueprint("licenses", __name__, url_prefix="/licenses")


@bp.get("")
@owner_required
def index(account: BillingAccount) -> str:
    return render_template(
        "subscriptions/licenses.html", licenses=list_licenses(account.billing_id)
    )
