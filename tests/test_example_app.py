"""The example app (R-EX-1..3): demo accounts and sign-in, the sample catalog, the home page's
current plan, the feature pages, the Mail page and the test clock, through the test client.

Each test starts a fresh example app on SQLite files and an instance folder in ``tmp_path``,
so its test clock (``instance/test-clock.json``) starts at the real date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from example_app import create_app, prepare
from example_app.models import Team, User, db
from flask_subscriptions.models import (
    AddOn,
    Invoice,
    OutboxMessage,
    PaymentMethod,
    Plan,
    Price,
    Subscription,
)
from flask_subscriptions.state import get_state

from .conftest import csrf_token
from .flows import VISA, choose_card, place, post_form, register_card, start_order

BILLING_LINKS = ("License Management", "Payment methods")


# -- the app -------------------------------------------------------------------------------


def _create(tmp_path: Path) -> Flask:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "SANDBOX_PAY_DATABASE_URI": f"sqlite:///{tmp_path / 'sandbox-pay.sqlite'}",
            "SUBSCRIPTIONS_SCHEDULER_ENABLED": False,
            "SECRET_KEY": "example-app-tests",
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        prepare()  # what `flask --app example_app setup` (make demo) does
    return app


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
        app.extensions["sandbox_pay"].engine.dispose()


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Flask]:
    """A fresh example app: demo people and the sample catalog, seeded on first start."""
    app = _create(tmp_path)
    yield app
    _dispose(app)


@pytest.fixture
def client(example: Flask) -> FlaskClient:
    return example.test_client()


# -- what a person does --------------------------------------------------------------------


def sign_in_as(client: FlaskClient, name: str) -> TestResponse:
    """The sign-in page → **Sign in as NAME** → the home page."""
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert f"Sign in as {name}</button>" in page.text
    form = re.search(
        rf'name="user_id" value="(\d+)">\s*<strong>{name}</strong>.*?Sign in as {name}</button>',
        page.text,
        re.S,
    )
    assert form, f"no sign-in button for {name}"
    response = client.post(
        "/sign-in",
        data={"csrf_token": csrf_token(page.text), "user_id": form[1]},
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response


def header(html: str) -> str:
    match = re.search(r"<header.*?</header>", html, re.S)
    assert match, "no header"
    return match[0]


def text_of(html: str) -> str:
    """The page's words, without tags and with single spaces."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
    return re.sub(r" ([.,;:)])", r"\1", words)


def buy(
    app: Flask, client: FlaskClient, plan: str = "small", addons: list[str] | None = None
) -> None:
    """Register a Visa on Sandbox Pay's form and buy ``plan`` monthly through the pages."""
    register_card(client, VISA)
    key = start_order(client, plan, addons=addons)
    with app.app_context():
        card_id = db.session.scalar(select(PaymentMethod.id).where(PaymentMethod.last4 == "4242"))
    assert card_id is not None
    assert choose_card(client, key, card_id).status_code == 302
    placed = place(client, key)
    assert placed.status_code == 302, placed.text
    done = client.get(placed.headers["Location"])
    assert "Thank you for your order" in done.text


def move_clock(client: FlaskClient, days: int) -> TestResponse:
    return post_form(client, "/test-clock", "/test-clock", {"days": days}, follow_redirects=True)


def flashed(html: str) -> str:
    """The test clock's message after a move or a reset."""
    match = re.search(r'<p class="ex-flash[^"]*" role="\w+">(.*?)</p>', html, re.S)
    assert match, "no message on the page"
    return text_of(match[1])


def shown_date(html: str) -> date:
    match = re.search(r'<time id="today" datetime="(\d{4}-\d\d-\d\d)">', html)
    assert match, "no billing date on the test clock page"
    return date.fromisoformat(match[1])


def real_today() -> date:
    return datetime.now(UTC).date()


# -- R-EX-1: the sample catalog, the demo accounts -----------------------------------------


