"""Reading the catalog for people: which plans are on offer, at what price.

The plans page reads the whole active catalog on every view, and it changes only when a
catalog load changes it, which bumps ``subs_catalog_version`` in the same transaction
(``entitlement_cache.touch_catalog``). So each process keeps a copy of it
(:func:`current_catalog`), and each use reads the version (one statement) instead of the
catalog (four): a change committed by any process is seen by the next page that starts
after the commit, as if read afresh. The copy's rows are loaded in a session of their own,
so no request's session ever holds them (a commit there cannot expire them). A database
restored or recreated under a running process starts its version again: restart the
processes (as after any restore), or their copies may match an old version's number.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import AddOn, CatalogVersion, Plan, PlanChangeOption, Price
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


@dataclass(frozen=True)
class CatalogCopy:
    """The active catalog at one version, as this process keeps it (read-only)."""

    version: int | None
    plans: tuple[Plan, ...]  # active, in catalog order
    addons: dict[str, AddOn]  # active, by code
    prices: tuple[Price, ...]  # active
    #: plan id → the active plans it may change to (R-CAT-2), in catalog order
    options: dict[int, tuple[Plan, ...]]

    def currencies(self) -> list[str]:
        return sorted({price.currency for price in self.prices})


_COPY = "subs_catalog_copy"  # State.extras: this app's copy in this process
_LOCK = threading.Lock()
_VERSION = select(CatalogVersion.version).where(CatalogVersion.id == 1)
#: SQL: the catalog's version, for a statement that reads it with other things.
VERSION = _VERSION.scalar_subquery()


def current_catalog() -> CatalogCopy:
    """The active catalog as the database has it now: this process's copy when its version
    is still the database's (one statement), else read again and kept (five)."""
    return catalog_at(get_state().session.scalar(_VERSION))


def catalog_at(version: int | None) -> CatalogCopy:
    """The catalog at ``version``, which the caller read now (:data:`VERSION`, perhaps in a
    statement of its own): this process's copy when it is at that version, else read
    again and kept."""
    state = get_state()
    kept: CatalogCopy | None = state.extras.get(_COPY)
    if kept is not None and kept.version == version and version is not None:
        return kept
    fresh = _read_catalog(version)
    with _LOCK:
        state.extras[_COPY] = fresh
    return fresh


def _read_catalog(version: int | None) -> CatalogCopy:
    with Session(bind=get_state().session.connection()) as reader:
        plans = tuple(reader.scalars(_PLANS))
        addons = {a.code: a for a in reader.scalars(_ADDONS)}
        prices = tuple(reader.scalars(_ALL_PRICES))
        by_id = {plan.id: plan for plan in plans}
        options: dict[int, list[Plan]] = {}
        for from_id, to_id in reader.execute(_ALL_OPTIONS):
            if to_id in by_id:
                options.setdefault(from_id, []).append(by_id[to_id])
    return CatalogCopy(
        version=version,
        plans=plans,
        addons=addons,
        prices=prices,
        options={k: tuple(sorted(v, key=lambda p: p.position)) for k, v in options.items()},
    )


#: The pages' statements, built once: building one costs about as much as running it.
_CURRENCIES = select(Price.currency).where(Price.active).distinct()
_PLANS = select(Plan).where(Plan.active).order_by(Plan.position)
_ADDONS = select(AddOn).where(AddOn.active)
_ALL_PRICES = select(Price).where(Price.active).order_by(Price.id)
_ALL_OPTIONS = select(PlanChangeOption.from_plan_id, PlanChangeOption.to_plan_id)
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


def choose_currency(
    account_id: str | None, requested: str | None, catalog: CatalogCopy | None = None
) -> CurrencyChoice:
    """One rule for every page that shows a price: the account's own currency once it has
    bought (R-MON-3); else the one asked for, if the catalog sells in it; else
    ``SUBSCRIPTIONS_DEFAULT_CURRENCY`` if sold; else the catalog's first currency."""
    fixed = profile_currency(account_id) if account_id is not None else None
    if fixed is not None:  # what is sold need not be read
        return currency_choice(fixed, requested, [])
    sold = catalog.currencies() if catalog is not None else available_currencies()
    return currency_choice(None, requested, sold)


def currency_choice(fixed: str | None, requested: str | None, sold: list[str]) -> CurrencyChoice:
    """:func:`choose_currency`'s rule, given the account's fixed currency and what is sold."""
    if fixed is not None:
        return CurrencyChoice(fixed, ())
    default = get_state().settings.default_currency
    for wanted in (requested, default):
        if wanted and wanted in sold:
            return CurrencyChoice(wanted, tuple(sold))
    return CurrencyChoice(sold[0] if sold else default, tuple(sold))


def list_offers(currency: str, catalog: CatalogCopy | None = None) -> list[Offer]:
    """Every active plan with its active prices in ``currency``, from ``catalog`` (default:
    :func:`current_catalog`)."""
    catalog = catalog or current_catalog()
    plans = catalog.plans
    addons = catalog.addons
    prices = [price for price in catalog.prices if price.currency == currency]
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


def change_options(plan_id: int, catalog: CatalogCopy | None = None) -> list[Plan]:
    """The plans ``plan_id`` may change to (R-CAT-2), in catalog order: from ``catalog``
    when given, else read (the plans a write path then uses are the session's own)."""
    if catalog is not None:
        return list(catalog.options.get(plan_id, ()))
    return list(get_state().session.scalars(_OPTIONS, {"plan_id": plan_id}))
