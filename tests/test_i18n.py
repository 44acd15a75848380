"""Languages (R-I18N-1, R-I18N-2, R-MON-4): the host's locale selector, else the browser's
Accept-Language, else SUBSCRIPTIONS_LOCALE chooses the language of every page; an account's
preferred language is kept and its e-mails and PDF receipts are written in it, jobs included;
yen and won are whole amounts, dates are the locale's own."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import Babel
from flask_babel import gettext as host_gettext
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine, select

from flask_subscriptions import Subscriptions
from flask_subscriptions.core.catalog import load_catalog_file
from flask_subscriptions.gateways.sandbox import SandboxGateway
from flask_subscriptions.i18n import long_date, money, rendering_locale
from flask_subscriptions.models import BillingProfile, PaymentMethod, Subscription
from flask_subscriptions.models import metadata as billing_metadata
from flask_subscriptions.services import checkout
from flask_subscriptions.services.catalog import load_catalog
from flask_subscriptions.services.profiles import set_locale
from flask_subscriptions.services.renewals import renew_due

from .conftest import SAMPLE_CATALOG, Outbox, at_noon, sign_in
from .factories import add_card, new_user
from .flows import choose_card, place, register_card, start_order, text_of
from .hosts import User, db
from .test_receipts import latest_invoice, pdf_text


def buy(account: User, currency: str, plan: str = "small") -> Subscription:
    """Buy ``plan`` monthly in ``currency`` through the services, outside any request (as a
    job or a webhook would complete it)."""
    method = add_card(account)
    order = checkout.start_order(plan, "month", currency, [], account)
    checkout.choose_payment_method(order, account, method.id)
    view = checkout.view_order(order, account)
    placed = checkout.place_order(order.key, account, view.quote.fingerprint)
    assert placed.state == "paid", placed.failure_message
    found = db.session.scalar(select(Subscription).where(Subscription.id == placed.subscription_id))
    assert found is not None
    return found


# -- which language ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "words"),
    [
        ("ja", ("プラン", "今すぐ購入", "￥0 / 月")),
        ("ko-KR,ko;q=0.9,en;q=0.5", ("플랜", "지금 구매", "₩0 / 월")),
        ("fr-FR", ("Plans", "Buy now", "$0.00 / month")),  # not ours: SUBSCRIPTIONS_LOCALE
        ("", ("Plans", "Buy now", "$0.00 / month")),
    ],
)
def test_the_browser_language_chooses_the_page_language_R_I18N_1(
    app: Flask, client: FlaskClient, catalog: None, accept: str, words: tuple[str, ...]
) -> None:
    currency = {"ja": "JPY", "ko-KR,ko;q=0.9,en;q=0.5": "KRW"}.get(accept, "USD")
    page = client.get(f"/billing/plans?currency={currency}", headers={"Accept-Language": accept})
    assert page.status_code == 200
    text = text_of(page.text)
    for expected in words:
        assert expected in text, expected


def test_a_refusal_is_worded_in_the_persons_language_R_I18N_2(
    app: Flask, client: FlaskClient, alice: User, catalog: None
) -> None:
    """A domain error is a code and values; the page says it in Japanese or Korean."""
    sign_in(client, alice)
    for accept, sentence in (
        ("ja", "その請求書は見つかりませんでした。"),
        ("ko", "해당 청구서를 찾을 수 없습니다."),
        ("en", "That invoice was not found."),
    ):
        page = client.get("/billing/invoices/INV-999999", headers={"Accept-Language": accept})
        assert page.status_code == 404
        assert sentence in text_of(page.text)


def _bare_host(tmp_path: Path, babel: Babel | None, **babel_options: Any) -> Flask:
    """A host app of its own, with (or without) its own Flask-Babel set up before billing."""
    app = Flask(__name__)
    url = f"sqlite:///{tmp_path / 'host.sqlite'}"
    app.config.update(
        SECRET_KEY="x",
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=url,
        SUBSCRIPTIONS_SCHEDULER_ENABLED=False,
        MAIL_SUPPRESS_SEND=True,
    )
    if babel is not None:
        babel.init_app(app, **babel_options)
    LoginManager(app).user_loader(lambda user_id: None)
    host_db = SQLAlchemy()
    host_db.init_app(app)
    subscriptions = Subscriptions(db=host_db, gateway=SandboxGateway(url))
    subscriptions.account_loader(lambda account_id: None)
    subscriptions.init_app(app)
    engine = create_engine(url)
    billing_metadata.create_all(engine)
    engine.dispose()
    with app.app_context():
        load_catalog(load_catalog_file(SAMPLE_CATALOG))
        host_db.session.remove()
    return app


def test_the_hosts_own_locale_selector_chooses_and_its_catalogs_stay_its_own_R_I18N_1(
    tmp_path: Path,
) -> None:
    """Like Flask-Security-Too: our words are in our own domain. A host that set up
    Flask-Babel with a selector decides the language; its own gettext is untouched."""
    app = _bare_host(tmp_path, Babel(), locale_selector=lambda: "ko")
    page = app.test_client().get("/billing/plans", headers={"Accept-Language": "ja"})
    assert "지금 구매" in page.text and "今すぐ購入" not in page.text
    with app.test_request_context("/"):
        assert host_gettext("License Management") == "License Management"


def test_a_host_babel_without_a_selector_leaves_the_choice_to_the_browser_R_I18N_1(
    tmp_path: Path,
) -> None:
    app = _bare_host(tmp_path, Babel())
    page = app.test_client().get("/billing/plans", headers={"Accept-Language": "ja"})
    assert "今すぐ購入" in page.text


def test_a_host_without_babel_gets_it_set_up_for_billing_R_I18N_1(tmp_path: Path) -> None:
    app = _bare_host(tmp_path, None)
    assert "babel" in app.extensions
    page = app.test_client().get("/billing/plans", headers={"Accept-Language": "ko"})
    assert "지금 구매" in page.text


# -- money and dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "amount", "currency", "shown"),
    [
        ("ja", 15000, "JPY", "￥15,000"),
        ("ja_JP", 1100, "JPY", "￥1,100"),
        ("ko", 150000, "KRW", "₩150,000"),
        ("ko_KR", -150000, "KRW", "-₩150,000"),
        ("en_US", 15000, "JPY", "¥15,000"),
        ("en_US", 1300, "USD", "$13.00"),
        ("ja", 1300, "USD", "$13.00"),
    ],
)
def test_yen_and_won_are_whole_amounts_in_the_persons_locale_R_MON_4(
    app: Flask, locale: str, amount: int, currency: str, shown: str
) -> None:
    with rendering_locale(locale):
        assert money(amount, currency) == shown


@pytest.mark.parametrize(
    ("locale", "shown"),
    [("ja", "2027年1月2日"), ("ko", "2027년 1월 2일"), ("en_US", "January 2, 2027")],
)
def test_dates_are_written_the_locales_way_R_I18N_1(app: Flask, locale: str, shown: str) -> None:
    with rendering_locale(locale):
        assert long_date(date(2027, 1, 2)) == shown


# -- an account's language: e-mails and receipts -----------------------------------------


def test_the_language_an_owner_buys_in_is_kept_for_the_account_R_I18N_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, outbox: Outbox
) -> None:
    """Bought in a Korean browser: the purchase e-mail is Korean, and so is the account's
    preferred language, which the jobs' e-mails will use."""
    sign_in(client, alice)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko-KR,ko;q=0.9"
    register_card(client)
    key = start_order(client, currency="KRW")
    card = db.session.scalar(select(PaymentMethod.id).where(PaymentMethod.account_id == "1"))
    assert card is not None and choose_card(client, key, card).status_code == 302
    assert place(client, key).headers["Location"].endswith("/complete")
    profile = db.session.scalar(
        select(BillingProfile).where(BillingProfile.account_id == alice.billing_id)
    )
    assert profile is not None and profile.locale == "ko"
    [mail] = outbox.of_kind("purchase_completed")
    assert mail.subject.startswith("Small 구매가 완료되었습니다")
    assert "₩110,000" in mail.text_body and "₩110,000.00" not in mail.text_body