def test_plans_page_shows_the_sample_catalog_R_EX_1(client: FlaskClient) -> None:
    """R-EX-1: the sample catalog on the plans page, formatted, with Buy now on each paid plan."""
    page = client.get("/billing/plans")
    assert page.status_code == 200
    words = text_of(page.text)
    for name, price, mau in [
        ("Free", "$0.00", "100"),
        ("X Small", "$50.00", "500"),
        ("Small", "$100.00", "1,000"),
        ("Medium", "$200.00", "3,000"),
        ("Large", "$400.00", "10,000"),
    ]:
        assert f"{name} " in words and f"{price} / month" in words and f"MAU: {mau}" in words
    assert "$1,080.00 / year" in words  # Small annual: 12 × $100 less 10%
    assert "Operation ($30.00 / month)" in words and "Marketing ($40.00 / month)" in words
    assert page.text.count(">Buy now<") == 4  # the plan name follows, for screen readers
    assert 'action="/billing/checkout/free"' not in page.text


@pytest.mark.parametrize(
    ("name", "acting_for"),
    [("alice", "alice"), ("olivia", "Acme"), ("oscar", "Acme"), ("mike", "Acme")],
)
def test_every_demo_account_signs_in_and_the_header_shows_who_acts_R_EX_1(
    client: FlaskClient, name: str, acting_for: str
) -> None:
    """R-EX-1: each demo account signs in with its button; the header shows the person and
    the account they act for (alice for herself, olivia, oscar and mike for Acme)."""
    home = sign_in_as(client, name)
    top = text_of(header(home.text))
    assert f"Signed in as {name} · acting for {acting_for}" in top
    assert "Mail" in top and "Test clock" in top


@pytest.mark.parametrize("name", ["alice", "olivia", "oscar"])
def test_owners_see_the_billing_links_R_EX_1(client: FlaskClient, name: str) -> None:
    """R-EX-1: an owner's header links Plans, License Management and Payment methods."""
    top = header(sign_in_as(client, name).text)
    for label, url in [
        ("Plans", "/billing/plans"),
        ("License Management", "/billing/licenses"),
        ("Payment methods", "/billing/payment-methods"),
    ]:
        assert f'<a href="{url}">{label}</a>' in top
    assert client.get("/billing/licenses").status_code == 200


def test_member_sees_no_billing_links_and_billing_pages_refuse_him_R_EX_1(
    client: FlaskClient,
) -> None:
    """R-EX-1, R-SEC-2: mike, a member of Acme, has no billing links and gets 403."""
    home = sign_in_as(client, "mike")
    top = header(home.text)
    assert "/billing/" not in top
    for label in (*BILLING_LINKS, "Plans"):
        assert f">{label}</a>" not in top
    assert "Only the owners of Acme manage its billing." in text_of(home.text)
    assert client.get("/billing/licenses").status_code == 403
    assert client.get("/billing/payment-methods").status_code == 403


def test_sign_in_page_lists_the_demo_accounts_and_sign_out_works_R_EX_1(
    client: FlaskClient,
) -> None:
    """R-EX-1: the sign-in page offers every demo account; Sign out (POST + CSRF) ends it."""
    page = client.get("/sign-in")
    for name in ("alice", "olivia", "oscar", "mike"):
        assert f"Sign in as {name}</button>" in page.text
    assert "member of Acme" in text_of(page.text)
    sign_in_as(client, "alice")
    assert client.post("/sign-out").status_code == 400  # no CSRF token: still signed in
    assert "Signed in as" in client.get("/").text
    post_form(client, "/test-clock", "/sign-out")
    assert "Signed in as" not in client.get("/").text


@pytest.mark.parametrize("url", ["/sign-in", "/sign-out", "/test-clock", "/test-clock/reset"])
def test_every_post_of_the_example_app_needs_its_csrf_token_R_EX_1(
    client: FlaskClient, url: str
) -> None:
    """R-EX-1, R-SEC-3: the example app's own forms are refused without their token."""
    sign_in_as(client, "alice")
    data = {"user_id": "1", "days": "1"}
    assert client.post(url, data=data).status_code == 400
    assert "Signed in as alice" in text_of(client.get("/").text)
    assert shown_date(client.get("/test-clock").text) == real_today()


