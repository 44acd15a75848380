"""Dunning decisions (R-DUN-1, R-DUN-2): what to do today about a renewal that was not paid.

Pure: the service layer gathers the facts, this module decides, the service acts. Two
policies, chosen in configuration:

* ``restrict`` — retry the card once a day during the grace; when the grace ends unpaid,
  restrict paid features until everything unpaid is settled (the plan is kept and terms
  keep renewing as open invoices).
* ``free`` — ask the owner to update the payment method; after an update, retry at the
  next check (a job every 15 minutes); when the grace ends unpaid, move to the Free plan
  and void the unpaid invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

Policy = Literal["restrict", "free"]


class Action(StrEnum):
    RETRY = "retry"
    WARN = "warn"  # the grace ends soon: tell the owners once
    RESTRICT = "restrict"
    MOVE_TO_FREE = "move_to_free"
    WAIT = "wait"


@dataclass(frozen=True)
class Facts:
    """What is known about one subscription in dunning."""

    policy: Policy
    today: date
    now: datetime
    grace_ends_on: date
    restricted: bool
    last_attempt_on: date | None
    last_attempt_at: datetime | None
    method_updated_at: datetime | None
    warning_days: int
    warned: bool


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]

    @property
    def retry(self) -> bool:
        return Action.RETRY in self.actions


def last_day_of_grace(grace_ends_on: date) -> date:
    """The last day paid features keep working and the card is tried: the day before
    ``grace_ends_on``, the day :func:`decide` restricts or moves to Free. Every e-mail and
    page names these two days, so they agree with what really happens (R-DUN-4)."""
    return grace_ends_on - timedelta(days=1)


def decide(facts: Facts) -> Decision:
    """The actions due today, in the order to take them."""
    if facts.restricted:
        return Decision((Action.WAIT,))  # only a settlement by the owner lifts it (R-DUN-3)
    if facts.today > last_day_of_grace(facts.grace_ends_on):
        end = Action.RESTRICT if facts.policy == "restrict" else Action.MOVE_TO_FREE
        return Decision((end,))
    actions: list[Action] = []
    if _retry_due(facts):
        actions.append(Action.RETRY)
    warn_from = facts.grace_ends_on - timedelta(days=facts.warning_days)
    if not facts.warned and facts.today >= warn_from:
        actions.append(Action.WARN)
    return Decision(tuple(actions) or (Action.WAIT,))


def _retry_due(facts: Facts) -> bool:
    last = facts.last_attempt_at
    updated = facts.method_updated_at is not None and (
        last is None or facts.method_updated_at > last
    )
    if facts.policy == "free":
        return updated  # R-DUN-2: retried after the owner updates the payment method
    # R-DUN-1: once a day during the grace, and at once after an update
    return updated or facts.last_attempt_on is None or facts.last_attempt_on < facts.today


def support_needed(
    method_updated_at: datetime | None, still_unpaid: bool, now: datetime, after: timedelta
) -> bool:
    """R-DUN-2: unpaid a day after the owner updated the card: ask them to contact support."""
    return still_unpaid and method_updated_at is not None and now - method_updated_at >= after
