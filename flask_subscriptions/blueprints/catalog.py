"""The plans page (R-BUY-1): every plan with its details and a Buy now button; for an
owner whose account already holds a valid license, its plan marked and **Change plan**
instead (R-BUY-8), since step 1 would refuse a second purchase."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..services.accounts import profile_currency as lookup
from ..services.licenses import held_plan
from ..services.plans import available_currencies, list_offers
from ..state import get_state
from ._access import current_account, is_owner

bp = Blueprint("catalog", __name__)


@bp.get("/plans")
def plans() -> str:
    state = get_state()
    currencies = available_currencies()
    account = current_account()
    profile_currency = None
    if account is not None:
        profile_currency = lookup(account.billing_id)
    wanted = profile_currency or request.args.get("currency") or state.settings.default_currency
    currency = wanted if wanted in currencies else (currencies[0] if currencies else wanted)
    held = held_plan(account.billing_id) if account is not None and is_owner(account) else None
    return render_template(
        "subscriptions/plans.html",
        offers=list_offers(currency),
        currency=currency,
        currencies=[] if profile_currency else currencies,
        held=held,
    )
