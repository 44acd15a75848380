"""The example host's own pages: demo sign-in, home, feature pages, Mail and Test clock."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import HiddenField, IntegerField
from wtforms.validators import DataRequired, NumberRange

from flask_subscriptions import current_subscriptions
from flask_subscriptions.blueprints._access import safe_next
from flask_subscriptions.jobs import run_due_jobs
from flask_subscriptions.models import OutboxMessage

from .models import User, db

bp = Blueprint("example", __name__, template_folder="templates")


class SignInForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])


class ClockForm(FlaskForm):
    days = IntegerField("Days", default=1, validators=[DataRequired(), NumberRange(1, 3660)])


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


@bp.post("/sign-out")
def sign_out() -> Response:
    if FlaskForm().validate_on_submit():
        logout_user()
    return redirect(url_for("example.home"))


@bp.get("/")
def home() -> str:
    return render_template("example/home.html")


@bp.get("/features/<name>")
@login_required
def feature(name: str) -> str:
    if name not in ("operation", "marketing"):
        return render_template("example/not_found.html"), 404  # type: ignore[return-value]
    return render_template("example/feature.html", name=name)


@bp.get("/mail")
def mail() -> str:
    messages = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).all()
    return render_template("example/mail.html", messages=messages)


@bp.route("/test-clock", methods=["GET", "POST"])
def test_clock() -> str | Response:
    form = ClockForm()
    if form.validate_on_submit():
        current_subscriptions.clock.advance(days=form.days.data)  # type: ignore[attr-defined]
        results = run_due_jobs()
        flash(f"Moved {form.days.data} day(s) forward and ran the jobs: {results}", "success")
        return redirect(url_for("example.test_clock"))
    return render_template(
        "example/test_clock.html", form=form, today=current_subscriptions.today()
    )


@bp.app_context_processor
def _acting() -> dict[str, object]:
    account = current_user.account if current_user.is_authenticated else None
    # current_app: _billing_links.html links only the billing pages this app mounts.
    return {"acting_account": account, "current_app": current_app}