def test_a_fresh_start_seeds_once_R_EX_1(tmp_path: Path) -> None:
    """R-EX-1: the first start creates and seeds the database; a second start on the same
    instance adds nobody and no second catalog."""

    def counts(app: Flask) -> tuple[int, ...]:
        with app.app_context():
            return tuple(
                db.session.scalar(select(func.count()).select_from(model)) or 0
                for model in (User, Team, Plan, AddOn, Price)
            )

    first = _create(tmp_path)
    seeded = counts(first)
    _dispose(first)
    again = _create(tmp_path)
    try:
        # 5 plans, 2 add-ons; the paid plans and add-ons in USD, JPY and KRW, month and year
        assert counts(again) == seeded == (7, 1, 5, 2, 36)
        with again.app_context():
            names = db.session.scalars(select(User.name).order_by(User.id)).all()
            assert names == ["alice", "hana", "minjun", "olivia", "oscar", "mike", "sam"]
    finally:
        _dispose(again)


# -- the home page and the feature pages ---------------------------------------------------


def test_home_shows_free_then_the_plan_bought_R_EX_1(example: Flask, client: FlaskClient) -> None:
    """R-EX-1: a new account is on Free (MAU 100); after buying Small + Operation the home
    page shows Small, monthly, Enabled, its term end and a link to License Management."""
    words = text_of(sign_in_as(client, "alice").text)
    assert "Current plan of alice Free — no paid license MAU limit 100" in words
    assert "License Management</a>" not in client.get("/").text.split("</header>")[1]

    buy(example, client, "small", addons=["operation"])
    home = client.get("/")
    words = text_of(home.text)
    with example.app_context():
        term_end = db.session.scalar(select(Subscription.current_term_end))
    assert term_end is not None
    assert "Small + Operation" in words
    assert "Interval Monthly" in words and "Status Enabled" in words
    assert f"Term end {term_end:%B} {term_end.day}, {term_end.year}" in words
    assert "MAU limit 1,000" in words
    assert 'href="/billing/licenses">License Management</a>' in home.text.split("</header>")[1]


def test_team_members_see_the_team_plan_R_EX_1(example: Flask, client: FlaskClient) -> None:
    """R-EX-1: what olivia buys for Acme is Acme's plan for oscar and mike too; mike gets no
    License Management link."""
    sign_in_as(client, "olivia")
    buy(example, client, "x_small")
    for name in ("oscar", "mike"):
        other = example.test_client()
        words = text_of(sign_in_as(other, name).text)
        assert "Current plan of Acme X Small" in words
    assert "License Management" not in sign_in_as(example.test_client(), "mike").text


def test_feature_pages_need_their_add_on_R_EX_2(example: Flask, client: FlaskClient) -> None:
    """R-EX-2: Operation and Marketing answer 402 without their add-on and 200 with it."""
    sign_in_as(client, "alice")
    for name, title in [("operation", "Operation"), ("marketing", "Marketing")]:
        page = client.get(f"/features/{name}")
        assert page.status_code == 402
        assert f"Needs the {title} add-on" in text_of(page.text)
    buy(example, client, "small", addons=["operation"])
    included = client.get("/features/operation")
    assert included.status_code == 200
    assert "Operation is included in your plan." in included.text
    assert client.get("/features/marketing").status_code == 402
    assert client.get("/features/reports").status_code == 200  # every paid plan has Reports
    assert client.get("/features/nothing").status_code == 404


def test_feature_pages_follow_the_team_license_for_members_R_EX_2(
    example: Flask, client: FlaskClient
) -> None:
    """R-EX-2: mike uses what Acme bought; when refused he is told who manages billing."""
    mike = example.test_client()
    sign_in_as(mike, "mike")
    refused = mike.get("/features/marketing")
    assert refused.status_code == 402
    assert "/billing/licenses" not in refused.text.split("</header>")[1]
    assert "Needs the Marketing add-on" in text_of(refused.text)
    sign_in_as(client, "oscar")
    buy(example, client, "medium", addons=["marketing"])
    assert mike.get("/features/marketing").status_code == 200


