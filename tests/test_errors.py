"""Domain errors are data (R-I18N-2): a code and values, one table of sentences, and the
page, not the error, picks the HTTP status.

These tests read the source: every place that builds an error must name a code that has a
sentence and give every value that sentence shows, or a page would print ``{coupon}``.
"""

from __future__ import annotations

import ast
import inspect
import pickle
import string
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from flask_subscriptions import errors
from flask_subscriptions.blueprints._errors import STATUS, status_of
from flask_subscriptions.errors import BillingError, UsageImportError, UsageInvalid
from flask_subscriptions.messages import MESSAGES, sentence

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [*(ROOT / "flask_subscriptions").rglob("*.py"), *(ROOT / "example_app").rglob("*.py")]
)
ERRORS_MODULE = ROOT / "flask_subscriptions" / "errors.py"

CLASSES: dict[str, type[BillingError]] = {
    name: value
    for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, BillingError)
}


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in SOURCES:
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _constructions() -> list[tuple[str, str, str, set[str]]]:
    """(where, class, code, value names) for every ``SomeError(...)`` call in the package
    and the example app."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            cls = CLASSES.get(node.func.id)
            if cls is None:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert not node.args, f"{where}: an error takes keywords only, not a sentence"
            keywords = {k.arg: k.value for k in node.keywords}
            assert None not in keywords, f"{where}: name each value, no **splat"
            code_node = keywords.pop("code", None)
            if code_node is None:
                code = cls.default_code
            else:
                assert isinstance(code_node, ast.Constant) and isinstance(code_node.value, str), (
                    f"{where}: the code must be a literal, so this test can check it"
                )
                code = code_node.value
            found.append((where, cls.__name__, code, {str(name) for name in keywords}))
    return found


CONSTRUCTIONS = _constructions()


def _codes_in_use() -> set[str]:
    used = {cls.default_code for cls in CLASSES.values()}
    used |= {code for _, _, code, _ in CONSTRUCTIONS}
    tree = ast.parse(ERRORS_MODULE.read_text(encoding="utf-8"))
    used |= {
        k.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "code" and isinstance(k.value, ast.Constant)
    }
    return used


def test_the_walk_finds_the_raise_sites() -> None:
    """A guard on the guard: if the walk found nothing, the tests below would prove nothing."""
    classes = {cls for _, cls, _, _ in CONSTRUCTIONS}
    assert len(CONSTRUCTIONS) > 50
    assert {"CouponInvalid", "UsageInvalid", "PaymentDeclined", "NotFound"} <= classes


def test_every_code_has_a_sentence_R_I18N_2() -> None:
    missing = sorted({code for code in _codes_in_use() if code not in MESSAGES})
    assert missing == []


def test_every_sentence_has_a_code_in_use_R_I18N_2() -> None:
    """No sentence that nothing can show (a typo in a code would leave one behind)."""
    assert sorted(set(MESSAGES) - _codes_in_use()) == []


def test_codes_are_short_snake_case_R_I18N_2() -> None:
    for code in MESSAGES:
        assert code.isascii() and code.replace("_", "").isalnum() and code == code.lower(), code
        assert len(code) <= 40, code


@pytest.mark.parametrize(
    ("where", "cls", "code", "given"),
    [c for c in CONSTRUCTIONS if c[1] != "UsageImportError"],
    ids=lambda value: value if isinstance(value, str) and ":" in value else "",
)
def test_every_raise_site_gives_the_values_its_sentence_shows_R_I18N_2(
    where: str, cls: str, code: str, given: set[str]
) -> None:
    needed = _placeholders(MESSAGES[code])
    assert needed <= given, f"{where}: {cls}(code={code!r}) lacks {sorted(needed - given)}"


def _sample(name: str) -> object:
    """A value that fits whatever format spec the sentence uses for ``name``."""
    return {"at": datetime(2026, 4, 1, 9, 30), "limit": 10**12, "value": 5, "line": 3}.get(
        name, f"<{name}>"
    )


def _error_for(cls_name: str, code: str) -> BillingError:
    values = {name: _sample(name) for name in _placeholders(MESSAGES[code])}
    return CLASSES[cls_name](code=code, **values)


PAIRS = sorted(
    {(cls, code) for _, cls, code, _ in CONSTRUCTIONS if cls != "UsageImportError"}
    | {(name, cls.default_code) for name, cls in CLASSES.items() if name != "UsageImportError"}
)


@pytest.mark.parametrize(("cls_name", "code"), PAIRS)
def test_each_error_with_each_of_its_codes_reads_as_a_whole_sentence_R_I18N_2(
    cls_name: str, code: str
) -> None:
    error = _error_for(cls_name, code)
    text = str(error)
    assert text and "{" not in text and "}" not in text, text
    assert text == sentence(error) == MESSAGES[code].format(**error.values)
    assert error.code == code
    assert isinstance(error, BillingError)


def test_a_translation_applies_to_the_sentence_and_to_each_nested_one_R_I18N_2() -> None:
    """The table is ready for ``gettext``: the translated template is filled with the values,
    and a problem inside a usage file error is translated too."""
    problem = UsageInvalid(code="usage_negative", value=-5)
    error = UsageImportError(problems=(UsageInvalid(code="usage_line", line=2, problem=problem),))
    marked = sentence(error, translate=lambda template: f"«{template}»")
    assert marked == "«Nothing was imported:\n«line 2: «Usage cannot be negative (got -5).»»»"


def test_a_usage_file_error_names_at_most_twenty_lines_and_counts_the_rest_R_SEC_4() -> None:
    problems = tuple(
        UsageInvalid(
            code="usage_line", line=n, problem=UsageInvalid(code="usage_negative", value=-n)
        )
        for n in range(1, 26)
    )
    text = str(UsageImportError(problems=problems))
    assert text.startswith("Nothing was imported:\nline 1: Usage cannot be negative (got -1).")
    assert "line 20:" in text and "line 21:" not in text and text.endswith("… and 5 more.")
    assert len(UsageImportError(problems=problems).errors) == 25


def test_a_missing_value_shows_its_placeholder_instead_of_failing() -> None:
    """A log line must never raise: a forgotten value shows as ``{coupon}``."""
    assert str(errors.CouponInvalid(code="coupon_expired")) == "The coupon {coupon} has expired."
    assert str(UsageInvalid(code="usage_too_large", limit="many", value=1)) == (
        "Usage cannot be over many (got 1)."
    )


def test_an_error_keeps_its_code_and_values_through_pickling() -> None:
    error = errors.CouponInvalid(code="coupon_wrong_currency", coupon="SAVE10", currency="JPY")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.code, again.values) == (
        errors.CouponInvalid,
        "coupon_wrong_currency",
        {"coupon": "SAVE10", "currency": "JPY"},
    )


def _subclasses(cls: type[BillingError]) -> Iterator[type[BillingError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_no_class_outside_errors_py_subclasses_billing_error_R_I18N_2() -> None:
    """One module holds every domain error, so its codes and the sentence table can be
    checked against each other. (Read from the source: importing every module would not
    catch a class in a module nobody imported yet.)"""
    outside = []
    for path, tree in _trees():
        if path == ERRORS_MODULE:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                for base in node.bases
            }
            if bases & set(CLASSES):
                outside.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert outside == []
    assert {cls.__module__ for cls in _subclasses(BillingError)} <= {"flask_subscriptions.errors"}


def test_no_error_carries_an_http_status_R_I18N_2() -> None:
    """The page picks the status (blueprints/_errors.py), not the error."""
    for cls in CLASSES.values():
        assert not any("status" in name for klass in cls.__mro__ for name in vars(klass)), (
            cls.__name__
        )


def test_the_status_table_gives_each_refusal_its_status_R_SEC_4() -> None:
    assert set(STATUS) <= set(CLASSES.values())
    expected = {
        "NotFound": 404,
        "NotAnOwner": 403,
        "PaymentDeclined": 402,
        "SettlementDeclined": 402,
        "WithdrawalFailed": 402,
        "CardRegistrationFailed": 402,
        "PaymentPending": 202,
        "QuoteChanged": 409,
        "BalanceChanged": 409,  # a QuoteChanged
        "PurchaseInProgress": 409,
        "PaymentServiceUnavailable": 503,
        "CouponInvalid": 400,
        "UsageImportError": 400,  # a UsageInvalid
    }
    for name, status in expected.items():
        cls = CLASSES[name]
        error = cls(problems=()) if cls is UsageImportError else cls()
        assert status_of(error) == status, name
