"""The example host's own pages: demo sign-in, home, feature pages, Mail and Test clock."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import HiddenField, IntegerField
from wtforms.validators import DataRequired, InputRequired, NumberRange

from flask_subscriptions import (
    BillingError,
    OffsetClock,
    current_subscriptions,
    get_entitlements,
    requires_feature,
)
from flask_subscriptions.access import safe_next
from flask_subscriptions.blueprints._errors import message
from flask_subscriptions.blueprints._paging import page_cursor
from flask_subscriptions.core.money import format_money
from flask_subscriptions.i18n import LANGUAGE_NAMES, LANGUAGES, current_locale
from flask_subscriptions.jobs import all_jobs, run_due_jobs
from flask_subscriptions.models import OutboxMessage, Plan, UsageReport
from flask_subscriptions.services.licenses import License, list_licenses
from flask_subscriptions.services.paging import keyset, page_of, page_size

from .models import Team, User, db

bp = Blueprint("example", __name__, template_folder="templates")

#: The feature pages: two add-ons and one every paid plan includes (restriction shows).
FEATURE_PAGES = ("operation", "marketing", "reports")
#: How far one press of the test clock may move time (it runs the jobs once per day).
MAX_CLOCK_DAYS = 400


class SignInForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])


class ClockForm(FlaskForm):
    days = IntegerField(
        "Days", default=1, validators=[DataRequired(), NumberRange(1, MAX_CLOCK_DAYS)]
    )


class ResetClockForm(FlaskForm):
    """The Reset clock button: only the CSRF token."""


# -- sign-in -------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response:
    form = SignInForm()
    if form.validate_on_submit():
        user = db.session.get(User, int(form.user_id.data)) if form.user_id.data.isdigit() else None
        if user is not None:
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("example.home"))
        flash("No such demo account.", "error")
    people = db.session.scalars(select(User).order_by(User.id)).all()
    return render_template("example/sign_in.html", people=people, form=form)


@bp.get("/language/<code>")
def language(code: str) -> Response:
    """The header's language switch: this browser's language from now on (the host's
    locale selector reads it); billing pages, e-mails sent now and receipts follow."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("example.home"))


@bp.post("/sign-out")
def sign_out() -> Response:
    if FlaskForm().validate_on_submit():
        logout_user()
    return redirect(url_for("example.home"))


# -- home: the acting account's current plan -----------------------------------------------


@dataclass(frozen=True)
class CurrentPlan:
    """What the home page shows: the active license, else the catalog's Free plan."""

    license: License | None
    free_plan: Plan | None

    @property
    def plan(self) -> Plan | None:
        return self.license.plan if self.license is not None else self.free_plan

    @property
    def mau_limit(self) -> str | None:
        limit = (self.plan.limits or {}).get("mau") if self.plan is not None else None
        return f"{limit:,}" if isinstance(limit, int) else None


def active_license(account: Team | User) -> License | None:
    """The account's current license: the first one whose subscription is active."""
    return next(
        (lic for lic in list_licenses(account.billing_id) if lic.subscription.state == "active"),
        None,
    )


def current_plan(account: Team | User) -> CurrentPlan:
    license_ = active_license(account)
    free = None
    if license_ is None:
        free = db.session.scalar(
            select(Plan).where(Plan.is_free, Plan.active).order_by(Plan.position).limit(1)
        )
    return CurrentPlan(license_, free)


@bp.get("/")
def home() -> str:
    account = _acting_account()
    return render_template(
        "example/home.html", current=current_plan(account) if account is not None else None
    )


# -- feature pages -------------------------------------------------------------------------


@bp.get("/features/<name>")
@login_required
def feature(name: str) -> tuple[str, int]:
    """Operation, Marketing (add-ons) and Reports (every paid plan), each behind the one
    check a host makes: ``@requires_feature`` refuses with its reason (R-USE-3)."""
    if name not in FEATURE_PAGES:
        return render_template("example/not_found.html"), 404
    return _guarded(name)


def _guarded(name: str) -> tuple[str, int]:
    @requires_feature(name)
    def page() -> tuple[str, int]:
        return render_template("example/feature.html", title=name.capitalize()), 200

    return page()  # type: ignore[no-any-return]


class UsageForm(FlaskForm):
    mau = IntegerField("Monthly active users", validators=[InputRequired(), NumberRange(0, 10**9)])


