"""The support console at ``<prefix>/admin`` (R-OPS-1): find, see, act.

Views parse the request, call ``services.support`` / ``services.support_views`` and
render. Every action is a POST with a CSRF token, a reason and an idempotency key; where
money moves, a GET shows the quote (or the amounts) first and its form confirms it.
Everyone but the host's support people gets a 404; view-only support a 403 on an action.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..access import SupportAccess, support_required
from ..core.quotes import NothingToChange
from ..errors import BillingError, NotFound, SupportActionRefused
from ..forms import INTERVALS, SupportActionForm, new_key
from ..i18n import N_
from ..i18n import gettext as _
from ..receipt_content import receipt_filename, receipt_pdf
from ..services import support as service
from ..services import support_licenses as terms
from ..services.audit import Actor
from ..services.changes import ChangeRequest
from ..services.invoice_details import invoice_detail
from ..services.support_views import PAGED, account_view, find_accounts
from . import admin_metrics
from ._errors import message, status_of
from ._paging import page_cursor

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_blueprint(admin_metrics.bp)

_ACCOUNT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


@bp.context_processor
def _fresh_keys() -> dict[str, Any]:
    """Each action form on a page gets its own key (``new_key()`` in the template)."""
    return {"new_key": new_key}


def _actor(access: SupportAccess) -> Actor:
    return Actor(access.actor, "web")


def _form() -> SupportActionForm:
    return SupportActionForm(formdata=None, key=new_key())


def _int(name: str) -> int:
    """A positive whole number from the form or the query (R-SEC-4): else a 400."""
    raw = request.values.get(name, "")
    if not raw.isdigit() or len(raw) > 9 or int(raw) <= 0:
        abort(400, description=f"{name} must be a positive whole number.")
    return int(raw)


def _checked(account_id: str) -> str:
    if not _ACCOUNT_ID.fullmatch(account_id):
        abort(404)
    return account_id


@bp.get("")
@support_required()
def index(access: SupportAccess) -> str:
    """One search box over ids, e-mails, invoice numbers, payment references, last 4."""
    query = request.args.get("q", "").strip()
    found = find_accounts(query) if query else []
    return render_template("subscriptions/admin/index.html", query=query, found=found)


@bp.get("/accounts/<account_id>")
@support_required()
def account(access: SupportAccess, account_id: str) -> str | tuple[str, int]:
    return _account_page(access, _checked(account_id), cursors=True)


#: The sort key each list's cursor holds (``services/paging.py``).
_CURSOR_KINDS: dict[str, tuple[type, ...]] = {name: (int,) for name in PAGED}
_CURSOR_KINDS["invoices"] = (datetime, int)


def _account_page(
    access: SupportAccess, account_id: str, status: int = 200, *, cursors: bool = False
) -> tuple[str, int]:
    """The account; ``cursors``: each list at the page its link asks for (else the newest)."""
    pages = {n: page_cursor(k, f"{n}_") for n, k in _CURSOR_KINDS.items()} if cursors else {}
    view = account_view(account_id, pages)
    if not view.known:
        abort(404)
    page = render_template(
        "subscriptions/admin/account.html",
        view=view,
        access=access,
        form=_form(),
        intervals=INTERVALS,
        pager_endpoint="subscriptions.admin.account",
    )
    return page, status


@bp.get("/accounts/<account_id>/invoices/<ident>/receipt.pdf")
@support_required()
def receipt(access: SupportAccess, account_id: str, ident: str) -> Response:
    invoice = invoice_detail(_checked(account_id), ident)
    account = service.support_account(account_id) if invoice is not None else None
    if invoice is None or account is None or not invoice.receipt_available:
        abort(404)
    return Response(
        receipt_pdf(invoice, account),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{receipt_filename(invoice)}"',
            "Cache-Control": "private, no-store",
        },
    )


# --- quotes and reviews (GET: nothing changes) --------------------------------------------


@bp.get("/accounts/<account_id>/change")
@support_required(act=True)
def change_review(access: SupportAccess, account_id: str) -> str | tuple[str, int]:
    """The owner's quote for a change to any plan, with the confirm form (R-PRO-7)."""
    account_id = _checked(account_id)
    license_id = _int("license")
    end = request.args.get("end") == "1"
    try:
        choice = ChangeRequest(
            terms.free_plan_code() if end else request.args.get("plan", ""),
            "month" if end else request.args.get("interval", ""),
            () if end else tuple(request.args.getlist("addons")),
        )
        quote = service.change_quote(account_id, license_id, choice)
    except BillingError as exc:
        flash(message(exc), "error")
        return _account_page(access, account_id, status_of(exc))
    except NothingToChange:
        flash(message(SupportActionRefused(code="nothing_to_change")), "error")
        return _account_page(access, account_id, 400)
    return render_template(
        "subscriptions/admin/change.html",
        account_id=account_id,
        license_id=license_id,
        choice=choice,
        quote=quote,
        form=_form(),
        end=end,
    )


@bp.get("/accounts/<account_id>/review/<action>")
@support_required(act=True)
def review(access: SupportAccess, account_id: str, action: str) -> str | tuple[str, int]:
    """Credit and refunds: the amounts before and after, then Confirm."""
    account_id = _checked(account_id)
    if action not in ("grant_credit", "remove_credit", "refund"):
        abort(404)
    view = account_view(account_id)
    try:
        facts = _review_facts(view, action)
    except BillingError as exc:
        flash(message(exc), "error")
        return _account_page(access, account_id, status_of(exc))
    return render_template(
        "subscriptions/admin/review.html",
        view=view,
        action=action,
        facts=facts,
        form=_form(),
        fields={k: v for k, v in request.args.items() if k in ("amount", "payment", "to")},
    )


