"""The entitlement decision (R-USE-2, R-USE-3, R-DUN-1), without an app or a database."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_subscriptions.core.entitlements import (
    AddOnInfo,
    CatalogInfo,
    Entitlement,
    PlanInfo,
    Standing,
    decide,
    metric_label,
)

ADDONS = ("operation", "marketing")
CATALOG = CatalogInfo(
    plans=(
        PlanInfo("free", "Free", 0, True, ("help_center",), {"mau": 100}),
        PlanInfo("x_small", "X Small", 1, False, ("reports",), {"mau": 500}, ADDONS),
        PlanInfo("small", "Small", 2, False, ("reports",), {"mau": 1000}, ADDONS),
        PlanInfo("medium", "Medium", 3, False, ("reports", "api"), {"mau": 3000}, ADDONS),
        PlanInfo("large", "Large", 4, False, ("reports", "api", "sso"), {"mau": 10000}, ADDONS),
        PlanInfo("legacy", "Legacy", 9, False, ("reports", "fax"), {}, (), active=False),
    ),
    addons=(
        AddOnInfo("operation", "Operation", ("operation",)),
        AddOnInfo("marketing", "Marketing", ("marketing", "campaigns")),
        AddOnInfo("beta", "Beta", ("beta",)),  # no plan offers it
    ),
)
PAID = {"reports", "api", "sso", "operation", "marketing", "campaigns", "beta"}


def _small(**kw: object) -> Standing:
    base: dict[str, object] = {"plan_code": "small", "addon_codes": ("operation",)}
    return Standing(**{**base, **kw})  # type: ignore[arg-type]


# --- golden cases: the reasons people read ------------------------------------------------


def test_within_the_limit_everything_held_is_allowed_R_USE_3() -> None:
    result = decide(CATALOG, _small(usage={"mau": 1000}))  # at the limit is within it
    assert (result.plan_code, result.plan_name, result.licensed) == ("small", "Small", True)
    assert not result.restricted and result.reasons == () and result.fix is None
    assert result.allowed_features == {"help_center", "reports", "operation"}
    assert result.get("reports") == Entitlement("reports", True)


def test_over_the_limit_restricts_paid_features_at_once_R_USE_2() -> None:
    result = decide(CATALOG, _small(usage={"mau": 1240}))
    reason = "MAU 1,240 is over the Small plan's limit of 1,000."
    assert result.restricted and result.reasons == (reason,) and result.fix == "upgrade"
    assert result.plan_code == "small"  # the plan is not changed
    assert result.get("reports") == Entitlement("reports", False, reason, "upgrade")
    assert result.get("operation") == Entitlement("operation", False, reason, "upgrade")
    assert result.allows("help_center")  # a free feature is never restricted
    assert [(o.metric, o.usage, o.limit) for o in result.overages] == [("mau", 1240, 1000)]


def test_a_bigger_plan_lifts_the_restriction_R_USE_2() -> None:
    result = decide(CATALOG, _small(plan_code="medium", usage={"mau": 1240}))
    assert not result.restricted and result.allows("reports") and result.allows("operation")


def test_missing_add_on_names_it_R_USE_3() -> None:
    result = decide(CATALOG, _small())
    assert result.get("marketing") == Entitlement(
        "marketing", False, "Needs the Marketing add-on.", "add_on"
    )
    assert result.get("campaigns").reason == "Needs the Marketing add-on."


def test_a_feature_of_a_higher_plan_names_the_first_plan_with_it() -> None:
    result = decide(CATALOG, _small())
    assert result.get("api") == Entitlement("api", False, "Needs the Medium plan.", "upgrade")
    assert result.get("sso").reason == "Needs the Large plan."


def test_free_plan_has_only_free_features() -> None:
    result = decide(CATALOG, Standing(usage={"mau": 5}))
    assert (result.plan_code, result.licensed, result.restricted) == ("free", False, False)
    assert result.allowed_features == {"help_center"}
    assert result.get("reports") == Entitlement(
        "reports", False, "Needs the X Small plan.", "upgrade"
    )
    assert result.get("operation") == Entitlement(
        "operation",
        False,
        "Needs the Operation add-on, which comes with the X Small plan.",
        "upgrade",
    )


def test_free_plan_over_its_limit_keeps_free_features() -> None:
    result = decide(CATALOG, Standing(usage={"mau": 150}))
    assert result.restricted
    assert result.reasons == ("MAU 150 is over the Free plan's limit of 100.",)
    assert result.allowed_features == {"help_center"}


def test_unpaid_past_the_grace_restricts_with_the_overdue_date_R_DUN_1() -> None:
    standing = _small(
        payment_failed_on=date(2026, 3, 3),
        grace_ends_on=date(2026, 3, 10),
        restricted_on=date(2026, 3, 10),
    )
    result = decide(CATALOG, standing)
    assert result.reasons == ("Payment overdue since March 3, 2026.",)
    assert result.fix == "settle" and result.notice is None
    assert result.get("operation") == Entitlement(
        "operation", False, "Payment overdue since March 3, 2026.", "settle"
    )
    assert result.allows("help_center")


def test_payment_failed_in_the_grace_restricts_nothing_R_DUN_1() -> None:
    standing = _small(payment_failed_on=date(2026, 4, 17), grace_ends_on=date(2026, 4, 24))
    result = decide(CATALOG, standing)
    assert not result.restricted and result.allows("operation") and result.allows("reports")
    assert result.notice == (
        "The payment for your license failed on April 17, 2026. "
        "Pay by April 24, 2026 to keep your paid features."
    )


def test_overdue_and_over_the_limit_list_both_settle_first() -> None:
    standing = _small(
        usage={"mau": 2000}, payment_failed_on=date(2026, 3, 3), restricted_on=date(2026, 3, 10)
    )
    result = decide(CATALOG, standing)
    assert result.fix == "settle"
    assert result.reasons == (
        "Payment overdue since March 3, 2026.",
        "MAU 2,000 is over the Small plan's limit of 1,000.",
    )


def test_unknown_and_unoffered_features() -> None:
    result = decide(CATALOG, _small())
    assert result.get("teleport") == Entitlement(
        "teleport", False, "No plan includes the feature “teleport”.", None
    )
    assert result.get("beta").reason == "No plan includes the feature “beta”."
    assert "fax" not in result.features  # an inactive plan's feature is not on offer


def test_an_inactive_plan_still_held_keeps_its_features() -> None:
    result = decide(CATALOG, Standing(plan_code="legacy", usage={"mau": 10**9}))
    assert result.allows("fax") and result.allows("reports") and not result.restricted


def test_a_catalog_without_a_free_plan() -> None:
    catalog = CatalogInfo(plans=(PlanInfo("pro", "Pro", 1, False, ("reports",)),))
    result = decide(catalog, Standing())
    assert (result.plan_code, result.plan_name, result.features["reports"].allowed) == (
        None,
        "Free",
        False,
    )


def test_numbers_and_dates_follow_the_locale() -> None:
    result = decide(CATALOG, _small(usage={"mau": 1240}), locale="de_DE")
    assert result.reasons == ("MAU 1.240 is over the Small plan's limit of 1.000.",)


@pytest.mark.parametrize(
    ("metric", "label"), [("mau", "MAU"), ("seats", "Seats"), ("api_calls", "Api calls")]
)
def test_metric_labels(metric: str, label: str) -> None:
    assert metric_label(metric) == label


# --- properties ----------------------------------------------------------------------------

plans = st.sampled_from([None, "free", "x_small", "small", "medium", "large", "legacy"])
addons = st.lists(st.sampled_from(["operation", "marketing", "beta"]), unique=True).map(tuple)
usages = st.dictionaries(st.sampled_from(["mau", "seats"]), st.integers(0, 20_000), max_size=2)
days = st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31))
standings = st.builds(
    Standing,
    plan_code=plans,
    addon_codes=addons,
    usage=usages,
    payment_failed_on=days,
    grace_ends_on=days,
    restricted_on=days,
)


@settings(max_examples=300, deadline=None)
@given(standings)
def test_free_features_always_allowed_and_nothing_beyond_the_holding(standing: Standing) -> None:
    result = decide(CATALOG, standing)
    assert result.allows("help_center")
    plan = CATALOG.plan(standing.plan_code) or CATALOG.free_plan
    assert plan is not None
    held = set(plan.features) | {
        f for a in CATALOG.addons if a.code in standing.addon_codes for f in a.features
    }
    assert result.allowed_features <= held | {"help_center"}
    for name, entitlement in result.features.items():
        assert entitlement.allowed == (entitlement.reason is None)
        assert entitlement.feature == name


@settings(max_examples=300, deadline=None)
@given(standings)
def test_restricted_means_only_free_features_R_USE_2_R_DUN_1(standing: Standing) -> None:
    result = decide(CATALOG, standing)
    assert result.restricted == (standing.restricted_on is not None or bool(result.overages))
    assert result.restricted == bool(result.reasons) == (result.fix is not None)
    if result.restricted:
        assert result.allowed_features == {"help_center"}


@settings(max_examples=300, deadline=None)
@given(standings)
def test_a_failed_payment_in_the_grace_changes_no_check_R_DUN_1(standing: Standing) -> None:
    """Without a restriction date, the failed-payment dates never refuse anything."""
    quiet = Standing(standing.plan_code, standing.addon_codes, standing.usage)
    in_grace = Standing(
        standing.plan_code,
        standing.addon_codes,
        standing.usage,
        payment_failed_on=standing.payment_failed_on,
        grace_ends_on=standing.grace_ends_on,
    )
    assert decide(CATALOG, in_grace).features == decide(CATALOG, quiet).features


@settings(max_examples=300, deadline=None)
@given(standings, st.integers(0, 20_000))
def test_less_usage_never_takes_a_feature_away_R_USE_2(standing: Standing, less: int) -> None:
    lower = {metric: min(value, less) for metric, value in standing.usage.items()}
    before = decide(CATALOG, standing).allowed_features
    after = decide(CATALOG, Standing(**{**standing.__dict__, "usage": lower})).allowed_features
    assert before <= after


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 20_000))
def test_within_every_limit_a_paid_plan_is_never_restricted_R_USE_2(mau: int) -> None:
    for plan in CATALOG.plans:
        if plan.is_free or not plan.active:
            continue
        result = decide(CATALOG, Standing(plan_code=plan.code, usage={"mau": mau}))
        assert result.restricted == (mau > plan.limits["mau"])
        assert result.allows("reports") == (mau <= plan.limits["mau"])
