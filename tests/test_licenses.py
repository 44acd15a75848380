"""License Management (R-LIC-1..7, R-CAT-2, R-SEC-2), driven through the pages as an owner
would: the list at /billing/licenses, each license's page, its form and its CSRF token.

Each test checks what the owner sees (the rows, the status, the messages) and what is stored
(the subscription row, the e-mails recorded in the outbox).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from flask_subscriptions.models import Invoice, PaymentMethod, Plan, Subscription
from flask_subscriptions.services.entitlement_cache import touch_catalog
from flask_subscriptions.services.renewals import renew_due

from .conftest import Outbox, at_noon, csrf_token, sign_in
from .factories import new_user, subscribe
from .flows import FIRST_CHARGE_ONLY, choose_card, place, register_card, start_order
from .hosts import Team, User, db

LIST = "/billing/licenses"
SCHEDULED = "Your plan is scheduled to change."
NOT_AN_OPTION = "You cannot change to a plan that is not an option."
EXPIRED_MESSAGE = "This license has expired; buy a plan on the plans page."


# --- what the owner sees -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of the License Management list, as its cells read."""

    plan: str
    interval: str
    status: str
    term_end: str
    auto_renewal: str
    renews_with: str
    scheduled: bool


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _rows(client: FlaskClient) -> list[tuple[int, Row]]:
    """The list's rows in the order shown, each with its license id."""
    page = client.get(LIST)
    assert page.status_code == 200, page.text
    assert "<h1" in page.text and "License Management" in page.text
    rows = []
    for license_id, body in re.findall(
        r'<tr class="subs-license" data-license="(\d+)">(.*?)</tr>', page.text, re.S
    ):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        assert len(cells) == 6, body
        link = re.search(r"<a [^>]*>(.*?)</a>", cells[0], re.S)
        assert link, cells[0]
        plan, interval, status, term_end, auto, renews = (_text(c) for c in cells)
        rows.append(
            (
                int(license_id),
                Row(
                    plan=_text(link[1]),
                    interval=interval,
                    status=status,
                    term_end=term_end,
                    auto_renewal=auto,
                    renews_with=renews,
                    scheduled=SCHEDULED in plan,
                ),
            )
        )
    return rows


def _row(client: FlaskClient, license_id: int) -> Row:
    found = dict(_rows(client))
    assert license_id in found, found
    return found[license_id]


def _page(client: FlaskClient, license_id: int) -> TestResponse:
    page = client.get(f"{LIST}/{license_id}")
    assert page.status_code == 200, page.text
    return page


def _page_status(page_html: str) -> str:
    match = re.search(r"<th>Status</th><td><span[^>]*>([^<]+)</span>", page_html)
    assert match, page_html
    return match[1]


def _options(page_html: str) -> list[str]:
    """The plans the page offers to renew with (their codes, in order)."""
    select_ = re.search(r'<select name="renew_with">(.*?)</select>', page_html, re.S)
    assert select_, page_html
    return re.findall(r'<option value="([^"]+)"', select_[1])


def _selected(page_html: str) -> tuple[str, str]:
    """(the switch's checked position, the plan selected to renew with)."""
    switch = re.findall(r'name="auto_renewal" value="(enabled|disabled)" checked', page_html)
    plan = re.findall(r'<option value="([^"]+)" selected>', page_html)
    assert len(switch) == 1 and len(plan) == 1, page_html
    return switch[0], plan[0]


def _save(
    client: FlaskClient, license_id: int, auto_renewal: str, renew_with: str | None = None
) -> TestResponse:
    """The license page's form: the switch, the plan to renew with, Save."""
    page = _page(client, license_id)
    data = {"csrf_token": csrf_token(page.text), "auto_renewal": auto_renewal}
    if renew_with is not None:
        data["renew_with"] = renew_with
    return client.post(f"{LIST}/{license_id}", data=data)


def _saved(client: FlaskClient, license_id: int, auto_renewal: str, renew_with: str) -> str:
    """Save successfully: back to the list, which confirms it; returns the list's HTML."""
    response = _save(client, license_id, auto_renewal, renew_with)
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == LIST
    page = client.get(LIST)
    assert "Your license was saved." in page.text
    return page.text