def test_feature_pages_need_sign_in(client: FlaskClient) -> None:
    response = client.get("/features/operation")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


# -- R-EX-3: the Mail page ------------------------------------------------------------------


def test_mail_page_lists_the_purchase_email_R_EX_3(example: Flask, client: FlaskClient) -> None:
    """R-EX-3: the purchase e-mail can be read in the app, pending until the mail job runs,
    then sent; the newest message comes first."""
    sign_in_as(client, "alice")
    assert "No e-mail yet." in client.get("/mail").text
    buy(example, client, "small")
    page = client.get("/mail")
    words = text_of(page.text)
    assert re.search(
        r"Your Small purchase is complete \(\S+\) — to alice@example.com pending", words
    )
    assert "Thank you for your purchase." in page.text

    with example.app_context():
        from flask_subscriptions.jobs import run_due_jobs

        run_due_jobs()
        db.session.add(
            OutboxMessage(
                kind="note",
                account_id=db.session.scalar(select(User).where(User.name == "alice")).billing_id,
                recipients=["alice@example.com"],
                subject="A newer message",
                text_body="Newest first.",
                status="pending",
                next_attempt_at=datetime(2099, 1, 1),
                created_at=datetime(2000, 1, 1),  # the order is the recording order
            )
        )
        db.session.commit()
    page = client.get("/mail")
    words = text_of(page.text)
    assert "1 sent, 1 pending" in words
    assert re.search(r"Your Small purchase is complete \(\S+\) — to alice@example.com sent", words)
    assert page.text.index("A newer message") < page.text.index("purchase is complete")


# -- R-EX-2: the test clock -----------------------------------------------------------------


def test_test_clock_moves_the_date_and_resets_R_EX_2(example: Flask, client: FlaskClient) -> None:
    """R-EX-2: the page shows today's billing date, moves it N days forward, and Reset goes
    back to real time; every POST needs its CSRF token (and a signed-in demo person)."""
    sign_in_as(client, "alice")
    page = client.get("/test-clock")
    assert page.status_code == 200
    start = shown_date(page.text)
    assert start == real_today()

    moved = move_clock(client, 3)
    assert shown_date(moved.text) == start + timedelta(days=3)
    with example.app_context():  # Sandbox Pay judges card expiry on the same date
        state = get_state()
        assert state.gateway is not None
        assert state.gateway.today() == state.today() == start + timedelta(days=3)  # type: ignore[attr-defined]
    assert "3 days ahead of the real date" in text_of(moved.text)
    message = flashed(moved.text)
    assert message.startswith("Moved 3 days forward to ")
    assert "ran the jobs each day: renewed 0, failed 0, pending 0, expired 0;" in message
    assert "settled 0 unknown payments" in message and message.endswith("sent 0 e-mails.")
    assert "{" not in message and "Report(" not in message  # plain words, not a repr

    assert client.post("/test-clock", data={"days": 5}).status_code == 400  # no CSRF token
    assert shown_date(client.get("/test-clock").text) == start + timedelta(days=3)
    refused = post_form(client, "/test-clock", "/test-clock", {"days": 0})
    assert refused.status_code == 400
    assert "Enter a number of days from 1 to" in flashed(refused.text)
    assert client.post("/test-clock/reset").status_code == 400  # no CSRF token
    assert shown_date(client.get("/test-clock").text) == start + timedelta(days=3)

    reset = post_form(client, "/test-clock", "/test-clock/reset", follow_redirects=True)
    assert shown_date(reset.text) == real_today()
    assert "The clock is back to real time" in reset.text


