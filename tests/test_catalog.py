"""The catalog: a TOML file loaded by the CLI, idempotently (R-CAT-1..4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from flask_subscriptions.core.catalog import CatalogError, load_catalog_file, parse_catalog
from flask_subscriptions.models import CatalogVersion, Coupon, Plan, PlanChangeOption, Price
from flask_subscriptions.services.plans import change_options

from .conftest import SAMPLE_CATALOG, signed_in
from .factories import subscribe
from .hosts import User, db


def _load(app: Flask, path: Path) -> str:
    result = app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def _snapshot() -> list[tuple]:
    rows = db.session.execute(
        select(
            Price.id,
            Price.plan_id,
            Price.addon_id,
            Price.interval,
            Price.amount,
            Price.list_amount,
            Price.active,
        )
    ).all()
    plans = db.session.execute(select(Plan.id, Plan.code, Plan.rank, Plan.limits)).all()
    return sorted(map(tuple, rows)) + sorted(map(tuple, plans))


def test_sample_catalog_loads_with_annual_discount_R_CAT_1_R_CAT_4(app: Flask) -> None:
    """R-CAT-1: the CLI loads the file; R-CAT-4: annual = 12 × monthly, paid 90 %."""
    output = _load(app, SAMPLE_CATALOG)
    assert "5 plans created" in output and "2 add-ons created" in output
    small = db.session.scalar(select(Plan).where(Plan.code == "small"))
    prices = {
        (p.currency, p.interval): p
        for p in db.session.scalars(select(Price).where(Price.plan_id == small.id))
    }
    assert (prices["USD", "month"].amount, prices["USD", "month"].list_amount) == (10000, 10000)
    assert (prices["USD", "year"].amount, prices["USD", "year"].list_amount) == (108000, 120000)
    # the same catalog in yen and won: whole amounts, the same 10% annual discount
    assert (prices["JPY", "month"].amount, prices["JPY", "year"].amount) == (11000, 118800)
    assert (prices["KRW", "month"].amount, prices["KRW", "year"].amount) == (110000, 1188000)
    assert small.limits == {"mau": 1000}
    free = db.session.scalar(select(Plan).where(Plan.code == "free"))
    assert free.is_free  # R-CAT-3: no price, no card
    assert db.session.scalar(select(Coupon.kind).where(Coupon.code == "WELCOME10")) == "percent"


def test_loading_twice_changes_nothing_R_CAT_1(app: Flask) -> None:
    """R-CAT-1: loading is idempotent."""
    _load(app, SAMPLE_CATALOG)
    before = _snapshot()
    assert "Catalog unchanged." in _load(app, SAMPLE_CATALOG)
    assert _snapshot() == before


def test_changed_price_is_a_new_price_and_the_old_one_is_kept_R_CAT_1(
    app: Flask, tmp_path: Path
) -> None:
    """R-CAT-1: existing subscriptions keep their price row."""
    _load(app, SAMPLE_CATALOG)
    old = db.session.scalar(
        select(Price)
        .join(Plan)
        .where(Plan.code == "small", Price.interval == "month", Price.currency == "USD")
    )
    changed = tmp_path / "catalog.toml"
    changed.write_text(SAMPLE_CATALOG.read_text().replace('month = "100.00"', 'month = "120.00"'))
    _load(app, changed)
    db.session.expire_all()
    assert db.session.get(Price, old.id).active is False
    assert db.session.get(Price, old.id).amount == 10000
    current = db.session.scalar(
        select(Price)
        .join(Plan)
        .where(
            Plan.code == "small", Price.interval == "month", Price.currency == "USD", Price.active
        )
    )
    assert current.amount == 12000 and current.id != old.id


def test_change_options_follow_the_file_R_CAT_2(app: Flask) -> None:
    """R-CAT-2: a plan lists the plans it may change to; X Small may not go to Large."""
    _load(app, SAMPLE_CATALOG)
    x_small = db.session.scalar(select(Plan).where(Plan.code == "x_small"))
    assert [p.code for p in change_options(x_small.id)] == ["free", "small", "medium"]
    assert db.session.scalar(select(func.count()).select_from(PlanChangeOption)) == 15


HEAD = '[[plans]]\ncode = "pro"\nname = "Pro"\n'
USD_10 = 'prices = [{ currency = "USD", month = "10" }]'


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        (
            HEAD + 'prices = [{ currency = "USD", month = "1.005" }]',
            "plan 'pro': field 'month' in USD",
        ),
        (HEAD + 'prices = [{ currency = "usd", month = "10" }]', "plan 'pro': field 'currency'"),
        (
            HEAD + 'prices = [{ currency = "USD", month = 9.99 }]',
            "plan 'pro': field 'month' must be written as a string",
        ),
        (
            HEAD + 'change_options = ["gold"]\n' + USD_10,
            "plan 'pro': field 'change_options' names 'gold'",
        ),
        (HEAD + "limits = { mau = -1 }\n" + USD_10, "plan 'pro': field 'limits'"),
        (HEAD + 'colour = "red"\n' + USD_10, "plan 'pro': unknown field 'colour'"),
        (HEAD, "plan 'pro': field 'prices' is required"),
    ],
)
def test_bad_catalog_names_the_plan_and_field_R_CAT_1(
    tmp_path: Path, fragment: str, message: str
) -> None:
    """R-CAT-1: a bad file gets an error that names the plan and field."""
    path = tmp_path / "bad.toml"
    path.write_text(fragment)
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_catalog_file(path)


def test_bad_catalog_through_the_cli_changes_nothing(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[plans]]\ncode = "pro"\nname = "Pro"\nprices = [{ currency = "USD", month = "-5" }]'
    )
    result = app.test_cli_runner().invoke(args=["subscriptions", "catalog", "load", str(path)])
    assert result.exit_code != 0
    assert "plan 'pro'" in result.output
    assert db.session.scalar(select(func.count()).select_from(Plan)) == 0


def test_multi_currency_prices_in_minor_units_R_MON_1() -> None:
    """R-MON-1: JPY has no minor unit, KWD three decimals."""
    catalog = parse_catalog(
        {
            "plans": [
                {
                    "code": "pro",
                    "name": "Pro",
                    "prices": [
                        {"currency": "JPY", "month": "1100"},
                        {"currency": "KWD", "month": "3.250"},
                    ],
                }
            ]
        }
    )
    amounts = {(p.currency, p.interval.value): p.amount for p in catalog.plans[0].prices}
    assert amounts[("JPY", "month")] == 1100
    assert amounts[("KWD", "month")] == 3250
    assert amounts[("JPY", "year")] == 13200  # no annual discount declared


def test_the_plans_page_shows_a_changed_catalog_at_once_R_CAT_1_R_BUY_1(
    app: Flask, tmp_path: Path
) -> None:
    """Each process keeps a copy of the catalog for the plans page; a load that changes the
    catalog is seen by the next view, never the copy from before."""
    _load(app, SAMPLE_CATALOG)
    client = app.test_client()
    assert "$100.00" in client.get("/billing/plans").text  # the copy is made here
    changed = tmp_path / "catalog.toml"
    changed.write_text(SAMPLE_CATALOG.read_text().replace('month = "100.00"', 'month = "120.00"'))
    _load(app, changed)
    page = client.get("/billing/plans").text
    assert "$120.00" in page and "$100.00" not in page


def test_the_plans_page_sees_another_processs_catalog_change_R_CAT_1(app: Flask) -> None:
    """Another process's load commits the rows and the bumped version together: this
    process's copy, made before, is not shown after that commit."""
    _load(app, SAMPLE_CATALOG)
    client = app.test_client()
    assert "Small" in client.get("/billing/plans").text
    with db.engine.begin() as other:  # what another process's load commits
        other.execute(update(Plan).where(Plan.code == "small").values(name="Compact"))
        other.execute(update(CatalogVersion).values(version=CatalogVersion.version + 1))
    page = client.get("/billing/plans").text
    assert "Compact" in page and ">Small<" not in page


def test_the_remembered_plan_cards_are_each_viewers_own_R_BUY_1_R_BUY_8_R_I18N_1(
    app: Flask, alice: User, catalog: None
) -> None:
    """The plans page's cards are rendered once per catalog version, currency, language
    and license held, then remembered: an owner's Change plan never reaches a person who
    holds no license or a visitor, and one language's cards never another's, in one app."""
    subscribe(alice)
    bob = User(name="bob", email="bob@example.com")
    db.session.add(bob)
    db.session.commit()
    holder, buyer, visitor = signed_in(app, alice), signed_in(app, bob), app.test_client()
    for _ in range(2):  # rendered, then remembered
        held = holder.get("/billing/plans").text
        assert "Your plan" in held and "Change plan" in held and "Buy now" not in held
        for page in (buyer.get("/billing/plans").text, visitor.get("/billing/plans").text):
            assert "Buy now" in page and "Your plan" not in page and "Change plan" not in page
        japanese = visitor.get("/billing/plans", headers={"Accept-Language": "ja"}).text
        assert "今すぐ購入" in japanese and "Buy now" not in japanese
        assert "Buy now" in visitor.get("/billing/plans").text