@bp.route("/usage", methods=["GET", "POST"])
@login_required
def usage() -> tuple[str, int] | Response:
    """The host reports usage through the extension's API (R-USE-1); set it by hand here."""
    account = _acting_account()
    assert account is not None
    form = UsageForm()
    if form.validate_on_submit():
        try:
            current_subscriptions.extension.report_usage(account, "mau", form.mau.data)
        except BillingError as exc:
            flash(message(exc), "error")
        else:
            flash(f"MAU set to {form.mau.data:,}.", "success")
            return redirect(url_for("example.usage"))
    elif request.method == "POST":
        flash("Enter a whole number of monthly active users.", "error")
    found = get_entitlements(account)
    plan = (
        db.session.scalar(select(Plan).where(Plan.code == found.plan_code))
        if found.plan_code
        else None
    )
    plan = plan or db.session.scalar(select(Plan).where(Plan.is_free))
    mau = db.session.scalar(
        select(UsageReport.value)
        .where(UsageReport.account_id == account.billing_id, UsageReport.metric == "mau")
        .order_by(UsageReport.reported_at.desc(), UsageReport.id.desc())
        .limit(1)
    )
    page = render_template(
        "example/usage.html",
        form=form,
        entitlements=found,
        mau=mau,
        limit=plan.limits.get("mau") if plan else None,
    )
    return page, (400 if request.method == "POST" else 200)


# -- mail ----------------------------------------------------------------------------------


@bp.get("/mail")
@login_required
def mail() -> str:
    """The e-mails of the accounts the signed-in person belongs to, sent or not yet, newest
    first, a page at a time (R-EX-3): they hold invoice numbers, amounts and card digits, so
    nobody else's."""
    mine = OutboxMessage.account_id.in_(_accounts_of(current_user))
    cursor = page_cursor((int,))
    found, more = keyset(
        select(OutboxMessage).where(mine), (OutboxMessage.id,), cursor, page_size()
    )
    messages = page_of([row[0] for row in found], lambda m: (m.id,), cursor, more)
    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count()).where(mine).group_by(OutboxMessage.status)
        ).all()
    )
    return render_template(
        "example/mail.html", messages=messages.items, pager=messages, counts=counts
    )


def _accounts_of(user: User) -> list[str]:
    """The person's own account and, for a team member, the team's."""
    return [user.billing_id, *([user.team.billing_id] if user.team is not None else [])]


# -- test clock ----------------------------------------------------------------------------


def _test_clock() -> OffsetClock:
    clock = current_subscriptions.clock
    if not isinstance(clock, OffsetClock):
        abort(404)
    return clock


@bp.route("/test-clock", methods=["GET", "POST"])
@login_required
def test_clock() -> tuple[str, int] | Response:
    """Move the billing date forward N days, running the due jobs on each day (R-EX-2)."""
    clock = _test_clock()
    form = ClockForm()
    if form.validate_on_submit():
        days = form.days.data
        totals: dict[str, dict[str, Any]] = {}
        moved = 0
        try:
            # One day at a time, as the scheduler would have run the jobs on each of them.
            for _ in range(days):
                clock.advance(days=1)
                moved += 1
                _add_up(totals, run_due_jobs())
        except Exception as exc:
            db.session.rollback()
            current_app.logger.exception("test clock: a job failed")
            flash(
                f"Moved {_days(moved)} forward; then a job failed ({exc}). "
                f"So far: {describe_job_totals(totals)}",
                "error",
            )
        else:
            flash(
                f"Moved {_days(days)} forward to {_long_date()} and ran the jobs each day: "
                f"{describe_job_totals(totals)}",
                "success",
            )
        return redirect(url_for("example.test_clock"))
    status = 200
    if request.method == "POST":
        flash(f"Enter a number of days from 1 to {MAX_CLOCK_DAYS}.", "error")
        status = 400
    offset = clock.offset
    page = render_template(
        "example/test_clock.html",
        form=form,
        reset_form=ResetClockForm(),
        today=current_subscriptions.today(),
        real_today=(clock.now() - offset).date(),
        offset_days=offset.days,
        max_days=MAX_CLOCK_DAYS,
        job_summaries=[job.summary for job in all_jobs()],
    )
    return page, status


@bp.post("/test-clock/reset")
@login_required
def reset_test_clock() -> Response:
    """Back to real time. What the jobs did in the future stays done."""
    clock = _test_clock()
    if ResetClockForm().validate_on_submit():
        clock.reset()
        flash(f"The clock is back to real time: today is {_long_date()}.", "success")
    else:
        flash("The form expired; please try again.", "error")
    return redirect(url_for("example.test_clock"))