@pytest.mark.parametrize(
    ("language", "currency", "words"),
    [
        (
            "ja",
            "JPY",
            ("Small のご購入が完了しました", "お支払い金額：", "￥11,000", "2026年3月17日"),
        ),
        ("ko", "KRW", ("Small 구매가 완료되었습니다", "결제 금액:", "₩110,000", "2026년 3월 17일")),
    ],
)
def test_emails_are_written_in_the_accounts_language_without_a_request_R_I18N_1(
    app: Flask, alice: User, catalog: None, outbox: Outbox, language: str, currency: str,
    words: tuple[str, ...],
) -> None:  # fmt: skip
    set_locale(alice.billing_id, language)
    buy(alice, currency)
    [mail] = outbox.of_kind("purchase_completed")
    written = f"{mail.subject}\n{mail.text_body}\n{mail.html_body}"
    for expected in words:
        assert expected in written, expected
    assert "Thank you" not in written and ".00" not in written


def test_a_renewal_batch_writes_each_receipt_in_its_accounts_language_R_I18N_1_R_REN_3(
    app: Flask, alice: User, catalog: None, clock: Any, outbox: Outbox
) -> None:
    hana, minjun = new_user("hana"), new_user("minjun")
    set_locale(hana.billing_id, "ja")
    set_locale(minjun.billing_id, "ko")
    buy(alice, "USD")
    buy(hana, "JPY")
    buy(minjun, "KRW")
    at_noon(clock, date(2026, 4, 17))
    renew_due()
    subjects = {m.account_id: m.subject for m in outbox.of_kind("renewal_receipt")}
    assert subjects[alice.billing_id].startswith("Receipt for your Small renewal")
    assert subjects[hana.billing_id].startswith("Small の更新の領収書")
    assert subjects[minjun.billing_id].startswith("Small 갱신 영수증")
    bodies = {m.account_id: m.text_body for m in outbox.of_kind("renewal_receipt")}
    assert "2026年4月17日～2026年5月17日" in bodies[hana.billing_id]
    assert "￥11,000" in bodies[hana.billing_id]
    assert "₩110,000" in bodies[minjun.billing_id]


@pytest.mark.parametrize(
    ("language", "currency", "words"),
    [
        ("ja", "JPY", ("領収書", "お支払い日", "2026年3月17日", "￥11,000", "カードへの請求額")),
        ("ko", "KRW", ("영수증", "결제일", "2026년 3월 17일", "₩110,000", "카드 청구 금액")),
    ],
)
def test_a_receipt_is_printed_in_the_accounts_language_with_its_glyphs_R_INV_2_R_I18N_1(
    app: Flask, client: FlaskClient, alice: User, catalog: None, language: str,
    currency: str, words: tuple[str, ...],
) -> None:  # fmt: skip
    """Read back from the PDF: the CJK font is embedded and every character is there."""
    set_locale(alice.billing_id, language)
    buy(alice, currency)
    sign_in(client, alice)
    invoice = latest_invoice("purchase")
    response = client.get(f"/billing/invoices/{invoice.number}/receipt.pdf")
    assert response.status_code == 200
    text = pdf_text(response.data)
    for expected in words:
        assert expected in text, (expected, text)
    assert invoice.number in text and "Receipt" not in text
