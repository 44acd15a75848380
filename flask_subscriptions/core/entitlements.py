"""Entitlements (R-USE-2, R-USE-3, R-DUN-1): which features an account may use now, and why not.

Pure: the service layer gathers the catalog and the account's standing (its live plan, the
add-ons it holds, its latest usage, its dunning dates) in one query; this module decides.

* A feature of the Free plan is a *free* feature: every account has it, always.
* Any other feature is *paid*: the account needs a plan or add-on that includes it.
* A paid feature it holds is still refused while the account is *restricted*: a renewal
  left unpaid past the grace (R-DUN-1), or usage over the limit of the plan in force
  (R-USE-2). The plan is not changed and billing continues; the restriction lifts when the
  whole unpaid amount is settled, when usage falls within the limit, or when a plan with a
  bigger limit takes over. A failed payment still in its grace restricts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Literal

from babel.dates import format_date
from babel.numbers import format_decimal

__all__ = [
    "ADD_ON",
    "SETTLE",
    "UPGRADE",
    "AddOnInfo",
    "CatalogInfo",
    "Entitlement",
    "Entitlements",
    "Fix",
    "Overage",
    "PlanInfo",
    "Standing",
    "decide",
    "metric_label",
]

#: What fixes a refusal: a bigger or richer plan, paying what is overdue, or an add-on.
Fix = Literal["upgrade", "settle", "add_on"]
UPGRADE: Fix = "upgrade"
SETTLE: Fix = "settle"
ADD_ON: Fix = "add_on"


@dataclass(frozen=True)
class PlanInfo:
    """What entitlements need to know about one plan of the catalog."""

    code: str
    name: str
    rank: int = 0
    is_free: bool = False
    features: tuple[str, ...] = ()
    limits: Mapping[str, int] = field(default_factory=dict)
    addons: tuple[str, ...] = ()  # the add-ons this plan offers
    active: bool = True


@dataclass(frozen=True)
class AddOnInfo:
    code: str
    name: str
    features: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class CatalogInfo:
    plans: tuple[PlanInfo, ...] = ()
    addons: tuple[AddOnInfo, ...] = ()

    def plan(self, code: str | None) -> PlanInfo | None:
        return next((p for p in self.plans if p.code == code), None)

    @property
    def free_plan(self) -> PlanInfo | None:
        """The plan of an account without a license (the lowest active free plan)."""
        free = sorted((p for p in self.plans if p.is_free and p.active), key=lambda p: p.rank)
        return free[0] if free else None


@dataclass(frozen=True)
class Standing:
    """An account's side of the decision. ``plan_code`` is the plan of its *active*
    subscription; None means no license, i.e. the Free plan."""

    plan_code: str | None = None
    addon_codes: tuple[str, ...] = ()
    usage: Mapping[str, int] = field(default_factory=dict)
    payment_failed_on: date | None = None
    grace_ends_on: date | None = None
    restricted_on: date | None = None


class Reason(str):
    """A reason as English words (what ``str`` shows, as before) that also carries its code
    and values (R-I18N-2), so a page can say it in the person's language."""

    code: str
    values: Mapping[str, object]

    def __new__(cls, text: str, code: str, **values: object) -> Reason:
        made = super().__new__(cls, text)
        made.code = code
        made.values = MappingProxyType(dict(values))
        return made


@dataclass(frozen=True)
class Overage:
    """One metric whose latest usage is over the limit of the plan in force."""

    metric: str
    usage: int
    limit: int
    reason: str = ""  # "MAU 1,240 is over the Small plan's limit of 1,000."


@dataclass(frozen=True)
class Entitlement:
    """One feature: allowed, or refused with the reason to show and what fixes it."""

    feature: str
    allowed: bool
    reason: str | None = None
    fix: Fix | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Entitlements:
    """Everything one account may use right now.

    ``restricted`` means paid features are refused whatever the plan includes; ``reasons``
    says why (overdue payment first, then each metric over its limit) and ``fix`` what lifts
    it. ``notice`` is a failed payment still in its grace: worth telling, nothing refused.
    """

    plan_code: str | None
    plan_name: str
    licensed: bool  # holds an active paid license
    features: Mapping[str, Entitlement]
    restricted: bool = False
    reasons: tuple[str, ...] = ()
    fix: Fix | None = None
    overages: tuple[Overage, ...] = ()
    notice: str | None = None

    def get(self, feature: str) -> Entitlement:
        """The feature's entitlement; a feature no plan or add-on includes is refused."""
        found = self.features.get(feature)
        if found is not None:
            return found
        return Entitlement(feature, False, _no_plan(feature), None)

    def allows(self, feature: str) -> bool:
        return self.get(feature).allowed

    @property
    def over_limit(self) -> bool:
        return bool(self.overages)

    @property
    def allowed_features(self) -> frozenset[str]:
        return frozenset(name for name, e in self.features.items() if e.allowed)


def metric_label(metric: str) -> str:
    """How a metric is named to people: short names are acronyms (``mau`` → MAU)."""
    if len(metric) <= 3 and metric.isalpha():
        return metric.upper()
    return metric.replace("_", " ").capitalize()