def _add_up(totals: dict[str, dict[str, Any]], results: dict[str, Any]) -> None:
    """Sum one run's reports into ``totals`` (job id → field → count or Counter)."""
    for job_id, report in results.items():
        fields = totals.setdefault(job_id, {})
        if not dataclasses.is_dataclass(report) or isinstance(report, type):
            continue
        for f in dataclasses.fields(report):
            value = getattr(report, f.name)
            if isinstance(value, Counter):
                fields.setdefault(f.name, Counter()).update(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                fields[f.name] = fields.get(f.name, 0) + value


def describe_job_totals(totals: dict[str, dict[str, Any]]) -> str:
    """What the jobs did, in words, in the order they ran:
    "renewed 1, failed 0, pending 0, expired 0 (charged $100.00); …; sent 2 e-mails."."""
    order = [job.id for job in all_jobs()]
    parts = [
        _describe(job_id, totals[job_id])
        for job_id in sorted(totals, key=lambda j: order.index(j) if j in order else len(order))
    ]
    return "; ".join(parts) + "." if parts else "nothing to do."


_WORDS = {"moved_to_free": "moved to Free", "still_unknown": "still unknown"}
_LABELS = {"subscriptions.dunning": "unpaid renewals"}


def _describe(job_id: str, fields: dict[str, Any]) -> str:
    if job_id == "subscriptions.reconcile":
        text = f"settled {_count(fields.get('settled', 0), 'unknown payment')}"
        if fields.get("still_unknown"):
            text += f", {fields['still_unknown']} still unknown"
        return text
    if job_id == "subscriptions.deliver_mail":
        text = f"sent {_count(fields.get('sent', 0), 'e-mail')}"
        if fields.get("retried"):
            text += f", {fields['retried']} to retry"
        if fields.get("dead"):
            text += f", {fields['dead']} given up"
        return text
    counts = ", ".join(
        f"{_WORDS.get(name, name.replace('_', ' '))} {value}"
        for name, value in fields.items()
        if isinstance(value, int)
    )
    amounts = ", ".join(
        _money(amount, currency)
        for value in fields.values()
        if isinstance(value, Counter)
        for currency, amount in sorted(value.items())
        if amount
    )
    text = counts or "done"
    if amounts:
        text += f" (charged {amounts})"
    if job_id == "subscriptions.renew":
        return text
    summaries = {job.id: job.summary for job in all_jobs()}
    return f"{_LABELS.get(job_id) or summaries.get(job_id, job_id)}: {text}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _days(n: int) -> str:
    return _count(n, "day")


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency, current_subscriptions.settings.locale)


def _long_date() -> str:
    day = current_subscriptions.today()
    return f"{day:%B} {day.day}, {day.year}"


# -- every page ----------------------------------------------------------------------------


def _acting_account() -> Team | User | None:
    """The account the signed-in person acts for. ``None`` outside a request too: billing
    renders its e-mails with the app's context processors, in jobs and worker threads."""
    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return None
    return current_user.account  # type: ignore[no-any-return]


@bp.app_context_processor
def _acting() -> dict[str, object]:
    account = _acting_account()
    return {
        "acting_account": account,
        # Only an owner of the acting account sees billing links (R-SEC-2); visitors see Plans.
        "can_manage_billing": account is not None and account.is_billing_owner(current_user),
        # current_app: _billing_links.html links only the billing pages this app mounts.
        "current_app": current_app,
        "language_names": LANGUAGE_NAMES,
        "header_links": header_links,
        "link": link,
    }


def header_links(can_manage_billing: bool) -> Markup:
    """The header's links (``_header_links.html``), rendered once per app, mount point,
    language and kind of visitor: they are the same for every request of the same kind,
    and rendering them on each one cost a fifth of a signed-in page."""
    signed_in = bool(getattr(current_user, "is_authenticated", False))
    support = signed_in and current_user.role == "support"
    key = (request.script_root, current_locale(), signed_in, can_manage_billing, support)
    rendered: dict[tuple[str, str, bool, bool, bool], Markup]
    rendered = current_app.extensions.setdefault("example_header_links", {})
    found = rendered.get(key)
    if found is None:
        found = rendered[key] = Markup(  # noqa: S704 -- our template's output, escaped by Jinja
            render_template(
                "example/_header_links.html",
                signed_in=signed_in,
                can_manage_billing=can_manage_billing,
                support=support,
            )
        )
    return found


def link(endpoint: str, **values: str) -> str:
    """``url_for(endpoint, **values)`` for the header's links outside ``header_links`` (the
    languages, signing in and out), remembered per app and mount point: they never change
    while the app runs, and ``url_for`` costs several times this lookup."""
    links: dict[tuple[str, str, tuple[tuple[str, str], ...]], str]
    links = current_app.extensions.setdefault("example_links", {})
    key = (request.script_root, endpoint, tuple(sorted(values.items())))
    found = links.get(key)
    if found is None:
        found = links[key] = url_for(endpoint, **values)
    return found
