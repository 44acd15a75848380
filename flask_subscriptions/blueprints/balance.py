"""The Balance page (R-BAL-1..3): the balance, its history, and Withdraw balance."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from ..access import owner_required
from ..accounts import BillingAccount
from ..errors import BillingError
from ..forms import WithdrawForm
from ..i18n import gettext as _
from ..services.balance import balance_and_history
from ..services.paging import page_size
from ..services.withdrawals import withdraw, withdrawal_quote
from ..state import get_state
from ._errors import fail, message
from ._paging import page_cursor

bp = Blueprint("balance", __name__, url_prefix="/balance")


@bp.get("")
@owner_required
def index(account: BillingAccount) -> str:
    balance, entries = balance_and_history(account.billing_id, page_cursor((int,)), page_size())
    return render_template(
        "subscriptions/balance.html",
        balance=balance,
        entries=entries.items,
        pager=entries,
    )


@bp.get("/withdraw")
@owner_required
def review(account: BillingAccount) -> str | Response:
    """Withdraw balance: the amount, the fee and the net, before anything happens."""
    try:
        quote = withdrawal_quote(account.billing_id)
    except BillingError as exc:
        flash(message(exc), "error")
        return redirect(url_for(".index"))
    return render_template(
        "subscriptions/withdraw.html",
        quote=quote,
        fee_percent=get_state().settings.withdrawal_fee_percent,
        form=WithdrawForm(formdata=None, seq=quote.seq),
    )


@bp.post("/withdraw")
@owner_required
def confirm(account: BillingAccount) -> Response | tuple[str, int]:
    form = WithdrawForm()
    if not form.validate_on_submit():
        return fail(_("The form expired; please look at the amounts again."), 400)
    try:
        done = withdraw(account, form.seq.data)
    except BillingError as exc:
        flash(message(exc), "error")
        return redirect(url_for(".index"))
    if done.status == "pending":
        flash(_("Your withdrawal is being processed."), "success")
    else:
        flash(_("Your withdrawal was paid out."), "success")
    return redirect(url_for(".index"))