def decide(catalog: CatalogInfo, standing: Standing, *, locale: str = "en_US") -> Entitlements:
    """The entitlement of every feature the catalog (or the account's holding) names."""
    free = catalog.free_plan
    held = catalog.plan(standing.plan_code) if standing.plan_code is not None else None
    if standing.plan_code is not None and held is None:  # a plan the catalog lost: no features
        held = PlanInfo(standing.plan_code, standing.plan_code)
    in_force = held or free
    free_features = set(free.features) if free else set()
    held_addons = [a for a in catalog.addons if a.code in standing.addon_codes]
    granted = set(in_force.features if in_force else ()) | {
        f for a in held_addons for f in a.features
    }
    overages = _overages(in_force, standing.usage, locale)
    reasons, fix = _restriction(standing, overages, locale)
    universe = _features(catalog, free_features | granted)
    features: dict[str, Entitlement] = {}
    for name in sorted(universe):
        if name in free_features:
            features[name] = Entitlement(name, True)
        elif name not in granted:
            features[name] = _missing(name, catalog, in_force)
        elif reasons:
            features[name] = Entitlement(name, False, reasons[0], fix)
        else:
            features[name] = Entitlement(name, True)
    return Entitlements(
        plan_code=in_force.code if in_force else None,
        plan_name=in_force.name if in_force else "Free",
        licensed=held is not None and not held.is_free,
        features=MappingProxyType(features),
        restricted=bool(reasons),
        reasons=reasons,
        fix=fix,
        overages=overages,
        notice=_grace_notice(standing, locale),
    )


def _features(catalog: CatalogInfo, extra: Iterable[str]) -> set[str]:
    names = set(extra)
    for plan in catalog.plans:
        if plan.active:
            names.update(plan.features)
    for addon in catalog.addons:
        if addon.active:
            names.update(addon.features)
    return names


def _overages(plan: PlanInfo | None, usage: Mapping[str, int], locale: str) -> tuple[Overage, ...]:
    """Each metric whose latest usage *exceeds* its limit (at the limit is within it)."""
    if plan is None:
        return ()
    return tuple(
        Overage(
            metric,
            usage[metric],
            limit,
            Reason(
                f"{metric_label(metric)} {_number(usage[metric], locale)} is over the "
                f"{plan.name} plan's limit of {_number(limit, locale)}.",
                "over_limit",
                metric=metric_label(metric),
                usage=usage[metric],
                plan=plan.name,
                limit=limit,
            ),
        )
        for metric, limit in sorted(plan.limits.items())
        if usage.get(metric, 0) > limit
    )


def _restriction(
    standing: Standing, overages: tuple[Overage, ...], locale: str
) -> tuple[tuple[str, ...], Fix | None]:
    """Why paid features are restricted (most urgent first), and what lifts it."""
    reasons: list[str] = []
    fix: Fix | None = None
    if standing.restricted_on is not None:
        since = standing.payment_failed_on or standing.restricted_on
        reasons.append(
            Reason(f"Payment overdue since {_day(since, locale)}.", "payment_overdue", since=since)
        )
        fix = SETTLE
    for over in overages:
        reasons.append(over.reason)
        fix = fix or UPGRADE
    return tuple(reasons), fix


def _missing(feature: str, catalog: CatalogInfo, plan: PlanInfo | None) -> Entitlement:
    """A paid feature the account does not hold: say what would give it."""
    offered = set(plan.addons) if plan else set()
    addons = [a for a in catalog.addons if a.active and feature in a.features]
    for addon in addons:
        if addon.code in offered:
            text = f"Needs the {addon.name} add-on."
            return Entitlement(
                feature, False, Reason(text, "needs_addon", addon=addon.name), ADD_ON
            )
    ranked = sorted((p for p in catalog.plans if p.active), key=lambda p: p.rank)
    with_feature = [p for p in ranked if feature in p.features]
    if with_feature:
        name = with_feature[0].name
        return Entitlement(
            feature, False, Reason(f"Needs the {name} plan.", "needs_plan", plan=name), UPGRADE
        )
    for addon in addons:
        carrier = next((p for p in ranked if addon.code in p.addons), None)
        if carrier is not None:
            return Entitlement(
                feature,
                False,
                Reason(
                    f"Needs the {addon.name} add-on, which comes with the {carrier.name} plan.",
                    "needs_addon_with_plan",
                    addon=addon.name,
                    plan=carrier.name,
                ),
                UPGRADE,
            )
    return Entitlement(feature, False, _no_plan(feature), None)


def _no_plan(feature: str) -> Reason:
    return Reason(
        f"No plan includes the feature “{feature}”.", "no_plan_has_feature", feature=feature
    )


def _grace_notice(standing: Standing, locale: str) -> str | None:
    """A failed renewal still in its grace: features keep working (R-DUN-1)."""
    if standing.payment_failed_on is None or standing.restricted_on is not None:
        return None
    failed = standing.payment_failed_on
    notice = f"The payment for your license failed on {_day(failed, locale)}."
    if standing.grace_ends_on is None:
        return Reason(notice, "payment_failed_grace", failed=failed)
    pay_by = standing.grace_ends_on
    notice += f" Pay by {_day(pay_by, locale)} to keep your paid features."
    return Reason(notice, "payment_failed_pay_by", failed=failed, pay_by=pay_by)


def _number(value: int, locale: str) -> str:
    return str(format_decimal(value, locale=locale))


def _day(day: date, locale: str) -> str:
    return str(format_date(day, format="long", locale=locale))
