"""Money as integers in a currency's minor unit (R-MON-1), rounded once (R-MON-2).

Every amount the product stores, compares or adds is an ``int`` count of the currency's
minor unit (cents, yen, won, fils). Floats never appear: ``0.1 + 0.2`` is not ``0.3``, and
a billing product that is off by a cent is wrong. Fractions of a minor unit only exist
inside a proration, as an exact ``Fraction``, and become an ``int`` through
:func:`round_half_up` exactly once per line.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, list_currencies

__all__ = [
    "CurrencyMismatch",
    "Money",
    "UnknownCurrency",
    "allocate",
    "exponent",
    "format_money",
    "round_half_up",
    "to_minor",
]

# ISO 4217 list one, where the exponent is not 2. Babel's own "currency digits" come from
# CLDR and describe how cash is usually *shown* (IQD as 0 digits, for example), not the
# minor unit a payment service counts in, so the ISO exponent is kept here.
_ZERO = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI")
_ISO_EXPONENTS: dict[str, int] = {
    **dict.fromkeys((*_ZERO, "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}

# ISO 4217 codes whose minor unit is "N.A.": metals, funds and test codes. Nobody is billed
# in ounces of gold, so they are refused rather than given a made-up exponent.
_NO_MINOR_UNIT = frozenset(
    ("XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX")
)

_CODE = re.compile(r"[A-Z]{3}")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class UnknownCurrency(ValueError):
    """A currency code that is not an ISO 4217 code known to Babel."""


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined (R-MON-3: one currency per account)."""


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent: 2 for USD, 0 for JPY and KRW, 3 for KWD (R-MON-1).

    A malformed or unknown code raises :class:`UnknownCurrency` instead of defaulting to 2,
    because a wrong exponent mis-prices every amount by a factor of 10 or more.
    """
    if not isinstance(currency, str) or not _CODE.fullmatch(currency):
        raise UnknownCurrency(f"{currency!r} is not a three-letter upper-case currency code")
    if currency in _NO_MINOR_UNIT or currency not in _known_codes():
        raise UnknownCurrency(f"{currency!r} is not a currency that can be billed")
    return _ISO_EXPONENTS.get(currency, 2)


def round_half_up(value: Fraction) -> int:
    """Round an exact value to an integer, halves away from zero (R-MON-2).

    Python's ``round`` rounds halves to even (``round(0.5) == 0``), which a customer reading
    an invoice does not expect. Negative values round symmetrically (-0.5 -> -1), so a
    credit is rounded exactly like the charge it mirrors.
    """
    if isinstance(value, float | bool) or not isinstance(value, Fraction | int):
        raise TypeError(f"round_half_up needs an exact Fraction or int, not {value!r}")
    value = Fraction(value)
    magnitude = abs(value)
    rounded = (2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator)
    return -rounded if value < 0 else rounded


def _as_decimal(value: str | int | Decimal) -> Decimal:
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise ValueError(
            f"amount {value!r} must be a str, int or Decimal; floats are inexact for money"
        )
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise ValueError(f"amount {value!r} is not a plain decimal number like '100.00'")
        return Decimal(text)
    return Decimal(value)


def to_minor(value: str | int | Decimal, currency: str) -> int:
    """Convert a major-unit amount ("100.00" USD) to minor units (10000) exactly.

    Used where people type amounts (catalog files, admin forms). Anything that would need
    rounding is refused rather than silently rounded: "9.999" USD is a typo, not $10.00.
    Trailing zeros are fine ("1100.0" JPY is 1100).
    """
    places = exponent(currency)
    amount = _as_decimal(value)
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"amount {value!r} is negative; prices and amounts are never negative")
    minor = amount.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(
            f"amount {value!r} has more than {places} decimal places, the minor unit of {currency}"
        )
    return int(minor)


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for a person: ``$13.00``, ``¥1,100``, ``-$5.00`` (R-MON-4).

    The number of decimals is the ISO exponent, so what is shown is exactly what is
    stored (CLDR would show IQD without decimals and hide fils that were charged).
    """
    _require_int(amount)
    return _formatted(amount, currency, locale)


@lru_cache(maxsize=4096)
def _formatted(amount: int, currency: str, locale: str) -> str:
    """Remembered: a batch of renewal receipts shows the same few prices thousands of times,
    and Babel takes tens of microseconds for each. (Only ints reach it: 1 and 1.0 hash alike.)"""
    places = exponent(currency)
    where, pattern = _currency_pattern(locale, places)
    # Babel's apply() is unannotated; the annotation keeps mypy --strict honest.
    text: str = pattern.apply(
        Decimal(amount).scaleb(-places), where, currency=currency, currency_digits=False
    )
    return text


@lru_cache(maxsize=64)
def _currency_pattern(locale: str, places: int) -> tuple[Locale, NumberPattern]:
    """The locale's currency pattern with ``places`` decimals (parsed once: receipts of a
    renewal batch format thousands of amounts)."""
    where = Locale.parse(locale)
    pattern: NumberPattern = copy.copy(where.currency_formats["standard"])
    pattern.frac_prec = (places, places)
    return where, pattern


def _require_int(amount: object) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money amounts are int minor units, not {type(amount).__name__}")


@dataclass(frozen=True)
class Money:
    """An amount with its currency, for code that passes both around together.

    Arithmetic across currencies raises :class:`CurrencyMismatch` instead of producing a
    number that means nothing (R-MON-3).
    """

    amount: int
    currency: str

    def __post_init__(self) -> None:
        _require_int(self.amount)
        exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in ``currency``: the start of a sum."""
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __radd__(self, other: object) -> Money:
        # Lets ``sum(moneys, Money.zero(c))`` and plain ``sum`` (which starts at 0) work.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so the parts add up to it exactly.

    Used to spread one rounded amount (a coupon's discount on a subtotal) over the items it
    covers, so each item's "paid" amount is known and they still sum to what was charged.
    Largest remainder: each part gets its floor, and the units left over go one each to the
    largest remainders, ties to the earlier position, so the result is deterministic.
    A negative total is split like its magnitude, then negated. When every weight is 0
    there is no proportion to follow, so the total is split evenly (earlier positions get
    the extra units).
    """
    _require_int(total)
    if not weights:
        raise ValueError("allocate needs at least one weight")
    for weight in weights:
        _require_int(weight)
        if weight < 0:
            raise ValueError(f"weights must not be negative, got {weight}")
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    shares = list(weights) if any(weights) else [1] * len(weights)
    whole = sum(shares)
    parts = [total * share // whole for share in shares]
    left = total - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(total * shares[i] % whole), i))
    for index in by_remainder[:left]:
        parts[index] += 1
    return parts