def _review_facts(view: Any, action: str) -> dict[str, Any]:
    if action == "refund":
        payment = service.refundable_charge(view.account_id, _int("payment"))
        amount = service.parse_amount(request.args.get("amount", ""), payment.currency)
        left = service.refundable(payment)
        if amount > left:
            raise SupportActionRefused(
                code="refund_too_large", refundable=service.shown_money(left, payment.currency)
            )
        to = request.args.get("to", "balance")
        if to not in ("balance", "card"):
            abort(400)
        return {"payment": payment, "amount": amount, "left": left, "to": to}
    currency = service.account_currency(view.account_id)
    amount = service.parse_amount(request.args.get("amount", ""), currency)
    after = view.balance.amount + (amount if action == "grant_credit" else -amount)
    if after < 0:
        raise SupportActionRefused(code="insufficient_balance")
    return {"amount": amount, "currency": currency, "after": after}


# --- actions (POST) --------------------------------------------------------------------------


def _act(
    access: SupportAccess, account_id: str, done: str, run: Callable[[Actor, str, str], object]
) -> Response | tuple[str, int]:
    """Validate the form, run the action once, and show the account with what came of it."""
    account_id = _checked(account_id)
    form = SupportActionForm()
    if not form.validate_on_submit():
        flash(message(SupportActionRefused(code="reason_required")), "error")
        return _account_page(access, account_id, 400)
    try:
        run(_actor(access), form.key.data or "", form.reason.data or "")
    except SupportActionRefused as exc:
        if exc.code == "action_already_done":
            flash(message(exc), "success")
            return redirect(url_for(".account", account_id=account_id), 303)
        flash(message(exc), "error")
        return _account_page(access, account_id, status_of(exc))
    except NotFound:
        abort(404)
    except BillingError as exc:
        flash(message(exc), "error")
        return _account_page(access, account_id, status_of(exc))
    flash(_(done), "success")
    return redirect(url_for(".account", account_id=account_id), 303)


def _change_choice() -> ChangeRequest:
    return ChangeRequest(
        request.form.get("plan", ""),
        request.form.get("interval", ""),
        tuple(request.form.getlist("addons")),
    )


@bp.post("/accounts/<account_id>/change")
@support_required(act=True)
def change(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    license_id, fingerprint = _int("license"), request.form.get("fingerprint", "")
    choice = _change_choice()
    return _act(
        access,
        account_id,
        N_("The plan was changed."),
        lambda actor, key, reason: service.change_plan_now(
            actor, key, account_id, license_id, choice, fingerprint, reason
        ),
    )


@bp.post("/accounts/<account_id>/schedule")
@support_required(act=True)
def schedule(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    license_id, plan = _int("license"), request.form.get("plan", "")
    return _act(
        access,
        account_id,
        N_("The plan change is scheduled for the next renewal."),
        lambda actor, key, reason: service.change_plan_at_renewal(
            actor, key, account_id, license_id, plan, reason
        ),
    )


@bp.post("/accounts/<account_id>/credit")
@support_required(act=True)
def credit(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    grant = request.form.get("direction") != "remove"
    amount = request.form.get("amount", "")
    return _act(
        access,
        account_id,
        N_("The credit was granted.") if grant else N_("The credit was removed."),
        lambda actor, key, reason: service.adjust_credit(
            actor, key, account_id, amount, reason, grant=grant
        ),
    )


@bp.post("/accounts/<account_id>/refund")
@support_required(act=True)
def refund(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    payment_id, amount = _int("payment"), request.form.get("amount", "")
    to = request.form.get("to", "")
    return _act(
        access,
        account_id,
        N_("The refund was made."),
        lambda actor, key, reason: service.refund(
            actor, key, account_id, payment_id, amount, to, reason
        ),
    )


@bp.post("/accounts/<account_id>/retry")
@support_required(act=True)
def retry(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    invoice_id = _int("invoice")
    return _act(
        access,
        account_id,
        N_("The retry was paid."),
        lambda actor, key, reason: terms.retry_invoice(actor, key, account_id, invoice_id, reason),
    )


@bp.post("/accounts/<account_id>/extend")
@support_required(act=True)
def extend(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    license_id, days = _int("license"), _int("days")
    return _act(
        access,
        account_id,
        N_("The term was extended."),
        lambda actor, key, reason: terms.extend_term(
            actor, key, account_id, license_id, days, reason
        ),
    )


@bp.post("/accounts/<account_id>/give-days")
@support_required(act=True)
def give_days(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    license_id, days = _int("license"), _int("days")
    return _act(
        access,
        account_id,
        N_("The license works again; the grace was extended."),
        lambda actor, key, reason: terms.give_days(
            actor, key, account_id, license_id, days, reason
        ),
    )


@bp.post("/accounts/<account_id>/end")
@support_required(act=True)
def end(access: SupportAccess, account_id: str) -> Response | tuple[str, int]:
    license_id = _int("license")
    fingerprint = request.form.get("fingerprint", "")
    if request.form.get("credit") == "1":
        return _act(
            access,
            account_id,
            N_("The license ended, with a prorated credit."),
            lambda actor, key, reason: terms.end_with_credit(
                actor, key, account_id, license_id, fingerprint, reason
            ),
        )
    return _act(
        access,
        account_id,
        N_("The license ended."),
        lambda actor, key, reason: terms.end_license(actor, key, account_id, license_id, reason),
    )


@bp.post("/accounts/<account_id>/emails/<int:message_id>/send")
@support_required(act=True)
def send_email(
    access: SupportAccess, account_id: str, message_id: int
) -> Response | tuple[str, int]:
    return _act(
        access,
        account_id,
        N_("The e-mail will be sent again."),
        lambda actor, key, reason: service.send_again(actor, key, account_id, message_id, reason),
    )
