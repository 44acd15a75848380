"""Reading the catalog for people: which plans are on offer, at what price."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select

from ..models import AddOn, Plan, PlanChangeOption, Price
from ..state import get_state
from .profiles import profile_currency


@dataclass(frozen=True)
class Offer:
    """A plan as the plans page shows it, in one currency."""

    plan: Plan
    prices: dict[str, Price] = field(default_factory=dict)  # interval → price
    addons: tuple[tuple[AddOn, dict[str, Price]], ...] = ()

    @property
    def purchasable(self) -> bool:
        return not self.plan.is_free and bool(self.prices)


#: The pages' statements, built once: building one costs about as much as running it.
_CURRENCIES = select(Price.currency).where(Price.active).distinct()
_PLANS = select(Plan).where(Plan.active).order_by(Plan.position)
_ADDONS = select(AddOn).where(AddOn.active)
_PRICES = select(Price).where(Price.active, Price.currency == bindparam("currency"))
_OPTIONS = (
    select(Plan)
    .join(PlanChangeOption, PlanChangeOption.to_plan_id == Plan.id)
    .where(PlanChangeOption.from_plan_id == bindparam("plan_id"), Plan.active)
    .order_by(Plan.position)
)


def available_currencies() -> list[str]:
    session = get_state().session
    return sorted(set(session.scalars(_CURRENCIES)))


@dataclass(frozen=True)
class CurrencyChoice:
    """The currency a page prices in, and the others it may offer to switch to."""

    currency: str
    #: Empty once the account's currency is fixed by its first purchase (R-MON-3).
    switchable: tuple[str, ...]


def choose_currency(account_id: str | None, requested: str | None) -> CurrencyChoice:
    """One rule for every page that shows a price: the account's own currency once it has
    bought (R-MON-3); else the one asked for, if the catalog sells in it; else
    ``SUBSCRIPTIONS_DEFAULT_CURRENCY`` if sold; else the catalog's first currency."""
    fixed = profile_currency(account_id) if account_id is not None else None
    if fixed is not None:
        return CurrencyChoice(fixed, ())
    sold = available_currencies()
    default = get_state().settings.default_currency
    for wanted in (requested, default):
        if wanted and wanted in sold:
            return CurrencyChoice(wanted, tuple(sold))
    return CurrencyChoice(sold[0] if sold else default, tuple(sold))


def list_offers(currency: str) -> list[Offer]:
    """Every active plan with its active prices in ``currency`` (three queries in all)."""
    session = get_state().session
    plans = session.scalars(_PLANS).all()
    addons = {a.code: a for a in session.scalars(_ADDONS)}
    prices = session.scalars(_PRICES, {"currency": currency}).all()
    by_plan: dict[int, dict[str, Price]] = {}
    by_addon: dict[int, dict[str, Price]] = {}
    for price in prices:
        if price.plan_id is not None:
            by_plan.setdefault(price.plan_id, {})[price.interval] = price
        elif price.addon_id is not None:
            by_addon.setdefault(price.addon_id, {})[price.interval] = price
    return [
        Offer(
            plan=plan,
            prices=by_plan.get(plan.id, {}),
            addons=tuple(
                (addons[code], by_addon.get(addons[code].id, {}))
                for code in plan.addon_codes
                if code in addons
            ),
        )
        for plan in plans
        if plan.is_free or plan.id in by_plan
    ]


def change_options(plan_id: int) -> list[Plan]:
    """The plans ``plan_id`` may change to (R-CAT-2), in catalog order."""
    return list(get_state().session.scalars(_OPTIONS, {"plan_id": plan_id}))
