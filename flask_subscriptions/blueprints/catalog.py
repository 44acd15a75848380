"""The plans page (R-BUY-1): every plan with its details and a Buy now button."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..services.plans import choose_currency, list_offers
from ._access import current_account

bp = Blueprint("catalog", __name__)


@bp.get("/plans")
def plans() -> str:
    account = current_account()
    choice = choose_currency(account.billing_id if account else None, request.args.get("currency"))
    return render_template(
        "subscriptions/plans.html",
        offers=list_offers(choice.currency),
        currency=choice.currency,
        currencies=list(choice.switchable),
    )
