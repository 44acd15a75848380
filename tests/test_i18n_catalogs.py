"""Our translation catalogs are complete and current, and no template keeps English outside
the translation calls (R-I18N-1).

Three checks, read from the sources: the message template (``.pot``) holds exactly what the
code and templates mark for translation today; every message has a Japanese and a Korean
translation, not empty, not fuzzy, with the same placeholders; and each template's text, once
its tags, expressions and translation calls are taken out, has no English words left but a
few names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

PACKAGE = Path(__file__).resolve().parents[1] / "flask_subscriptions"
TRANSLATIONS = PACKAGE / "translations"
TEMPLATES = PACKAGE / "templates"
LANGUAGES = ("ja", "ko")

#: What babel.cfg and the README's extraction command say.
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_subs": None,
    "_subs_n": (1, 2),
    "N_": None,
    "lazy_gettext": None,
}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]

#: ``%(name)s``, ``%%``, ``{name}``, ``{name!r}``, ``{name:,}``: what a translation must keep.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%%|\{[a-z_]+(?:![rs])?(?::[^}]*)?\}")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _messages(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


def _key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, tuple | list) else message.id


def _texts(value: str | tuple[str, ...] | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_the_message_template_holds_what_the_sources_mark_R_I18N_1() -> None:
    """A string marked for translation but missing from the ``.pot`` would never reach a
    translator; one in the ``.pot`` that no source uses any more is dead weight."""
    marked = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(PACKAGE), METHODS, keywords=KEYWORDS
        )
    }
    template = {_key(m) for m in _messages(_read(TRANSLATIONS / "flask_subscriptions.pot"))}
    assert sorted(marked - template) == [], "run the extraction (README: Translations)"
    assert sorted(template - marked) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation_with_its_placeholders_R_I18N_1(language: str) -> None:
    template = _read(TRANSLATIONS / "flask_subscriptions.pot")
    catalog = _read(TRANSLATIONS / language / "LC_MESSAGES" / "flask_subscriptions.po", language)
    problems = []
    for wanted in _messages(template):
        found = catalog.get(_key(wanted))
        if found is None:
            problems.append(f"missing: {wanted.id!r}")
            continue
        if found.fuzzy:
            problems.append(f"fuzzy: {wanted.id!r}")
        sources = _texts(wanted.id)
        for text in _texts(found.string):
            if not text.strip():
                problems.append(f"empty: {wanted.id!r}")
                continue
            expected = set(PLACEHOLDER.findall(sources[-1]))
            if set(PLACEHOLDER.findall(text)) != expected:
                problems.append(f"placeholders {sorted(expected)} in {text!r}")
    assert problems == []
    assert catalog.plural_forms == "nplurals=1; plural=0;"  # one form, however many


def test_a_plural_message_has_its_forms_R_I18N_1() -> None:
    """English has two forms and is the source; Japanese and Korean have one."""
    template = _read(TRANSLATIONS / "flask_subscriptions.pot")
    plurals = [m for m in _messages(template) if m.pluralizable]
    assert len(plurals) >= 4
    for language in LANGUAGES:
        catalog = _read(
            TRANSLATIONS / language / "LC_MESSAGES" / "flask_subscriptions.po", language
        )
        for message in plurals:
            assert len(_texts(catalog[_key(message)].string)) == 1


# -- no English outside the translation calls ----------------------------------------------

#: Names that are not English to translate: brands, formats and units.
ALLOWED_WORDS = {"Sandbox", "Pay", "PDF", "CSV", "MRR", "ARR", "CVC", "MM", "YY", "UTC"}
#: Attributes a person reads (the rest are names, classes, URLs).
READ_ATTRIBUTES = re.compile(r'\b(?:aria-label|placeholder|title|alt)="([^"{]*)"')
TRANSLATING = {"_subs", "_subs_n"}
PHRASE = re.compile(r"[A-Za-z]{2,}[\s.,!?:;]+[A-Za-z]")


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt"))


def _english(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in ALLOWED_WORDS]


def _literal_phrases(node: nodes.Node, translated: bool = False) -> Iterator[str]:
    """String constants of two words or more outside ``_subs(...)``: a ``'Enabled' if …``."""
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        translated = translated or node.node.name in TRANSLATING
    literal = isinstance(node, nodes.Const) and isinstance(node.value, str) and not translated
    if literal and PHRASE.search(node.value) and not _is_code(node.value):
        yield node.value
    for child in node.iter_child_nodes():
        yield from _literal_phrases(child, translated)


def _is_code(value: str) -> bool:
    """An endpoint, a file name, CSS classes, a format: not words for a person."""
    if re.fullmatch(r"[\w./:%-]+", value) or value.startswith("%"):
        return True
    return all(re.search(r"[-_.]", word) for word in value.split())  # "subs-a subs-b"


def _visible_text(source: str, env: Environment) -> tuple[str, list[str]]:
    """The template's literal text (tags, scripts and styles out) and its literal phrases."""
    tree = env.parse(source)
    data = "\x00".join(node.data for node in tree.find_all(nodes.TemplateData))
    data = re.sub(r"<(script|style)\b.*?</\1>", " ", data, flags=re.S)
    attributes = " ".join(READ_ATTRIBUTES.findall(data))
    text = re.sub(r"<[^>]*>|&\w+;", " ", data)
    return f"{text} {attributes}", list(_literal_phrases(tree))


def test_the_scan_sees_english_outside_the_calls_R_I18N_1() -> None:
    """The check's own check: it catches a sentence, a label and a conditional word."""
    text, phrases = _visible_text(
        '<p title="Hover me">{{ _subs("Fine") }} Pay now</p>{{ "Yes, do" if x }}', Environment()
    )
    assert _english(text) == ["now", "Hover", "me"]  # "Pay" alone is Sandbox Pay's name
    assert phrases == ["Yes, do"]


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_keeps_english_outside_the_translation_calls_R_I18N_1(path: Path) -> None:
    env = Environment(extensions=["jinja2.ext.i18n"])
    text, phrases = _visible_text(path.read_text(encoding="utf-8"), env)
    assert _english(text) == []
    assert phrases == []
