"""Finding card numbers where none may be (R-SEC-1)."""

from __future__ import annotations

import re

from flask_subscriptions.gateways.sandbox.cards import luhn_valid


def luhn_valid_numbers(text: str) -> list[str]:
    """Luhn-valid 13 to 19-digit windows of every digit run (spaces, dashes allowed)."""
    found = []
    for match in re.finditer(r"\d(?:[ -]?\d){12,}", text):
        digits = re.sub(r"[ -]", "", match[0])
        for length in range(13, 20):
            for start in range(len(digits) - length + 1):
                window = digits[start : start + length]
                if luhn_valid(window):
                    found.append(window)
    return found
