"""Parts of a page rendered once and remembered, per app and process.

The plans page's cards depend only on the catalog's version, the currency, the language
and the license the account holds: every view with the same of those renders the same
HTML, and rendering it was most of the page's work. A fragment is remembered under a key
that holds all it depends on (and the mount point its links are built for), so it is
never stale: a new catalog is a new version, a new key. At most ``SIZE`` are kept, the
least recently used go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import render_template, request
from markupsafe import Markup

from .i18n import current_locale
from .services.plans import Offer
from .services.plans_page import HeldPlan
from .state import get_state

#: Fragments kept per app and process (the plans page keeps one per catalog version,
#: currency, language and license held).
SIZE = 1024
_EXTRA = "subs_fragments"  # State.extras


class Fragments:
    """A bounded, thread-safe map of rendered HTML by key."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def rendered(self, key: Hashable, render: Callable[[], str]) -> Markup:
        """The fragment under ``key``, rendered by ``render`` the first time."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        # Our templates' output, escaped by Jinja when rendered.
        found = Markup(render())  # noqa: S704
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._kept)


def fragments() -> Fragments:
    """This app's fragments in this process."""
    extras = get_state().extras
    found = extras.get(_EXTRA)
    if found is None:
        found = extras.setdefault(_EXTRA, Fragments())
    return found  # type: ignore[no-any-return]


def plan_cards(
    offers: list[Offer], currency: str, held: HeldPlan | None, version: int | None
) -> Markup:
    """The plans page's cards (``partials/_plan_cards.html``) for the catalog at
    ``version``, remembered; rendered every time for a catalog without a version."""

    def render() -> str:
        return render_template(
            "subscriptions/partials/_plan_cards.html", offers=offers, currency=currency, held=held
        )

    if version is None:
        return Markup(render())  # noqa: S704 -- escaped by Jinja
    held_key = (held.subscription_id, held.plan.id, held.options) if held else None
    key = ("plan_cards", request.script_root, current_locale(), version, currency, held_key)
    return fragments().rendered(key, render)