# --- what is stored ------------------------------------------------------------------------


def _code(plan_id: int | None) -> str | None:
    if plan_id is None:
        return None
    return db.session.scalar(select(Plan.code).where(Plan.id == plan_id))


def _stored(license_id: int) -> tuple[object, ...]:
    """The subscription row as the database holds it now."""
    db.session.expire_all()
    s = db.session.get(Subscription, license_id)
    assert s is not None
    return (
        s.state,
        s.auto_renew,
        _code(s.plan_id),
        _code(s.next_plan_id),
        s.current_term_end,
        s.live_account_id,
        s.version,
    )


def _member(team: Team, name: str) -> User:
    return next(m for m in team.members if m.name == name)


# --- R-LIC-1, R-LIC-2: the list and its statuses -----------------------------------------


def test_list_shows_current_and_past_licenses_R_LIC_1_R_LIC_2(
    client: FlaskClient, alice: User, catalog: None, clock: object
) -> None:
    """R-LIC-1: plan and add-ons, interval, status, term end, auto-renewal, next plan, for the
    current license and a past one (expired, then a new plan bought)."""
    sign_in(client, alice)
    assert _rows(client) == []
    assert "You are on the Free plan." in client.get(LIST).text

    past = subscribe(alice, "x_small", addons=("operation",)).id
    assert _rows(client) == [
        (past, Row("X Small + Operation", "Monthly", "Enabled", "April 17, 2026", "Enabled",
                   "X Small", False)),
    ]  # fmt: skip
    _saved(client, past, "disabled", "x_small")
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().expired == 1
    at_noon(clock, date(2026, 4, 20))
    current = subscribe(alice, "medium", interval="year", addons=("marketing",)).id

    assert _rows(client) == [
        (current, Row("Medium + Marketing", "Annual", "Enabled", "April 20, 2027", "Enabled",
                      "Medium", False)),
        (past, Row("X Small + Operation", "Monthly", "Expired", "April 17, 2026", "Disabled",
                   "—", False)),
    ]  # fmt: skip
    assert "You are on the Free plan." not in client.get(LIST).text
    assert _stored(past)[:4] == ("ended", False, "x_small", None)
    assert _stored(current)[:4] == ("active", True, "medium", None)
    ended = db.session.get(Subscription, past)
    assert (ended.ended_on, ended.live_account_id) == (date(2026, 4, 17), None)


