"""Checkout in five steps (R-BUY-1..9): confirm order, sign in, payment method,
confirmation, completion. Every step prices the order again on the server."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..access import current_account, is_owner, owner_required
from ..accounts import BillingAccount
from ..errors import AlreadySubscribed, BillingError, NotAnOwner, NotFound, QuoteChanged
from ..forms import INTERVALS, ActionForm, ChooseCardForm, CouponForm, OrderForm, PlaceOrderForm
from ..i18n import current_locale
from ..i18n import gettext as _
from ..models import Order
from ..services import checkout as service
from ..services.payment_methods import preselected_method_id, start_registration, usable_methods
from ..services.plans import choose_currency, list_offers
from ..services.profiles import remember_locale
from ..state import get_state
from ._errors import fail, message, refuse, status_of

bp = Blueprint("checkout", __name__)

_SESSION_KEY = "subs_orders"


@bp.route("/checkout/<plan_code>", methods=["GET", "POST"])
def order(plan_code: str) -> str | Response | tuple[str, int]:
    """Step 1: confirm the order; **To Payment Methods** records it and goes on (R-BUY-2).

    A visitor may start an order (they sign in at step 2); a signed-in person who is not an
    owner of the account they act for sees why they cannot, and their post is refused
    before anything is written (R-SEC-2).
    """
    account = current_account() if current_user.is_authenticated else None
    member = current_user.is_authenticated and not is_owner(account)
    if member and request.method == "POST":
        return refuse(NotAnOwner())
    requested = request.values.get("currency")
    choice = choose_currency(account.billing_id if account else None, requested)
    currency = choice.currency
    offer = next(
        (o for o in list_offers(currency) if o.plan.code == plan_code and o.purchasable), None
    )
    unsold = requested is not None and requested != currency and requested not in choice.switchable
    if offer is None or (request.method == "POST" and unsold):
        return refuse(NotFound(code="plan_not_for_sale"))
    form = OrderForm(interval=request.args.get("interval", "month"), currency=currency)
    already = None
    if form.validate_on_submit():
        try:
            new = service.start_order(
                plan_code,
                form.interval.data,
                form.currency.data,
                list(form.addons.data or []),
                account,
            )
        except AlreadySubscribed as exc:
            already = message(exc)
        except BillingError as exc:
            return refuse(exc)
        else:
            session[_SESSION_KEY] = [*session.get(_SESSION_KEY, [])[-9:], new.key]
            return redirect(url_for(".payment", key=new.key))
    elif request.method == "POST":
        return fail(_("Choose a billing interval the plan is sold for."), 400)
    if member:
        already = message(NotAnOwner())
    elif already is None and account is not None:
        already = _already_subscribed(account, currency)
    intervals = [(i, label) for i, label in INTERVALS.items() if i in offer.prices]
    return render_template(
        "subscriptions/checkout/order.html",
        offer=offer,
        form=form,
        intervals=intervals,
        currency=currency,
        already=already,
        step=1,
    )


@bp.route("/orders/<key>/payment", methods=["GET", "POST"])
@owner_required
def payment(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    """Step 3: a registered card, or **Use another card** (R-BUY-4)."""
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    methods = usable_methods(account.billing_id)
    form = ChooseCardForm()
    status = 200
    if form.validate_on_submit():
        try:
            service.choose_payment_method(found, account, form.payment_method.data)
        except BillingError as exc:
            flash(message(exc), "error")
            status = status_of(exc)
        else:
            return redirect(url_for(".confirm", key=key))
    elif request.method == "POST":  # no card chosen, or no valid CSRF token: refused
        flash(_("Choose a card, or use another card."), "error")
        status = 400
    chosen = (
        request.args.get("card", type=int)
        or found.payment_method_id
        or preselected_method_id(account.billing_id, methods)
    )
    page = render_template(
        "subscriptions/checkout/payment.html",
        order=found,
        methods=methods,
        chosen=chosen,
        form=form,
        action_form=ActionForm(),
        step=3,
    )
    return page, status


@bp.post("/orders/<key>/new-card")
@owner_required
def new_card(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    """**Use another card**: the payment service's own form (its hosted page, or its fields
    embedded in a checkout page), then back to step 3 with the new card selected."""
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    if not ActionForm().validate_on_submit():
        return fail(_("The form expired; please try again."), 400)
    back = url_for(".payment", key=key)
    return_url = url_for("subscriptions.payment_methods.finish", next=back, _external=True)
    try:
        setup = start_registration(account, return_url)
    except BillingError as exc:
        return refuse(exc)
    if setup.redirect_url:
        return redirect(setup.redirect_url)
    return render_template(
        "subscriptions/checkout/new_card.html",
        setup=setup,
        return_url=return_url,
        order=found,
        step=3,
    )


@bp.get("/orders/<key>/confirm")
@owner_required
def confirm(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    """Step 4: items, discount, balance, total, card, and the no-refund notice (R-BUY-5)."""
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    if found.state != "open":
        return redirect(url_for(".complete", key=key))
    if found.payment_method_id is None:
        return redirect(url_for(".payment", key=key))
    return _render_confirm(found, account)


@bp.post("/orders/<key>/coupon")
@owner_required
def coupon(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    form = CouponForm()
    if not form.validate_on_submit():
        return _render_confirm(found, account, coupon_form=form, status=400)
    try:
        applied = service.apply_coupon(found, account, form.code.data)
    except BillingError as exc:
        form.code.errors = [message(exc)]
        return _render_confirm(found, account, coupon_form=form, status=400)
    flash(_("Coupon %(code)s applied.", code=applied.code), "success")
    return redirect(url_for(".confirm", key=key))


@bp.post("/orders/<key>/coupon/remove")
@owner_required
def remove_coupon(account: BillingAccount, key: str) -> Response | tuple[str, int]:
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    if not ActionForm().validate_on_submit():
        return fail(_("The form expired; please try again."), 400)
    try:
        service.remove_coupon(found)
    except BillingError as exc:
        return refuse(exc)
    flash(_("Coupon removed."), "success")
    return redirect(url_for(".confirm", key=key))


@bp.post("/orders/<key>/place")
@owner_required
def place(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    """**Place Order**: charges once however often it is posted (R-BUY-6)."""
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    form = PlaceOrderForm()
    if not form.validate_on_submit():
        return fail(_("The form expired or was changed; please review your order again."), 400)
    try:
        placed = service.place_order(
            key,
            account,
            form.fingerprint.data,
            return_url=url_for(".complete", key=key, _external=True),
        )
    except QuoteChanged as exc:
        flash(message(exc), "error")
        return _render_confirm(found, account, status=409)
    except BillingError as exc:
        flash(message(exc), "error")
        return _render_confirm(found, account, status=status_of(exc))
    _remember_language(account)
    if placed.state == "open":  # declined: say why, nothing was bought
        flash(placed.failure_message or _("The card was declined."), "error")
        return redirect(url_for(".payment", key=key))
    action = service.pending_action_url(placed)
    if action:
        return redirect(action)
    return redirect(url_for(".complete", key=key))


@bp.get("/orders/<key>/complete")
@owner_required
def complete(account: BillingAccount, key: str) -> str | Response | tuple[str, int]:
    """Step 5: the completion page; or "payment pending" until the outcome is known."""
    found = _find(key, account)
    if isinstance(found, tuple):
        return found
    found = service.refresh_order(found)
    if found.state == "open":
        if found.failure_message:
            flash(found.failure_message, "error")
        return redirect(url_for(".payment", key=key))
    return render_template(
        "subscriptions/checkout/complete.html", summary=service.completion(found), step=5
    )


def _render_confirm(
    found: Order,
    account: BillingAccount,
    *,
    coupon_form: CouponForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    try:
        view = service.view_order(found, account)
    except BillingError as exc:
        return refuse(exc)
    page = render_template(
        "subscriptions/checkout/confirm.html",
        view=view,
        step=4,
        coupon_form=coupon_form or CouponForm(formdata=None),
        place_form=PlaceOrderForm(fingerprint=view.quote.fingerprint),
        action_form=ActionForm(),
    )
    return page, status


def _find(key: str, account: BillingAccount) -> Order | tuple[str, int]:
    try:
        return service.find_order(key, account, may_claim=key in session.get(_SESSION_KEY, []))
    except BillingError as exc:
        return refuse(exc)


def _already_subscribed(account: BillingAccount, currency: str) -> str | None:
    try:
        service.check_can_buy(account.billing_id, currency)
    except BillingError as exc:
        return message(exc)
    return None


def _remember_language(account: BillingAccount) -> None:
    """The language the owner buys in (when it is not the configured one) is the account's
    from now on: its renewals' receipts are written by jobs, with no request to choose."""
    chosen = current_locale()
    if chosen != get_state().settings.locale:
        remember_locale(account.billing_id, chosen)
