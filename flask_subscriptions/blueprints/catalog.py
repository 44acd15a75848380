"""The plans page (R-BUY-1): every plan with its details and a Buy now button; for an
owner whose account already holds a valid license, its plan marked and **Change plan**
instead (R-BUY-8), since step 1 would refuse a second purchase."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..access import current_account, is_owner
from ..fragments import plan_cards
from ..services.plans import list_offers
from ..services.plans_page import read_plans_page

bp = Blueprint("catalog", __name__)


@bp.get("/plans")
def plans() -> str:
    account = current_account()
    owner = account is not None and is_owner(account)
    account_id = account.billing_id if account is not None else None
    page = read_plans_page(account_id, request.args.get("currency"), owner)
    currency = page.currency.currency
    offers = list_offers(currency, page.catalog)
    return render_template(
        "subscriptions/plans.html",
        offers=offers,
        currency=currency,
        currencies=list(page.currency.switchable),
        held=page.held,
        plan_cards=plan_cards(offers, currency, page.held, page.catalog.version),
    )
