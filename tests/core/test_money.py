"""Money in minor units: exponents, exact conversion, rounding, formatting (R-MON)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from flask_subscriptions.core.money import (
    CurrencyMismatch,
    Money,
    UnknownCurrency,
    allocate,
    exponent,
    format_money,
    round_half_up,
    to_minor,
)


def _plain(text: str) -> str:
    """Babel may put a no-break space between symbol and number; compare without it."""
    return text.replace("\xa0", " ")


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("VND", 0),
        ("ISK", 0),
        ("XAF", 0),
        ("BHD", 3),
        ("IQD", 3),  # ISO says 3 although CLDR shows 0 digits: we follow ISO
        ("JOD", 3),
        ("KWD", 3),
        ("LYD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
    ],
)
def test_exponent_is_iso_4217_R_MON_1(currency: str, expected: int) -> None:
    """R-MON-1: amounts are integers in the currency's ISO 4217 minor unit."""
    assert exponent(currency) == expected


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "ABC", "", " USD", "XAU", "XXX", "XTS"])
def test_unknown_or_malformed_currency_is_refused_R_MON_1(code: str) -> None:
    """R-MON-1: a code that is not a billable ISO currency is an error, never exponent 2."""
    with pytest.raises(UnknownCurrency):
        exponent(code)


def test_unknown_currency_is_a_value_error_R_MON_1() -> None:
    """R-MON-1: callers that catch ValueError (form validation) also catch UnknownCurrency."""
    assert issubclass(UnknownCurrency, ValueError)
    with pytest.raises(ValueError, match="currency"):
        exponent(840)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2), 1),  # half goes up, not to even
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),  # round() would give 2
        (Fraction(-1, 2), -1),  # symmetric: the magnitude rounds half up
        (Fraction(-5, 2), -3),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(-2, 3), -1),
        (Fraction(-1, 3), 0),
        (Fraction(0), 0),
        (Fraction(99999, 100000), 1),
        (Fraction(6452, 2), 3226),
        (7, 7),
    ],
)
def test_round_half_up_R_MON_2(value: Fraction, expected: int) -> None:
    """R-MON-2: one rounding per line, half up, symmetric for negatives."""
    result = round_half_up(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [0.5, 1.0, True])
def test_round_half_up_refuses_floats_R_MON_1(value: object) -> None:
    """R-MON-1: no floats anywhere on a money path."""
    with pytest.raises(TypeError):
        round_half_up(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("100.00", "USD", 10000),
        ("100", "USD", 10000),
        ("0.01", "USD", 1),
        (" 12.5 ", "USD", 1250),
        ("1100", "JPY", 1100),
        ("1100.0", "JPY", 1100),  # trailing zeros need no rounding
        ("9900", "KRW", 9900),
        ("1.234", "KWD", 1234),
        ("0", "USD", 0),
        (5, "USD", 500),
        (1100, "JPY", 1100),
        (Decimal("13.00"), "USD", 1300),
        (Decimal("0.005"), "KWD", 5),
    ],
)
def test_to_minor_R_MON_1(value: str | int | Decimal, currency: str, expected: int) -> None:
    """R-MON-1: major units typed by people become exact minor units."""
    result = to_minor(value, currency)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "currency", "message"),
    [
        ("1.001", "USD", "decimal places"),
        ("1.5", "JPY", "decimal places"),
        ("0.0001", "KWD", "decimal places"),
        (Decimal("9.999"), "USD", "decimal places"),
        ("-1", "USD", "negative"),
        (-100, "USD", "negative"),
        (Decimal("-0.01"), "USD", "negative"),
        (Decimal("NaN"), "USD", "finite"),
        (Decimal("Infinity"), "USD", "finite"),
        ("NaN", "USD", "plain decimal"),
        ("1e3", "USD", "plain decimal"),
        ("1,000", "USD", "plain decimal"),
        ("", "USD", "plain decimal"),
        ("$5", "USD", "plain decimal"),
        (1.5, "USD", "float"),
        (True, "USD", "float"),
    ],
)
def test_to_minor_refuses_what_would_need_rounding_R_MON_1(
    value: object, currency: str, message: str
) -> None:
    """R-MON-1 / R-SEC-4: a bad amount is a clear error, never silently rounded."""
    with pytest.raises(ValueError, match=message):
        to_minor(value, currency)  # type: ignore[arg-type]