def test_list_is_reached_from_the_license_page_and_back_R_LIC_1(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """Each row links to its license page; the page has the switch, the plan, Save and the way
    back to the list."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    listing = client.get(LIST).text
    assert f'href="{LIST}/{license_id}"' in listing
    page = _page(client, license_id).text
    assert "<legend>Automatic renewal</legend>" in page
    assert "Plan to renew with" in page
    assert re.search(r'<button type="submit"[^>]*>Save</button>', page)
    assert re.search(rf'<a [^>]*href="{LIST}"[^>]*>Back to License Management</a>', page)
    assert _page_status(page) == "Enabled"
    assert _selected(page) == ("enabled", "small")
    assert "April 17, 2026" in page


def test_payment_failed_status_after_a_declined_renewal_R_LIC_2(
    client: FlaskClient, alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-LIC-2: a renewal the card declines shows Payment failed, in the list and the page."""
    license_id = subscribe(alice, "small", card=FIRST_CHARGE_ONLY).id
    sign_in(client, alice)
    assert _row(client, license_id).status == "Enabled"
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().failed == 1

    row = _row(client, license_id)
    stored = db.session.get(Subscription, license_id)
    assert (row.status, row.plan, row.auto_renewal, row.renews_with) == (
        "Payment failed",
        "Small",
        "Enabled",
        "Small",
    )
    assert row.term_end == f"{stored.current_term_end:%B} {stored.current_term_end.day}, 2026"
    assert _page_status(_page(client, license_id).text) == "Payment failed"
    assert (stored.state, stored.payment_failed_on) == ("active", date(2026, 4, 17))
    assert len(outbox.of_kind("payment_failed")) == 1


# --- R-LIC-3: disable, then expire -------------------------------------------------------


def test_disable_keeps_the_license_until_the_term_end_then_it_expires_R_LIC_3(
    client: FlaskClient,
    alice: User,
    catalog: None,
    clock: object,
    outbox: Outbox,
    gateway: object,
) -> None:
    """R-LIC-3: Disabled stays usable (same plan) until the term end, then Expired, and the
    account may buy again; e-mails auto_renewal_disabled, then license_expired."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    listing = _saved(client, license_id, "disabled", "small")
    assert "Disabled" in listing
    assert _row(client, license_id) == Row(
        "Small", "Monthly", "Disabled", "April 17, 2026", "Disabled", "—", False
    )
    assert _selected(_page(client, license_id).text) == ("disabled", "small")
    assert _stored(license_id)[:6] == (
        "active",
        False,
        "small",
        None,
        date(2026, 4, 17),
        alice.billing_id,
    )
    [mail] = outbox.of_kind("auto_renewal_disabled")
    assert mail.recipients == ["alice@example.com"]
    assert "You keep every feature until\nApril 17, 2026" in mail.text_body

    at_noon(clock, date(2026, 4, 16))
    assert renew_due().expired == 0
    assert _row(client, license_id).status == "Disabled"
    assert _stored(license_id)[:3] == ("active", False, "small")

    at_noon(clock, date(2026, 4, 17))
    assert renew_due().expired == 1
    assert _row(client, license_id) == Row(
        "Small", "Monthly", "Expired", "April 17, 2026", "Disabled", "—", False
    )
    assert _page_status(_page(client, license_id).text) == "Expired"
    assert _stored(license_id)[0] == "ended"
    assert db.session.get(Subscription, license_id).live_account_id is None
    assert outbox.kinds() == ["purchase_completed", "auto_renewal_disabled", "license_expired"]
    assert "now on the Free plan" in outbox.of_kind("license_expired")[0].text_body
    assert gateway.charge_count() == 1  # type: ignore[attr-defined]

    step_1 = client.get("/billing/checkout/medium?interval=month&currency=USD")
    assert step_1.status_code == 200 and "To Payment Methods" in step_1.text
    new_id = subscribe(alice, "medium").id
    assert [license_id for license_id, _ in _rows(client)] == [new_id, license_id]
    assert _row(client, new_id).status == "Enabled"


# --- R-LIC-4: enable again; an expired license cannot be edited ---------------------------


def test_disabled_license_is_enabled_again_with_a_chosen_plan_R_LIC_4(
    client: FlaskClient, alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-LIC-4: before its term ends, a Disabled license is Enabled again, renewing as the
    plan the owner picks among the options."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    _saved(client, license_id, "disabled", "small")
    at_noon(clock, date(2026, 4, 10))
    page = _page(client, license_id).text
    assert _options(page) == ["small", "free", "x_small", "medium", "large"]

    _saved(client, license_id, "enabled", "medium")
    assert _row(client, license_id) == Row(
        "Small", "Monthly", "Enabled", "April 17, 2026", "Enabled", "Medium", True
    )
    assert _selected(_page(client, license_id).text) == ("enabled", "medium")
    assert _stored(license_id)[:4] == ("active", True, "small", "medium")
    [enabled] = outbox.of_kind("auto_renewal_enabled")
    assert enabled.recipients == ["alice@example.com"]
    assert "On April 17, 2026 your license renews as Medium." in enabled.text_body
    assert outbox.kinds()[-2:] == ["auto_renewal_enabled", "plan_change_scheduled"]

    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    assert _row(client, license_id) == Row(
        "Medium", "Monthly", "Enabled", "May 17, 2026", "Enabled", "Medium", False
    )
    invoice = db.session.scalar(select(Invoice).where(Invoice.kind == "renewal"))
    assert (invoice.amount_due, invoice.status) == (20000, "paid")


def test_disabled_license_enabled_again_on_its_own_plan_R_LIC_4(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox
) -> None:
    """Enabling again on the current plan schedules nothing: no label, one e-mail."""
    license_id = subscribe(alice, "x_small").id
    sign_in(client, alice)
    _saved(client, license_id, "disabled", "x_small")
    _saved(client, license_id, "enabled", "x_small")
    assert _row(client, license_id) == Row(
        "X Small", "Monthly", "Enabled", "April 17, 2026", "Enabled", "X Small", False
    )
    assert _stored(license_id)[:4] == ("active", True, "x_small", None)
    assert outbox.kinds() == ["purchase_completed", "auto_renewal_disabled", "auto_renewal_enabled"]


def test_expired_license_cannot_be_edited_R_LIC_4(
    client: FlaskClient, alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-LIC-4: once expired, the page offers no form, and a form kept open from before the
    term end is refused with a clear message; nothing changes."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    _saved(client, license_id, "disabled", "small")
    stale_form = _page(client, license_id).text  # opened before the term end
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().expired == 1

    page = _page(client, license_id).text
    assert _page_status(page) == "Expired"
    assert "<form" not in page and "Save</button>" not in page
    assert "Back to License Management" in page

    before, mails = _stored(license_id), outbox.kinds()
    row_before = _row(client, license_id)
    response = client.post(
        f"{LIST}/{license_id}",
        data={
            "csrf_token": csrf_token(stale_form),
            "auto_renewal": "enabled",
            "renew_with": "medium",
        },
    )
    assert response.status_code == 400
    assert EXPIRED_MESSAGE in response.text
    assert _stored(license_id) == before
    assert before[:4] == ("ended", False, "small", None)
    assert _row(client, license_id) == row_before
    assert row_before.status == "Expired"
    assert outbox.kinds() == mails


# --- R-LIC-5, R-LIC-6: the plan to renew with --------------------------------------------


def test_scheduled_change_shows_the_label_and_emails_the_owner_R_LIC_6_R_LIC_5(
    client: FlaskClient, alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-LIC-6: after scheduling Medium the list says so, and plan_change_scheduled is sent.
    R-LIC-5: the current plan stays until the term end, then the license renews as Medium."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    assert SCHEDULED not in client.get(LIST).text

    listing = _saved(client, license_id, "enabled", "medium")
    assert SCHEDULED in listing
    assert _row(client, license_id) == Row(
        "Small", "Monthly", "Enabled", "April 17, 2026", "Enabled", "Medium", True
    )
    assert _stored(license_id)[:4] == ("active", True, "small", "medium")
    [mail] = outbox.of_kind("plan_change_scheduled")
    assert mail.recipients == ["alice@example.com"]
    assert mail.subject == "Your plan is scheduled to change to Medium"
    assert "Your license will renew as Medium on April 17, 2026." in mail.text_body
    assert "Until then you keep Small with all its features." in mail.text_body
    assert "you keep Small with all its features" in _page(client, license_id).text

    at_noon(clock, date(2026, 4, 16))
    renew_due()
    assert _row(client, license_id).plan == "Small"
    assert _stored(license_id)[2:4] == ("small", "medium")
    at_noon(clock, date(2026, 4, 17))
    assert renew_due().renewed == 1
    row = _row(client, license_id)
    assert (row.plan, row.scheduled, row.term_end) == ("Medium", False, "May 17, 2026")
    assert SCHEDULED not in client.get(LIST).text
    assert _stored(license_id)[2:4] == ("medium", None)


def test_saving_disabled_deselects_the_scheduled_plan_R_LIC_5(
    client: FlaskClient, alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    """R-LIC-5: a plan is chosen only while Enabled; Save with Disabled deselects any scheduled
    plan, even when the form posts one, and the current plan stays until the term end."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    _saved(client, license_id, "enabled", "medium")
    assert _row(client, license_id).scheduled

    _saved(client, license_id, "disabled", "large")
    assert _row(client, license_id) == Row(
        "Small", "Monthly", "Disabled", "April 17, 2026", "Disabled", "—", False
    )
    assert _selected(_page(client, license_id).text) == ("disabled", "small")
    assert _stored(license_id)[:4] == ("active", False, "small", None)
    assert outbox.kinds() == [
        "purchase_completed",
        "plan_change_scheduled",
        "auto_renewal_disabled",
    ]

    at_noon(clock, date(2026, 4, 17))
    report = renew_due()
    assert (report.expired, report.renewed) == (1, 0)
    assert _row(client, license_id).status == "Expired"
    assert db.session.scalar(select(Invoice).where(Invoice.kind == "renewal")) is None


def test_saving_unchanged_sends_no_email_R_LIC_5(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox
) -> None:
    """Saving what is already set changes nothing the owner sees and sends no e-mail."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    row = _row(client, license_id)
    _saved(client, license_id, "enabled", "small")
    assert _row(client, license_id) == row
    assert _stored(license_id)[:4] == ("active", True, "small", None)
    assert outbox.kinds() == ["purchase_completed"]


# --- R-LIC-7, R-CAT-2: only the options --------------------------------------------------


def test_page_offers_only_the_options_and_points_to_support_R_LIC_7_R_CAT_2(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """R-CAT-2: X Small may not renew as Large, so its page does not offer it; R-LIC-7: the
    page says other plans go through support."""
    license_id = subscribe(alice, "x_small").id
    sign_in(client, alice)
    page = _page(client, license_id).text
    assert _options(page) == ["x_small", "free", "small", "medium"]
    assert "Large" not in page
    assert NOT_AN_OPTION in page
    assert "For other plans, contact support" in page


def test_the_options_follow_a_catalog_change_at_once_R_CAT_2(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """The page takes its options from this process's copy of the catalog: a plan retired
    after the page was shown is gone from it on the next view, not when the copy expires."""
    license_id = subscribe(alice, "x_small").id
    sign_in(client, alice)
    assert _options(_page(client, license_id).text) == ["x_small", "free", "small", "medium"]
    medium = db.session.scalar(select(Plan).where(Plan.code == "medium"))
    assert medium is not None
    medium.active = False
    touch_catalog()  # what a catalog load does in its transaction
    db.session.commit()
    assert _options(_page(client, license_id).text) == ["x_small", "free", "small"]


def test_small_license_page_does_offer_large_R_CAT_2(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    """The contrast: Small lists Large among its options, so the page offers it."""
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    assert "large" in _options(_page(client, license_id).text)


@pytest.mark.parametrize(
    ("start", "switch", "renew_with"),
    [
        ("enabled", "enabled", "large"),  # not an option of X Small
        ("enabled", "enabled", "platinum"),  # no such plan
        ("disabled", "enabled", "large"),  # R-LIC-4: enabling again, only the options
    ],
)
def test_a_plan_that_is_not_an_option_is_refused_R_LIC_7_R_CAT_2_R_SEC_4(
    client: FlaskClient,
    alice: User,
    catalog: None,
    outbox: Outbox,
    start: str,
    switch: str,
    renew_with: str,
) -> None:
    """R-CAT-2: a tampered POST gets the clear message and changes nothing."""
    license_id = subscribe(alice, "x_small").id
    sign_in(client, alice)
    if start == "disabled":
        _saved(client, license_id, "disabled", "x_small")
    row_before, stored_before, mails = _row(client, license_id), _stored(license_id), outbox.kinds()

    response = _save(client, license_id, switch, renew_with)
    assert response.status_code == 400
    assert NOT_AN_OPTION in response.text
    assert _options(response.text) == ["x_small", "free", "small", "medium"]
    assert _row(client, license_id) == row_before
    assert row_before.status == ("Enabled" if start == "enabled" else "Disabled")
    assert _stored(license_id) == stored_before
    assert outbox.kinds() == mails


def test_a_malformed_switch_is_refused_R_SEC_4(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox
) -> None:
    license_id = subscribe(alice, "small").id
    sign_in(client, alice)
    before, row = _stored(license_id), _row(client, license_id)
    response = _save(client, license_id, "maybe", "medium")
    assert response.status_code == 400
    assert "Choose Enabled or Disabled" in response.text
    assert (_stored(license_id), _row(client, license_id)) == (before, row)
    assert outbox.kinds() == ["purchase_completed"]


# --- R-SEC-2: owners only ----------------------------------------------------------------


def _buy_through_the_pages(client: FlaskClient, plan: str) -> int:
    register_card(client)
    key = start_order(client, plan)
    card = db.session.scalar(select(PaymentMethod).where(PaymentMethod.last4 == "4242"))
    assert choose_card(client, key, card.id).status_code == 302
    assert place(client, key).status_code == 302
    subscription = db.session.scalar(select(Subscription))
    return subscription.id


def test_every_owner_manages_the_team_license_and_a_member_cannot_R_SEC_2_R_LIC_6(
    team_app: Flask, acme: Team, catalog: None, outbox: Outbox
) -> None:
    """R-SEC-2: Oscar manages the license Olivia bought for the team; the e-mail goes to both
    owners (R-NOTE-2); Mike, a member, gets 403 on the list, the page and the form."""
    olivia_client, oscar_client, mike_client = (team_app.test_client() for _ in range(3))
    sign_in(olivia_client, _member(acme, "olivia"))
    sign_in(oscar_client, _member(acme, "oscar"))
    sign_in(mike_client, _member(acme, "mike"))
    license_id = _buy_through_the_pages(olivia_client, "x_small")

    assert _row(oscar_client, license_id).plan == "X Small"
    _saved(oscar_client, license_id, "enabled", "medium")
    assert _row(olivia_client, license_id).scheduled
    assert _stored(license_id)[:4] == ("active", True, "x_small", "medium")
    [mail] = outbox.of_kind("plan_change_scheduled")
    assert sorted(mail.recipients) == ["olivia@acme.example", "oscar@acme.example"]

    before = _stored(license_id)
    assert mike_client.get(LIST).status_code == 403
    assert mike_client.get(f"{LIST}/{license_id}").status_code == 403
    step_1 = mike_client.get("/billing/checkout/small?interval=month&currency=USD")
    token = csrf_token(step_1.text)  # a valid token of his own session
    refused = mike_client.post(
        f"{LIST}/{license_id}",
        data={"csrf_token": token, "auto_renewal": "disabled", "renew_with": ""},
    )
    assert refused.status_code == 403
    assert "X Small" not in refused.text
    assert _stored(license_id) == before
    assert _row(oscar_client, license_id).status == "Enabled"
    assert outbox.kinds().count("auto_renewal_disabled") == 0


def test_another_accounts_license_is_not_found_R_SEC_2(
    client: FlaskClient, alice: User, catalog: None, outbox: Outbox
) -> None:
    """R-SEC-2: another account's license id gives 404 on the page and the form, shows none of
    its data, and changes nothing."""
    bob = new_user("bob")
    bobs = subscribe(bob, "large").id
    mine = subscribe(alice, "small").id
    sign_in(client, alice)
    assert [license_id for license_id, _ in _rows(client)] == [mine]
    before, mails = _stored(bobs), outbox.kinds()

    page = client.get(f"{LIST}/{bobs}")
    assert page.status_code == 404
    assert "Large" not in page.text
    token = csrf_token(_page(client, mine).text)
    for target in (bobs, 999_999):
        response = client.post(
            f"{LIST}/{target}",
            data={"csrf_token": token, "auto_renewal": "disabled", "renew_with": ""},
        )
        assert response.status_code == 404
        assert "Large" not in response.text
    assert client.get(f"{LIST}/999999").status_code == 404
    assert _stored(bobs) == before
    assert before[:3] == ("active", True, "large")
    assert outbox.kinds() == mails


def test_anonymous_visitor_is_sent_to_sign_in_R_SEC_2(
    client: FlaskClient, alice: User, catalog: None
) -> None:
    license_id = subscribe(alice, "small").id
    before = _stored(license_id)
    for response in (
        client.get(LIST),
        client.get(f"{LIST}/{license_id}"),
        client.post(f"{LIST}/{license_id}", data={"auto_renewal": "disabled"}),
    ):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    assert "next=%2Fbilling%2Flicenses" in client.get(LIST).headers["Location"]
    assert _stored(license_id) == before
