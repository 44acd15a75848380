"""Compiles our translation catalogs (``.po`` → ``.mo``) whenever the package is built.

The ``.po`` files are the source and are committed; the ``.mo`` files are built here, for a
wheel (into the build directory) and for an editable install (beside the ``.po``, where the
editable package reads its data), so no compiled file is ever committed by hand.
Everything else about the package is in ``pyproject.toml``.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGS = Path("flask_subscriptions") / "translations"


class build_py_with_catalogs(build_py):
    def run(self) -> None:
        super().run()
        target = Path("." if self.editable_mode else self.build_lib)
        for po in sorted(CATALOGS.glob("*/LC_MESSAGES/*.po")):
            mo = target / po.with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parts[-3])
            with mo.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": build_py_with_catalogs})
