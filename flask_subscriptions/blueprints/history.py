"""Subscription History (R-DUN-3, R-INV-1): every invoice, linked to its page, and Pay all
unpaid."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..access import owner_required
from ..accounts import BillingAccount
from ..errors import BillingError
from ..forms import SettleForm
from ..i18n import gettext as _
from ..services import settlement as service
from ..services.invoice_details import history_page
from ..services.paging import Cursor, page_size
from ..services.payment_methods import usable_and_preselected
from ._errors import message, status_of
from ._paging import page_cursor

bp = Blueprint("history", __name__, url_prefix="/history")


@bp.get("")
@owner_required
def index(account: BillingAccount) -> str | tuple[str, int]:
    return _render(account, cursor=page_cursor((datetime, int)))


@bp.post("/settle")
@owner_required
def settle(account: BillingAccount) -> str | Response | tuple[str, int]:
    form = SettleForm()
    if not form.validate_on_submit():
        flash(_("The form expired or was changed; please look at the amounts again."), "error")
        return _render(account, 400)
    try:
        settled = service.settle(account, form.fingerprint.data, form.payment_method.data)
    except BillingError as exc:
        flash(message(exc), "error")
        return _render(account, status_of(exc))
    if settled.status == "paid":
        flash(
            _("Thank you: everything unpaid is settled (%(number)s).", number=settled.number),
            "success",
        )
    # else it waits for the bank or the payment service: the page says so (R-DUN-6)
    return redirect(url_for(".index"))


def _render(
    account: BillingAccount, status: int = 200, cursor: Cursor | None = None
) -> tuple[str, int] | str:
    rows = history_page(account.billing_id, cursor or Cursor(), page_size())
    offer = service.settlement_for(account.billing_id, rows.owes)
    # The cards are for the Pay all form, shown only when something is unpaid.
    methods, preselected = usable_and_preselected(account.billing_id) if offer.quote else ([], None)
    page = render_template(
        "subscriptions/history.html",
        rows=rows.items,
        pager=rows,
        pager_endpoint="subscriptions.history.index",
        waiting=service.waiting_settlement(account.billing_id, [r.invoice for r in rows.items]),
        offer=offer,
        methods=methods,
        chosen=request.form.get("payment_method", type=int) or preselected,
        form=SettleForm(formdata=None, fingerprint=offer.quote.fingerprint if offer.quote else ""),
    )
    return (page, status) if status != 200 else page
