"""Work that must wait for the commit: signals (STYLE: sent only after the commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blinker import NamedSignal
from flask import current_app

from ..state import get_state

_KEY = "subs_after_commit"


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current transaction has committed (dropped on rollback)."""
    get_state().session.info.setdefault(_KEY, []).append(callback)


def commit() -> None:
    """Commit the session, then run what was waiting for it."""
    session = get_state().session
    session.commit()
    for callback in session.info.pop(_KEY, []):
        callback()


def rollback() -> None:
    session = get_state().session
    session.info.pop(_KEY, None)
    session.rollback()


def send_after_commit(signal: NamedSignal, **kwargs: Any) -> None:
    """Send ``signal`` from the app with ``kwargs`` once this transaction has committed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        signal.send(app, **kwargs)

    after_commit(send)
