"""Sandbox Pay's test cards, and the card arithmetic its form needs.

Use any future expiry date and any 3-digit security code (4 digits for
American Express). Spaces in the number are fine.

=====================  ==========  =================================================
Number                 Brand       Behaviour
=====================  ==========  =================================================
4242 4242 4242 4242    Visa        every charge succeeds
5555 5555 5555 4444    Mastercard  every charge succeeds
4000 0000 0000 0002    Visa        declined at registration (card_declined)
4000 0000 0000 0069    Visa        declined at registration (expired_card)
4000 0000 0000 0341    Visa        registers; every charge hard-declined (card_declined)
4000 0000 0000 9995    Visa        registers; every charge soft-declined (insufficient_funds)
4000 0000 0000 1232    Visa        first charge succeeds, every later one hard-declined
                                   (card_declined): purchase works, renewal fails
4000 0027 6000 3184    Visa        every charge requires authentication (3-D Secure):
                                   REQUIRES_ACTION with an action_url to a sandbox page
any other valid number (by brand)  every charge succeeds
=====================  ==========  =================================================

4000 0000 0000 1232 is ours, not one of Stripe's documented test numbers.

Besides the table, a charge is hard-declined when the card has expired by the
gateway's ``today`` (expired_card), was removed, or belongs to another customer
(card_declined).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ...i18n import N_
from ..base import DeclineKind

__all__ = [
    "DECLINES",
    "TEST_CARDS",
    "Behaviour",
    "SandboxCard",
    "brand_of",
    "card_for",
    "luhn_valid",
    "normalize_number",
]


class Behaviour(StrEnum):
    """What happens when a registered card is charged (stored with the card)."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FIRST_CHARGE_ONLY = "first_charge_only"
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True)
class SandboxCard:
    number: str
    brand: str
    behaviour: Behaviour
    summary: str
    setup_decline: str | None = None  # decline code at registration, if any


#: decline code → (kind, message for the person)
DECLINES: dict[str, tuple[DeclineKind, str]] = {
    "card_declined": (DeclineKind.HARD, "Your card was declined."),
    "lost_card": (DeclineKind.HARD, "Your card was declined."),
    "expired_card": (DeclineKind.HARD, "Your card has expired."),
    "insufficient_funds": (DeclineKind.SOFT, "Your card has insufficient funds."),
}

TEST_CARDS: tuple[SandboxCard, ...] = (
    SandboxCard("4242424242424242", "visa", Behaviour.SUCCEED, N_("Succeeds")),
    SandboxCard("5555555555554444", "mastercard", Behaviour.SUCCEED, N_("Succeeds")),
    SandboxCard(
        "4000000000000002",
        "visa",
        Behaviour.DECLINE,
        N_("Declined at registration"),
        "card_declined",
    ),
    SandboxCard(
        "4000000000000069",
        "visa",
        Behaviour.DECLINE,
        N_("Expired at registration"),
        "expired_card",
    ),
    SandboxCard("4000000000000341", "visa", Behaviour.DECLINE, N_("Every charge declined")),
    SandboxCard(
        "4000000000009995",
        "visa",
        Behaviour.INSUFFICIENT_FUNDS,
        N_("Every charge: insufficient funds"),
    ),
    SandboxCard(
        "4000000000001232",
        "visa",
        Behaviour.FIRST_CHARGE_ONLY,
        N_("First charge only (renewal fails)"),
    ),
    SandboxCard(
        "4000002760003184",
        "visa",
        Behaviour.REQUIRES_ACTION,
        N_("Every charge needs authentication"),
    ),
)

_BY_NUMBER = {card.number: card for card in TEST_CARDS}


def normalize_number(raw: str) -> str | None:
    """The digits of a card number typed with optional spaces, or None if malformed."""
    digits = raw.replace(" ", "")
    if not (13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return None
    return digits


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str:
    """The brand by IIN prefix, in the payment services' lower-case codes."""
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if digits.startswith("6011") or digits.startswith("65") or 644 <= int(digits[:3]) <= 649:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return "diners"
    if two == 62:
        return "unionpay"
    return "unknown"


def card_for(digits: str) -> SandboxCard:
    """The test behaviour of a (valid) number: the table's, or "succeeds"."""
    return _BY_NUMBER.get(digits) or SandboxCard(
        digits, brand_of(digits), Behaviour.SUCCEED, N_("Succeeds")
    )


def charge_outcome(behaviour: Behaviour, attempt: int) -> str | None:
    """The decline code of the card's ``attempt``-th charge (1-based), None to succeed.

    ``REQUIRES_ACTION`` is handled by the caller: it is neither a success nor a decline.
    """
    if behaviour is Behaviour.DECLINE:
        return "card_declined"
    if behaviour is Behaviour.INSUFFICIENT_FUNDS:
        return "insufficient_funds"
    if behaviour is Behaviour.FIRST_CHARGE_ONLY and attempt > 1:
        return "card_declined"
    return None