def test_to_minor_unknown_currency_R_MON_1() -> None:
    """R-MON-1: converting into an unknown currency fails before any arithmetic."""
    with pytest.raises(UnknownCurrency):
        to_minor("1.00", "ZZZ")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1300, "USD", "en_US", "$13.00"),
        (1100, "JPY", "en_US", "¥1,100"),
        (9900, "KRW", "en_US", "₩9,900"),
        (1234, "KWD", "en_US", "KWD1.234"),  # three decimals: 1.234 KWD
        (5, "KWD", "en_US", "KWD0.005"),
        (1234567, "IQD", "en_US", "IQD1,234.567"),  # ISO exponent, not CLDR's 0 digits
        (0, "USD", "en_US", "$0.00"),
        (123456789, "USD", "en_US", "$1,234,567.89"),
        (-1300, "USD", "en_US", "-$13.00"),
        (-1100, "JPY", "en_US", "-¥1,100"),
        (-1234, "KWD", "en_US", "-KWD1.234"),
        (-123450, "EUR", "de_DE", "-1.234,50 €"),
        (1100, "JPY", "ja_JP", "￥1,100"),
        (9900, "KRW", "ko_KR", "₩9,900"),
    ],
)
def test_format_money_R_MON_4(amount: int, currency: str, locale: str, expected: str) -> None:
    """R-MON-4: every amount shown is formatted for its currency and locale ($13.00, ¥1,100)."""
    assert _plain(format_money(amount, currency, locale)) == expected


def test_format_money_defaults_to_en_us_R_MON_4() -> None:
    """R-MON-4: the default locale is en_US."""
    assert format_money(1300, "USD") == "$13.00"
    assert format_money(1100, "JPY") == "¥1,100"


@pytest.mark.parametrize("amount", [13.0, Decimal("13"), "1300", True])
def test_format_money_refuses_non_int_R_MON_1(amount: object) -> None:
    """R-MON-1: formatting takes minor units as int; anything else is a bug upstream."""
    with pytest.raises(TypeError):
        format_money(amount, "USD")  # type: ignore[arg-type]


def test_money_arithmetic_R_MON_1() -> None:
    """R-MON-1: Money adds, subtracts, negates and compares as ints in one currency."""
    a, b = Money(1300, "USD"), Money(200, "USD")
    assert a + b == Money(1500, "USD")
    assert a - b == Money(1100, "USD")
    assert -a == Money(-1300, "USD")
    assert b < a <= a < Money(1301, "USD")
    assert a > b >= b
    assert Money.zero("JPY") == Money(0, "JPY")
    assert sum([a, b]) == Money(1500, "USD")
    assert sum([a, b], Money.zero("USD")) == Money(1500, "USD")
    assert str(a) == "$13.00"
    assert str(Money(-1100, "JPY")) == "-¥1,100"
    assert type((a + b).amount) is int


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_money_mixing_currencies_raises_R_MON_3(operation: object) -> None:
    """R-MON-3: one currency per account; mixing two is an error, not a number."""
    with pytest.raises(CurrencyMismatch):
        operation(Money(100, "USD"), Money(100, "JPY"))  # type: ignore[operator]
    assert issubclass(CurrencyMismatch, ValueError)


def test_money_equality_across_currencies_is_false_R_MON_3() -> None:
    """R-MON-3: 100 cents are not 100 yen."""
    assert Money(100, "USD") != Money(100, "JPY")


@pytest.mark.parametrize("amount", [1.5, 1.0, True, Decimal("1"), "1", None])
def test_money_refuses_non_int_amounts_R_MON_1(amount: object) -> None:
    """R-MON-1: Money holds int minor units only (bool, float and Decimal are refused)."""
    with pytest.raises(TypeError):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_money_refuses_unknown_currency_R_MON_1() -> None:
    """R-MON-1: a Money in an unknown currency cannot exist."""
    with pytest.raises(UnknownCurrency):
        Money(100, "usd")


def test_money_does_not_mix_with_plain_numbers_R_MON_1() -> None:
    """R-MON-1: adding a bare number to Money is a TypeError (the currency would be lost)."""
    with pytest.raises(TypeError):
        Money(100, "USD") + 1
    with pytest.raises(TypeError):
        assert Money(100, "USD") < 5


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # 33.33 each; the one left goes to the first
        (-100, [1, 1, 1], [-34, -33, -33]),  # a negative total splits like its magnitude
        (1950, [10000, 3000], [1500, 450]),  # a 15% coupon spread over 100.00 + 30.00
        (1000, [5000, 3000, 4000], [417, 250, 333]),  # 416.67, 250, 333.33
        (10, [0, 1, 0], [0, 10, 0]),
        (5, [0, 0], [3, 2]),  # all-zero weights: split evenly, earlier first
        (0, [1, 2], [0, 0]),
        (1, [1, 1], [1, 0]),  # a tie goes to the earlier position
        (7, [3], [7]),
    ],
)
def test_allocate_R_MON_2(total: int, weights: list[int], expected: list[int]) -> None:
    """R-MON-2: one rounded amount is spread over items so the parts add up exactly."""
    parts = allocate(total, weights)
    assert parts == expected
    assert sum(parts) == total


@pytest.mark.parametrize(("total", "weights"), [(10, []), (10, [1, -1]), (1.5, [1])])
def test_allocate_refuses_bad_input_R_MON_1(total: object, weights: list[int]) -> None:
    """R-MON-1: allocation needs int totals and non-negative int weights."""
    with pytest.raises((TypeError, ValueError)):
        allocate(total, weights)  # type: ignore[arg-type]
