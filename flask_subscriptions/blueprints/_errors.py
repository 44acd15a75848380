"""How a refused action is shown: the page says why, with the right status, and nothing
changed (R-SEC-4)."""

from __future__ import annotations

from flask import render_template


def fail(message: str, status: int) -> tuple[str, int]:
    return render_template("subscriptions/error.html", message=message, status=status), status
