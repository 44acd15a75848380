"""The catalog a host declares (R-CAT-1..4), parsed and checked without any database.

A catalog is a TOML file (or the same structure built in Python)::

    annual_discount_percent = 10          # R-CAT-4: year = 12 × month, paid 90 %

    [[plans]]
    code = "small"
    name = "Small"
    features = ["reports"]
    limits = { mau = 1000 }
    addons = ["operation", "marketing"]
    change_options = ["free", "x_small", "medium", "large"]
    prices = [{ currency = "USD", month = "100.00" }]   # or add year = "1080.00", year_list = …

Amounts are written in major units as strings or integers and become integer minor units
(R-MON-1). Every error names the plan (or add-on, or coupon) and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from .money import UnknownCurrency, exponent, round_half_up, to_minor
from .terms import Interval


class CatalogError(ValueError):
    """A catalog that cannot be loaded; the message names the entry and field."""


@dataclass(frozen=True)
class PriceSpec:
    interval: Interval
    currency: str
    amount: int
    list_amount: int


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    rank: int
    description: str = ""
    is_free: bool = False
    features: tuple[str, ...] = ()
    limits: Mapping[str, int] = field(default_factory=dict)
    addons: tuple[str, ...] = ()
    change_options: tuple[str, ...] = ()
    prices: tuple[PriceSpec, ...] = ()


@dataclass(frozen=True)
class AddOnSpec:
    code: str
    name: str
    description: str = ""
    features: tuple[str, ...] = ()
    prices: tuple[PriceSpec, ...] = ()


@dataclass(frozen=True)
class CouponSpec:
    code: str
    kind: str  # percent | fixed
    value: int
    currency: str | None = None
    duration: str = "once"
    duration_terms: int | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    max_redemptions: int | None = None
    once_per_account: bool = True
    plans: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    plans: tuple[PlanSpec, ...]
    addons: tuple[AddOnSpec, ...] = ()
    coupons: tuple[CouponSpec, ...] = ()

    def plan(self, code: str) -> PlanSpec:
        for plan in self.plans:
            if plan.code == code:
                return plan
        raise KeyError(code)


def load_catalog_file(path: str | Path) -> Catalog:
    """Parse a TOML catalog file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from exc
    return parse_catalog(data)


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Check a catalog structure and turn it into frozen specs."""
    _only_keys("catalog", data, {"annual_discount_percent", "plans", "addons", "coupons"})
    discount = _int_field("catalog", data, "annual_discount_percent", 0, low=0, high=99)
    addons = tuple(
        _parse_addon(_table("addons", i, raw), discount)
        for i, raw in enumerate(data.get("addons", []))
    )
    plans = tuple(
        _parse_plan(_table("plans", i, raw), i, discount)
        for i, raw in enumerate(data.get("plans", []))
    )
    coupons = tuple(
        _parse_coupon(_table("coupons", i, raw)) for i, raw in enumerate(data.get("coupons", []))
    )
    if not plans:
        raise CatalogError("catalog: declare at least one [[plans]] entry")
    _check_unique("plan", [p.code for p in plans])
    _check_unique("add-on", [a.code for a in addons])
    _check_unique("coupon", [c.code for c in coupons])
    _check_references(plans, addons, coupons)
    return Catalog(plans=plans, addons=addons, coupons=coupons)


# --- entries -----------------------------------------------------------------------------

_PLAN_KEYS = {
    "code",
    "name",
    "description",
    "rank",
    "free",
    "features",
    "limits",
    "addons",
    "change_options",
    "prices",
}


def _parse_plan(raw: Mapping[str, Any], position: int, discount: int) -> PlanSpec:
    where = f"plan {raw.get('code', f'#{position + 1}')!r}"
    _only_keys(where, raw, _PLAN_KEYS)
    is_free = raw.get("free", False)
    if not isinstance(is_free, bool):
        raise CatalogError(f"{where}: field 'free' must be true or false")
    prices = _parse_prices(where, raw.get("prices", []), discount)
    if is_free and any(p.amount for p in prices):
        raise CatalogError(f"{where}: field 'prices' must be 0 for a free plan")
    if not is_free and not prices:
        raise CatalogError(f"{where}: field 'prices' is required for a paid plan")
    limits = raw.get("limits", {})
    if not isinstance(limits, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in limits.items()
    ):
        raise CatalogError(f"{where}: field 'limits' must map names to whole numbers ≥ 0")
    return PlanSpec(
        code=_code(where, raw),
        name=_str_field(where, raw, "name"),
        rank=_int_field(where, raw, "rank", position, low=0),
        description=_str_field(where, raw, "description", ""),
        is_free=is_free,
        features=_str_list(where, raw, "features"),
        limits=dict(limits),
        addons=_str_list(where, raw, "addons"),
        change_options=_str_list(where, raw, "change_options"),
        prices=prices,
    )


def _parse_addon(raw: Mapping[str, Any], discount: int) -> AddOnSpec:
    where = f"add-on {raw.get('code', '?')!r}"
    _only_keys(where, raw, {"code", "name", "description", "features", "prices"})
    code = _code(where, raw)
    prices = _parse_prices(where, raw.get("prices", []), discount)
    if not prices:
        raise CatalogError(f"{where}: field 'prices' is required")
    features = _str_list(where, raw, "features") or (code,)
    return AddOnSpec(
        code=code,
        name=_str_field(where, raw, "name"),
        description=_str_field(where, raw, "description", ""),
        features=features,
        prices=prices,
    )


_COUPON_KEYS = {
    "code",
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "duration_terms",
    "valid_from",
    "valid_until",
    "max_redemptions",
    "once_per_account",
    "plans",
}


def _parse_coupon(raw: Mapping[str, Any]) -> CouponSpec:
    where = f"coupon {raw.get('code', '?')!r}"
    _only_keys(where, raw, _COUPON_KEYS)
    currency = raw.get("currency")
    if ("percent_off" in raw) == ("amount_off" in raw):
        raise CatalogError(f"{where}: set exactly one of 'percent_off' or 'amount_off'")
    if "percent_off" in raw:
        kind, value = "percent", _int_field(where, raw, "percent_off", None, low=1, high=100)
        if currency is not None:
            raise CatalogError(f"{where}: field 'currency' is only for 'amount_off'")
    else:
        currency = _currency(where, currency)
        kind, value = "fixed", _amount(where, "amount_off", raw["amount_off"], currency)
        if value <= 0:
            raise CatalogError(f"{where}: field 'amount_off' must be more than 0")
    duration = raw.get("duration", "once")
    if duration not in ("once", "repeating", "forever"):
        raise CatalogError(f"{where}: field 'duration' must be 'once', 'repeating' or 'forever'")
    terms = raw.get("duration_terms")
    if (duration == "repeating") != (terms is not None):
        raise CatalogError(f"{where}: field 'duration_terms' goes with duration = 'repeating'")
    if terms is not None:
        terms = _int_field(where, raw, "duration_terms", None, low=1)
    valid_from, valid_until = raw.get("valid_from"), raw.get("valid_until")
    for name, value_ in (("valid_from", valid_from), ("valid_until", valid_until)):
        if value_ is not None and not isinstance(value_, date):
            raise CatalogError(f"{where}: field '{name}' must be a date like 2026-01-31")
    once = raw.get("once_per_account", True)
    if not isinstance(once, bool):
        raise CatalogError(f"{where}: field 'once_per_account' must be true or false")
    limit = raw.get("max_redemptions")
    return CouponSpec(
        code=_code(where, raw),
        kind=kind,
        value=value,
        currency=currency,
        duration=duration,
        duration_terms=terms,
        valid_from=valid_from,
        valid_until=valid_until,
        max_redemptions=None
        if limit is None
        else _int_field(where, raw, "max_redemptions", None, low=1),
        once_per_account=once,
        plans=_str_list(where, raw, "plans"),
    )


def _parse_prices(where: str, raw: Any, discount: int) -> tuple[PriceSpec, ...]:
    if not isinstance(raw, list):
        raise CatalogError(f"{where}: field 'prices' must be a list of tables")
    prices: list[PriceSpec] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise CatalogError(f"{where}: field 'prices' must be a list of tables")
        _only_keys(f"{where} prices", entry, {"currency", "month", "year", "year_list"})
        currency = _currency(where, entry.get("currency"))
        if "month" not in entry:
            raise CatalogError(f"{where}: price in {currency} needs field 'month'")
        month = _amount(where, "month", entry["month"], currency)
        year_list = (
            _amount(where, "year_list", entry["year_list"], currency)
            if "year_list" in entry
            else 12 * month
        )
        year = (
            _amount(where, "year", entry["year"], currency)
            if "year" in entry
            else round_half_up(Fraction(year_list * (100 - discount), 100))
        )
        if year > year_list:
            raise CatalogError(f"{where}: field 'year' in {currency} is more than its list price")
        prices.append(PriceSpec(Interval.MONTH, currency, month, month))
        prices.append(PriceSpec(Interval.YEAR, currency, year, year_list))
    currencies = [p.currency for p in prices if p.interval is Interval.MONTH]
    if len(currencies) != len(set(currencies)):
        raise CatalogError(f"{where}: field 'prices' lists a currency twice")
    return tuple(prices)


def _check_references(
    plans: tuple[PlanSpec, ...], addons: tuple[AddOnSpec, ...], coupons: tuple[CouponSpec, ...]
) -> None:
    plan_codes = {p.code for p in plans}
    addon_codes = {a.code for a in addons}
    for plan in plans:
        for code in plan.change_options:
            if code not in plan_codes or code == plan.code:
                raise CatalogError(
                    f"plan {plan.code!r}: field 'change_options' names {code!r}, "
                    "which is not another plan of the catalog"
                )
        for code in plan.addons:
            if code not in addon_codes:
                raise CatalogError(
                    f"plan {plan.code!r}: field 'addons' names unknown add-on {code!r}"
                )
    for coupon in coupons:
        for code in coupon.plans:
            if code not in plan_codes:
                raise CatalogError(
                    f"coupon {coupon.code!r}: field 'plans' names unknown plan {code!r}"
                )
    if sum(1 for p in plans if p.is_free) > 1:
        raise CatalogError("catalog: only one plan may be free")


# --- small checks ------------------------------------------------------------------------


def _check_unique(what: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise CatalogError(f"{what} {code!r}: declared twice")
        seen.add(code)


def _table(kind: str, index: int, raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{kind} #{index + 1}: must be a table")
    return raw


def _only_keys(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise CatalogError(
            f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(allowed))})"
        )


def _code(where: str, raw: Mapping[str, Any]) -> str:
    code = raw.get("code")
    if (
        not isinstance(code, str)
        or not code
        or not code.replace("_", "").replace("-", "").isalnum()
    ):
        raise CatalogError(f"{where}: field 'code' must be letters, digits, '_' or '-'")
    return code


def _str_field(where: str, raw: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise CatalogError(f"{where}: field {name!r} must be text")
    return value


def _str_list(where: str, raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"{where}: field {name!r} must be a list of names")
    return tuple(value)


def _int_field(
    where: str,
    raw: Mapping[str, Any],
    name: str,
    default: int | None,
    low: int | None = None,
    high: int | None = None,
) -> int:
    value = raw.get(name, default)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        span = (
            f" from {low} to {high}" if high is not None else f" ≥ {low}" if low is not None else ""
        )
        raise CatalogError(f"{where}: field {name!r} must be a whole number{span}")
    return value


def _currency(where: str, value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise UnknownCurrency(str(value))
        exponent(value)
    except UnknownCurrency:
        raise CatalogError(
            f"{where}: field 'currency' must be an ISO 4217 code like 'USD'"
        ) from None
    return value


def _amount(where: str, name: str, value: Any, currency: str) -> int:
    if isinstance(value, float):
        raise CatalogError(
            f'{where}: field {name!r} must be written as a string like "100.00", not a float'
        )
    try:
        if isinstance(value, str):
            value = Decimal(value)
        return to_minor(value, currency)
    except (ValueError, ArithmeticError, TypeError) as exc:
        raise CatalogError(f"{where}: field {name!r} in {currency}: {exc}") from None
