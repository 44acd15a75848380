"""The page where an owner confirms a renewal charge their bank wants approved (3-D Secure).

It links to the gateway's ``action_url`` with ``next`` pointing back here; on every visit a
charge still waiting is looked up at the gateway, so coming back records how it ended (a
gateway that cannot be asked leaves it waiting: the page says so, and the reconciliation
job asks again later).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, render_template, url_for

from ..access import owner_required
from ..accounts import BillingAccount
from ..errors import BillingError
from ..services import three_d_secure as service
from ._errors import refuse

bp = Blueprint("authentication", __name__, url_prefix="/payments")


@bp.get("/<subs_id:payment_id>/authenticate")
@owner_required
def show(account: BillingAccount, payment_id: int) -> str | tuple[str, int]:
    try:
        waiting = service.refresh(service.find_waiting_payment(account.billing_id, payment_id))
    except BillingError as exc:
        return refuse(exc)
    back = url_for(".show", payment_id=payment_id, _external=True)
    action = waiting.payment.action_url
    return render_template(
        "subscriptions/authenticate_payment.html",
        waiting=waiting,
        action_link=_with_next(action, back) if action else None,
    )


def _with_next(url: str, back: str) -> str:
    """The gateway's page, told where to send the person afterwards (``Gateway`` protocol)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "next"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("next", back)])))
