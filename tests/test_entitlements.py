"""Entitlements and usage limits (R-USE-1..3, R-PRO-9, R-DUN-1, R-SEC-4) on a real host."""

from __future__ import annotations

import html
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, render_template_string
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_subscriptions import (
    Entitlement,
    get_entitlements,
    get_state,
    has_feature,
    requires_feature,
)
from flask_subscriptions.models import BillingProfile, Invoice, Subscription, UsageReport
from flask_subscriptions.services.dunning import run_dunning
from flask_subscriptions.services.licenses import update_license
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.services.settlement import settle, settlement_for
from flask_subscriptions.services.usage import UsageInvalid, report_usage

from .conftest import Outbox, sign_in, signed_in, statements
from .factories import add_card, subscribe
from .flows import FIRST_CHARGE_ONLY, VISA
from .hosts import Team, User, db

OVER = "MAU 1,240 is over the Small plan's limit of 1,000."
BILLING_PAGES = (
    "/billing/licenses",
    "/billing/history",
    "/billing/payment-methods",
    "/billing/plans",
)


def _at(clock: Any, day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def _report(account: Any, value: int, metric: str = "mau") -> None:
    get_state().extension.report_usage(account, metric, value)


def _add_views(app: Flask) -> None:
    """A host's own pages: one behind the decorator, one making every kind of check."""

    @app.get("/ops")
    @requires_feature("operation")
    def ops() -> str:
        return "operation console"

    @app.get("/reports-and-ops")
    @requires_feature("reports", "operation")
    def both() -> str:
        return "both"

    @app.get("/checks")
    def checks() -> str:
        answers = [has_feature("operation"), has_feature("reports"), has_feature("marketing")]
        found = get_entitlements()
        return render_template_string(
            "{{ answers }} {{ plan }} ops={{ subs_has_feature('operation') }} "
            "restricted={{ subs_entitlements().restricted }}"
            '|{% include "subscriptions/partials/_banner.html" %}|',
            answers=answers,
            plan=found.plan_code,
        )

    @app.get("/layout")
    def layout() -> str:
        return render_template_string('|{% include "subscriptions/partials/_banner.html" %}|')

    @app.post("/report/<int:value>")
    def report_then_check(value: int) -> str:
        before = has_feature("operation")
        get_state().extension.report_usage(str(_current().billing_id), "mau", value)
        return f"{before} {has_feature('operation')}"


def _current() -> Any:
    from flask_subscriptions.access import current_account

    return current_account()


@pytest.fixture
def views(app: Flask) -> None:
    _add_views(app)


@pytest.fixture
def team_views(team_app: Flask) -> None:
    _add_views(team_app)


def _subscription() -> Subscription:
    db.session.expire_all()
    return db.session.scalar(select(Subscription).order_by(Subscription.id.desc()))


def _banner(client: FlaskClient) -> str:
    page = client.get("/layout")
    assert page.status_code == 200
    return html.unescape(page.text).strip("|")


# --- over the limit, back, upgrade (R-USE-2) -----------------------------------------------


def test_over_the_limit_restricts_at_once_plan_and_billing_unchanged_R_USE_2(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """R-USE-2: paid features stop at once; the plan is kept and the renewal still charges."""
    subscription = subscribe(alice, "small", addons=("operation",))
    assert has_feature(alice, "operation") and has_feature(alice, "reports")
    _report(alice, 1240)
    found = get_entitlements(alice)
    assert found.restricted and found.reasons == (OVER,) and found.fix == "upgrade"
    assert found.get("operation") == Entitlement("operation", False, OVER, "upgrade")
    assert not has_feature(alice, "reports") and not has_feature(alice.billing_id, "operation")
    assert (_subscription().plan_id, _subscription().state) == (subscription.plan_id, "active")
    _at(clock, date(2026, 4, 17))
    report = renew_due()
    assert (report.renewed, report.failed) == (1, 0)
    renewal = db.session.scalar(select(Invoice).where(Invoice.kind == "renewal"))
    assert (renewal.status, renewal.amount_due) == ("paid", 13000)  # Small + Operation
    assert _subscription().plan_id == subscription.plan_id
    assert not has_feature(alice, "operation")  # still over: still restricted


def test_back_within_the_limit_lifts_the_restriction_R_USE_2(
    app: Flask, alice: User, catalog: None
) -> None:
    subscribe(alice, "small", addons=("operation",))
    _report(alice, 1240)
    assert not has_feature(alice, "operation")
    _report(alice, 1000)  # at the limit is within it
    assert has_feature(alice, "operation") and not get_entitlements(alice).restricted


def test_a_bigger_plan_at_renewal_lifts_the_restriction_R_USE_2(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-USE-2: an upgrade to a plan whose limit covers the usage lifts the restriction."""
    subscription = subscribe(alice, "small", addons=("operation",))
    _report(alice, 1240)
    update_license(alice, subscription.id, auto_renew=True, renew_with="medium")
    assert not has_feature(alice, "operation")  # the plan changes only at the renewal
    _at(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    found = get_entitlements(alice)
    assert (found.plan_code, found.restricted) == ("medium", False)
    assert has_feature(alice, "operation") and has_feature(alice, "reports")


def test_a_smaller_plan_below_usage_restricts_at_its_renewal_R_PRO_9(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    """R-PRO-9: a plan whose limit is below usage is allowed, restricts paid features, and
    is billed as usual."""
    subscription = subscribe(alice, "small", addons=("operation",))
    _report(alice, 800)
    update_license(alice, subscription.id, auto_renew=True, renew_with="x_small")
    _at(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    found = get_entitlements(alice)
    assert found.plan_code == "x_small" and found.reasons == (
        "MAU 800 is over the X Small plan's limit of 500.",
    )
    renewal = db.session.scalar(select(Invoice).where(Invoice.kind == "renewal"))
    assert (renewal.status, renewal.amount_due) == ("paid", 8000)  # X Small + Operation


def test_the_latest_report_counts_not_the_last_sent_R_USE_1(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    subscribe(alice, "small")
    _report(alice, 1240)
    earlier = clock.now() - timedelta(days=2)
    report_usage(alice, "mau", 10, at=earlier)  # a late report of older usage
    assert not has_feature(alice, "reports")
    rows = db.session.execute(
        select(UsageReport.metric, UsageReport.value, UsageReport.reported_at).order_by(
            UsageReport.id
        )
    ).all()
    assert [(m, v) for m, v, _ in rows] == [("mau", 1240), ("mau", 10)]
    assert rows[0][2] == clock.now().replace(tzinfo=None)  # "when" comes from the clock
    assert rows[1][2] == earlier.replace(tzinfo=None)


# --- what the account holds (R-USE-3) -------------------------------------------------------


def test_missing_add_on_is_refused_with_its_reason_R_USE_3(
    app: Flask, alice: User, catalog: None
) -> None:
    subscribe(alice, "small")
    assert has_feature(alice, "reports")
    assert get_entitlements(alice).get("operation") == Entitlement(
        "operation", False, "Needs the Operation add-on.", "add_on"
    )


def test_free_and_ended_licenses_have_only_free_features_R_USE_3(
    app: Flask, alice: User, catalog: None, clock: Any
) -> None:
    found = get_entitlements(alice)
    assert (found.plan_code, found.licensed, found.allowed_features) == ("free", False, set())
    assert found.get("reports").reason == "Needs the X Small plan."
    subscription = subscribe(alice, "small", addons=("operation",))
    update_license(alice, subscription.id, auto_renew=False, renew_with=None)
    assert has_feature(alice, "operation")  # Disabled: usable until the term ends
    _at(clock, date(2026, 4, 17))
    assert renew_due().expired == 1
    assert get_entitlements(alice).plan_code == "free"
    assert not has_feature(alice, "operation") and not has_feature(alice, "reports")


# --- dunning (R-DUN-1) ----------------------------------------------------------------------


def test_dunning_restriction_fails_the_same_checks_billing_pages_work_R_DUN_1_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    """R-DUN-1: in the grace features work; after it, paid features are refused until the
    whole unpaid amount is settled. R-USE-3: the billing pages keep working."""
    subscribe(alice, "small", addons=("operation",), card=FIRST_CHARGE_ONLY)
    client = signed_in(app, alice)
    _at(clock, date(2026, 4, 17))
    assert renew_due().failed == 1
    assert has_feature(alice, "operation")  # Payment failed, in the grace
    assert client.get("/ops").status_code == 200
    assert "failed on April 17, 2026" in _banner(client)
    for offset in range(1, 8):
        _at(clock, date(2026, 4, 17) + timedelta(days=offset))
        renew_due()
        run_dunning()
    assert _subscription().restricted_on == date(2026, 4, 24)
    found = get_entitlements(alice)
    assert found.get("operation") == Entitlement(
        "operation", False, "Payment overdue since April 17, 2026.", "settle"
    )
    refused = client.get("/ops")
    assert refused.status_code == 402
    assert "Payment overdue since April 17, 2026." in refused.text
    assert 'href="/billing/history"' in refused.text
    banner = _banner(client)
    assert "Payment overdue since April 17, 2026." in banner
    assert 'href="/billing/history"' in banner
    for path in BILLING_PAGES:
        assert client.get(path).status_code == 200, path
    method = add_card(alice, VISA)
    quote = settlement_for(alice.billing_id).quote
    assert quote is not None
    settle(alice, quote.fingerprint, method.id)
    assert has_feature(alice, "operation")
    assert client.get("/ops").status_code == 200 and _banner(client) == ""


def test_billing_pages_work_while_over_the_limit_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    subscribe(alice, "small", addons=("operation",))
    _report(alice, 1240)
    client = signed_in(app, alice)
    assert client.get("/ops").status_code == 402
    for path in BILLING_PAGES:
        assert client.get(path).status_code == 200, path


# --- teams ---------------------------------------------------------------------------------


def test_a_member_gets_the_teams_entitlements_R_USE_3(
    team_app: Flask, team_views: None, acme: Team, catalog: None
) -> None:
    mike = next(m for m in acme.members if m.role == "member")
    client = signed_in(team_app, mike)
    assert client.get("/ops").status_code == 402  # the team is on Free
    subscribe(acme, "small", addons=("operation",))
    assert client.get("/ops").text == "operation console"
    assert client.get("/checks").text.startswith("[True, True, False] small ops=True")
    assert not has_feature(mike, "operation")  # mike is not the payer; his team is
    _report(acme.billing_id, 1240)
    refused = client.get("/ops")
    assert refused.status_code == 402 and OVER in html.unescape(refused.text)
    assert OVER in _banner(client)
    assert client.get("/billing/licenses").status_code == 403  # members never see billing


# --- one query per request ------------------------------------------------------------------


def test_every_check_of_a_request_costs_one_query_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    """has_feature ×3, entitlements, the template helpers and the banner: one statement."""
    subscribe(alice, "small", addons=("operation",))
    _report(alice, 200)
    client = signed_in(app, alice)
    with statements() as sent:
        page = client.get("/checks")
    billing = [statement for statement in sent if "subs_" in statement]
    assert page.text == "[True, True, False] small ops=True restricted=False||"
    assert len(billing) == 1, billing


def test_a_report_in_the_request_is_seen_by_the_next_check(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    subscribe(alice, "small", addons=("operation",))
    client = signed_in(app, alice)
    assert client.post("/report/1240").text == "True False"


@pytest.mark.parametrize("licensed", [True, False], ids=["small", "free-no-profile-yet"])
def test_simultaneous_reports_mail_once_R_USE_2(
    app: Flask, views: None, alice: User, catalog: None, outbox: Outbox, licensed: bool
) -> None:
    """Reports racing for one account are decided one at a time: one crossing, one e-mail."""
    if licensed:
        subscribe(alice, "small", addons=("operation",))
    clients = [app.test_client() for _ in range(4)]
    for client in clients:
        sign_in(client, alice)
    barrier = threading.Barrier(len(clients))

    def report(client: FlaskClient) -> int:
        barrier.wait()
        return client.post("/report/1240").status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        assert list(pool.map(report, clients)) == [200] * len(clients)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 4
    assert db.session.scalar(select(func.count()).select_from(BillingProfile)) == 1
    assert len(outbox.of_kind("usage_over_limit")) == 1


# --- the decorator's refusals (R-USE-3) -----------------------------------------------------


def test_refused_page_is_a_402_with_the_reason_and_the_fix_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    client = app.test_client()
    assert client.get("/ops").status_code == 302  # signed out: sign in first
    sign_in(client, alice)
    refused = client.get("/ops")
    assert refused.status_code == 402
    assert "This feature is not available" in refused.text
    assert "Needs the Operation add-on, which comes with the X Small plan." in refused.text
    assert 'href="/billing/plans"' in refused.text  # on Free: buy a plan
    subscribe(alice, "small")
    refused = client.get("/reports-and-ops")
    assert refused.status_code == 402 and "Needs the Operation add-on." in refused.text
    assert 'href="/billing/licenses"' in refused.text


@pytest.mark.parametrize(
    "app_config",
    [{"SUBSCRIPTIONS_FEATURE_REFUSED": "redirect", "SUBSCRIPTIONS_FEATURE_REFUSED_REDIRECT": "/"}],
)
def test_refused_redirect_flashes_the_reason_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    @app.get("/")
    def home() -> str:
        return render_template_string('{% include "subscriptions/partials/_flashes.html" %}home')

    subscribe(alice, "small")
    _report(alice, 1240)
    client = signed_in(app, alice)
    refused = client.get("/ops")
    assert (refused.status_code, refused.location) == (302, "/")
    assert "Needs the Operation add-on." in client.get("/").text


@pytest.mark.parametrize(
    "app_config", [{"SUBSCRIPTIONS_FEATURE_REFUSED": "redirect"}], ids=["no-target"]
)
def test_refused_redirect_without_a_target_goes_to_the_fix_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    subscribe(alice, "small", addons=("operation",))
    _report(alice, 1240)
    client = signed_in(app, alice)
    refused = client.get("/ops")
    assert (refused.status_code, refused.location) == (302, "/billing/licenses")


def _answer(feature: str, entitlement: Entitlement) -> Response:
    return Response(f"{feature}: {entitlement.reason} ({entitlement.fix})", status=403)


@pytest.mark.parametrize("app_config", [{"SUBSCRIPTIONS_FEATURE_REFUSED": _answer}])
def test_refused_by_the_hosts_callable_R_USE_3(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    subscribe(alice, "small")
    client = signed_in(app, alice)
    refused = client.get("/ops")
    assert refused.status_code == 403
    assert refused.text == "operation: Needs the Operation add-on. (add_on)"


def test_requires_feature_needs_a_name() -> None:
    with pytest.raises(TypeError, match="Name the features"):
        requires_feature()


# --- what the customer sees -----------------------------------------------------------------


def test_banner_shows_nothing_when_all_is_well_else_the_reason_and_fix_R_USE_2(
    app: Flask, views: None, alice: User, catalog: None
) -> None:
    client = app.test_client()
    assert _banner(client) == ""  # signed out
    sign_in(client, alice)
    assert _banner(client) == ""  # on Free, within its limit
    _report(alice, 150)
    free = _banner(client)
    assert "MAU 150 is over the Free plan's limit of 100." in free
    assert 'href="/billing/plans"' in free
    subscribe(alice, "small", addons=("operation",))
    assert _banner(client) == ""
    _report(alice, 1240)
    banner = _banner(client)
    assert "Paid features are restricted." in banner and OVER in banner
    assert 'href="/billing/licenses"' in banner and "Upgrade your plan" in banner


def test_over_limit_and_back_mail_once_per_crossing_R_USE_2_R_NOTE_3(
    app: Flask, alice: User, catalog: None, outbox: Outbox
) -> None:
    subscribe(alice, "small", addons=("operation",))
    for value in (900, 1240, 1300, 2000):
        _report(alice, value)
    [over] = outbox.of_kind("usage_over_limit")
    assert over.recipients == ["alice@example.com"]
    assert over.subject == "Usage is over your Small plan's limit: paid features are restricted"
    assert OVER in over.text_body and "billing continues" in over.text_body
    assert "http://host.test/billing/licenses" in over.text_body
    profile = db.session.scalar(select(BillingProfile))
    assert profile.over_limit_since is not None
    for value in (700, 600):
        _report(alice, value)
    [back] = outbox.of_kind("usage_back_within_limit")
    assert "work again" in back.text_body
    assert db.session.scalar(select(BillingProfile.over_limit_since)) is None
    _report(alice, 5000)  # a second crossing is a second e-mail
    assert len(outbox.of_kind("usage_over_limit")) == 2
    assert len(outbox.of_kind("usage_back_within_limit")) == 1


# --- bad input (R-SEC-4) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("mau", -1, "cannot be negative"),
        ("mau", 1.5, "whole number"),
        ("mau", "12", "whole number"),
        ("mau", True, "whole number"),
        ("mau", 10**13, "cannot be over 1,000,000,000,000"),
        ("MAU", 1, "lowercase letters"),
        ("", 1, "lowercase letters"),
        ("m" * 65, 1, "lowercase letters"),
        ("mau; drop table", 1, "lowercase letters"),
        (None, 1, "lowercase letters"),
    ],
)
def test_bad_reports_are_refused_and_change_nothing_R_SEC_4(
    app: Flask, alice: User, catalog: None, metric: Any, value: Any, message: str
) -> None:
    with pytest.raises(UsageInvalid, match=message):
        get_state().extension.report_usage(alice, metric, value)
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 0


@pytest.mark.parametrize(
    ("account", "message"),
    [("", "1 to 64"), ("x" * 65, "1 to 64"), ("1\n2", "1 to 64"), ("999", "No account")],
)
def test_bad_account_ids_are_refused_R_SEC_4(
    app: Flask, alice: User, account: str, message: str
) -> None:
    with pytest.raises(UsageInvalid, match=message):
        report_usage(account, "mau", 1)
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 0


def test_a_report_from_the_future_is_refused_R_SEC_4(app: Flask, alice: User, clock: Any) -> None:
    with pytest.raises(UsageInvalid, match="future"):
        report_usage(alice, "mau", 1, at=clock.now() + timedelta(minutes=1))
    report_usage(str(alice.id), "mau", 1, at=clock.now())
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 1


# --- batch import from the CLI (R-USE-1) ----------------------------------------------------


def _import(app: Flask, path: Path) -> Any:
    return app.test_cli_runner().invoke(args=["subscriptions", "usage", "import", str(path)])


def test_cli_import_records_every_row_in_one_go_R_USE_1(
    app: Flask, alice: User, catalog: None, tmp_path: Path, outbox: Outbox
) -> None:
    subscribe(alice, "small", addons=("operation",))
    bob = User(name="bob", email="bob@example.com")
    db.session.add(bob)
    db.session.commit()
    path = tmp_path / "usage.csv"
    path.write_text(
        "\ufeffaccount_id,metric,value,reported_at\n"
        f"{alice.id},mau,1240,2026-03-16T09:00:00Z\n"
        f"{alice.id},mau,900,2026-03-15T09:00:00+09:00\n"
        "\n"
        f"{bob.id},mau,40,\n"
        f"{bob.id},seats,3\n",
        encoding="utf-8",
    )
    result = _import(app, path)
    assert result.exit_code == 0, result.output
    assert "Imported 4 usage reports for 2 accounts (1 went over a limit" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 4
    assert not has_feature(alice, "operation")  # 1,240 is the latest, whatever the order
    assert [m.account_id for m in outbox.of_kind("usage_over_limit")] == [str(alice.id)]
    times = db.session.scalars(
        select(UsageReport.reported_at).where(UsageReport.account_id == str(alice.id))
    ).all()
    assert sorted(times) == [datetime(2026, 3, 15, 0), datetime(2026, 3, 16, 9)]


def test_cli_import_with_a_bad_row_changes_nothing_and_names_the_lines_R_SEC_4(
    app: Flask, alice: User, catalog: None, tmp_path: Path, outbox: Outbox
) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        f"{alice.id},mau,1240\n"
        f"{alice.id},mau,-5\n"
        f"{alice.id},MAU,5\n"
        f"{alice.id},mau,12.5\n"
        f"{alice.id},mau,1,yesterday\n"
        "424242,mau,1\n"
        f"{alice.id},mau\n"
        f"{alice.id},mau,{'9' * 5000}\n"
        f"{alice.id},mau,7,2099-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    result = _import(app, path)
    assert result.exit_code == 1
    for expected in (
        "line 2: Usage cannot be negative",
        "line 3: A metric name is lowercase",
        "line 4: Usage is a whole number",
        "line 5: reported_at is an ISO 8601 time",
        "line 6: No account has the id '424242'",
        "line 7: expected account_id,metric,value[,reported_at], got 2 columns",
        "line 8: Usage cannot be over",
        "line 9: The time of a report cannot be in the future",
    ):
        assert expected in result.output, result.output
    assert "line 1" not in result.output
    assert db.session.scalar(select(func.count()).select_from(UsageReport)) == 0
    assert db.session.scalar(select(func.count()).select_from(BillingProfile)) == 0
    assert outbox.all() == []


def test_cli_import_refuses_a_file_that_is_not_utf8_csv(
    app: Flask, alice: User, tmp_path: Path
) -> None:
    path = tmp_path / "usage.csv"
    path.write_bytes(b"\xff\xfe1,mau,\xe9\n")
    result = _import(app, path)
    assert result.exit_code == 1 and "not UTF-8 CSV" in result.output
