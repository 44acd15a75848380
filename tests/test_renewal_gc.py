"""A renewal run makes CPython's collections rarer while it lasts, and gives the host's
collector settings back afterwards, whatever happens (R-REN-2: a run's speed)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask

from flask_subscriptions.services._gc import DEFERRED, YOUNG, full_collections_deferred
from flask_subscriptions.services.renewals import renew_due
from flask_subscriptions.signals import subscription_renewed

from .conftest import at_noon
from .factories import new_user, subscribe


@pytest.fixture
def host_thresholds() -> Iterator[tuple[int, int, int]]:
    """A host's own collector settings, put back after the test."""
    before = gc.get_threshold()
    gc.set_threshold(500, 7, 9)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_a_renewal_run_makes_collections_rarer_and_gives_the_hosts_settings_back_R_REN_2(
    app: Flask, catalog: None, clock: object, host_thresholds: tuple[int, int, int]
) -> None:
    during: list[tuple[int, int, int]] = []
    subscribe(new_user("due"))
    at_noon(clock, date(2026, 4, 17))

    def renewed(_sender: object, **_values: object) -> None:  # sent inside the run
        during.append(gc.get_threshold())

    with subscription_renewed.connected_to(renewed):
        report = renew_due(concurrency=1)
    assert report.renewed == 1
    assert during == [(YOUNG, 7, DEFERRED)]
    assert gc.get_threshold() == host_thresholds


def test_the_settings_come_back_when_a_run_fails_R_REN_2(
    host_thresholds: tuple[int, int, int],
) -> None:
    with pytest.raises(RuntimeError), full_collections_deferred():
        assert gc.get_threshold() == (YOUNG, 7, DEFERRED)
        raise RuntimeError("the database went away")
    assert gc.get_threshold() == host_thresholds


def test_overlapping_runs_give_the_settings_back_when_the_last_one_ends_R_REN_2(
    host_thresholds: tuple[int, int, int],
) -> None:
    """Two runs in one process (the scheduler's thread and a CLI call): the first to end
    leaves full collections deferred for the other; the last puts the host's back."""
    first_in, first_may_leave = threading.Event(), threading.Event()

    def first() -> None:
        with full_collections_deferred():
            first_in.set()
            first_may_leave.wait(5)

    runner = threading.Thread(target=first)
    runner.start()
    first_in.wait(5)
    with full_collections_deferred():
        pass
    assert gc.get_threshold() == (YOUNG, 7, DEFERRED)  # the first run is still going
    first_may_leave.set()
    runner.join(5)
    assert gc.get_threshold() == host_thresholds


def test_a_host_that_made_full_collections_rarer_keeps_its_setting_R_REN_2() -> None:
    before = gc.get_threshold()
    gc.set_threshold(20_000, 10, 1000)
    try:
        with full_collections_deferred():
            assert gc.get_threshold() == (20_000, 10, 1000)
        assert gc.get_threshold() == (20_000, 10, 1000)
    finally:
        gc.set_threshold(*before)