def test_test_clock_renews_a_license_and_mails_the_receipt_R_EX_2_R_EX_3(
    example: Flask, client: FlaskClient
) -> None:
    """R-EX-2: a monthly license bought today renews when the clock moves 31 days: a paid
    renewal invoice exists, the summary says so in words, and (R-EX-3) the receipt is on
    the Mail page."""
    sign_in_as(client, "alice")
    buy(example, client, "small")
    with example.app_context():
        first_end = db.session.scalar(select(Subscription.current_term_end))
    assert first_end is not None and first_end <= real_today() + timedelta(days=31)

    moved = move_clock(client, 31)
    assert shown_date(moved.text) == real_today() + timedelta(days=31)
    message = flashed(moved.text)
    assert "renewed 1, failed 0, pending 0, expired 0 (charged $100.00);" in message
    assert message.endswith("sent 2 e-mails.")  # the purchase e-mail and the receipt

    with example.app_context():
        renewal = db.session.scalar(select(Invoice).where(Invoice.kind == "renewal"))
        assert renewal is not None
        assert (renewal.status, renewal.total, renewal.period_start) == ("paid", 10000, first_end)
        number = renewal.number
        subscription = db.session.scalar(select(Subscription))
        assert subscription is not None and subscription.current_term_start == first_end
    mail = text_of(client.get("/mail").text)
    assert f"Receipt for your Small renewal ({number}) — to alice@example.com sent" in mail
    home = text_of(client.get("/").text)
    assert "Status Enabled" in home

    reset = post_form(client, "/test-clock", "/test-clock/reset", follow_redirects=True)
    assert shown_date(reset.text) == real_today()


# -- languages (R-I18N-1) --------------------------------------------------------------------


def test_hana_reads_japanese_and_sees_yen_without_decimals_R_I18N_1_R_MON_4(
    example: Flask,
) -> None:
    """hana's language is Japanese and she bills in JPY: with an English browser too, the
    plans page is Japanese, in whole yen; minjun's is Korean, in won."""
    client = example.test_client()
    sign_in_as(client, "hana")
    plans = text_of(client.get("/billing/plans").text)
    assert "今すぐ購入" in plans and "￥11,000 / 月" in plans and "￥59,400 / 年" in plans
    assert "$" not in plans and not re.search(r"￥[\d,]+\.\d", plans)
    other = example.test_client()
    sign_in_as(other, "minjun")
    plans = text_of(other.get("/billing/plans").text)
    assert "지금 구매" in plans and "₩110,000 / 월" in plans and "₩1,188,000 / 년" in plans


def test_the_header_switches_the_language_R_I18N_1(example: Flask) -> None:
    """English / 日本語 / 한국어 in the header: the choice holds for the browser's session."""
    client = example.test_client()
    sign_in_as(client, "alice")
    home = client.get("/")
    for name in ("English", "日本語", "한국어"):
        assert f">{name}</a>" in home.text
    assert client.get("/language/ko?next=/billing/plans").headers["Location"] == "/billing/plans"
    assert "지금 구매" in client.get("/billing/plans").text
    client.get("/language/ja")
    assert "今すぐ購入" in client.get("/billing/plans").text
    client.get("/language/en")
    assert "Buy now" in client.get("/billing/plans").text


def test_the_header_is_remembered_per_kind_of_visitor_and_language_R_EX_1(
    example: Flask,
) -> None:
    """R-EX-1, R-SEC-2, R-I18N-1: the header's links are rendered once per kind of visitor
    and language, then remembered; an owner's links never reach a member or a visitor, and
    a language's words never reach another language's pages, in the same app."""
    owner, member, visitor, support = (example.test_client() for _ in range(4))
    assert "License Management" in header(sign_in_as(owner, "olivia").text)
    member_top = header(sign_in_as(member, "mike").text)
    assert "/billing/" not in member_top and "Support console" not in member_top
    visitor_top = header(visitor.get("/").text)
    assert "/billing/plans" in visitor_top and "Mail" not in visitor_top
    assert "Support console" in header(sign_in_as(support, "sam").text)
    owner.get("/language/ja")
    assert ">プラン</a>" in header(owner.get("/").text)
    assert ">Plans</a>" in header(visitor.get("/").text)
    owner.get("/language/en")
    assert ">Plans</a>" in header(owner.get("/").text)
