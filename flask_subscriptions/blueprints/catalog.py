"""The plans page (R-BUY-1): every plan with its details and a Buy now button; for an
owner whose account already holds a valid license, its plan marked and **Change plan**
instead (R-BUY-8), since step 1 would refuse a second purchase."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..access import current_account, is_owner
from ..services.licenses import held_plan
from ..services.plans import choose_currency, current_catalog, list_offers

bp = Blueprint("catalog", __name__)


@bp.get("/plans")
def plans() -> str:
    account = current_account()
    catalog = current_catalog()  # this process's copy, unless the catalog changed
    account_id = account.billing_id if account else None
    choice = choose_currency(account_id, request.args.get("currency"), catalog)
    owner = account is not None and is_owner(account)
    held = held_plan(account.billing_id, catalog) if account is not None and owner else None
    return render_template(
        "subscriptions/plans.html",
        offers=list_offers(choice.currency, catalog),
        currency=choice.currency,
        currencies=list(choice.switchable),
        held=held,
    )
