"""Browser fixtures: headless Chromium driving the example app served on a free port.

``live_app`` serves a fresh example app (its own SQLite file and its own instance folder, so
its test clock starts at today) from a background thread; ``page`` is a new browser context
per test, on one Chromium per session. ``shot(page, name)`` saves a numbered full-page
screenshot to ``test-artifacts/browser/<test>/`` so a failing CI run can be inspected; a
screenshot and the page's console errors are also saved when a test fails.

Chromium comes from the system (``apt-get install chromium``), never from a download: when it
is missing the tests skip, except in CI (``CI=true``) where nothing may skip.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from example_app import create_app, prepare

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers' /dev/shm is often too small for Chromium
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home and its connections are refused on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # per action or assertion: a broken page fails fast, not after 30 s
expect.set_options(timeout=TIMEOUT_MS)


# -- Chromium and Playwright --------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system's Chromium; missing → skip, or fail in CI."""
    found = [p for p in ("/usr/bin/chromium", *map(shutil.which, CHROMIUM_CANDIDATES)) if p]
    for path in found:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    message = "Chromium not found (install it: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so browser tests may not skip")
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# -- the example app, served ---------------------------------------------------------------


@dataclass
class LiveApp:
    app: Flask
    url: str

    def __call__(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.url + path


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[LiveApp]:
    """A fresh example app (demo people, sample catalog) on 127.0.0.1 and a free port.

    Its instance folder is a temporary one, so the test clock's file (``test-clock.json``)
    is never the developer's nor another test's. Sandbox Pay gets its own SQLite file, as a
    remote service would have (and as ``tests/conftest.py`` does): on the app's own file the
    host's ``BEGIN IMMEDIATE`` transactions hold the write lock while Sandbox Pay is called.
    """
    instance = tmp_path / "instance"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "SANDBOX_PAY_DATABASE_URI": f"sqlite:///{tmp_path / 'sandbox-pay.sqlite'}",
            "SUBSCRIPTIONS_SCHEDULER_ENABLED": False,
            "SECRET_KEY": "browser-tests",
        },
        instance_path=str(instance),
    )
    assert Path(app.instance_path) == instance
    with app.app_context():
        prepare()  # what `flask --app example_app setup` (make demo) does
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            from example_app.models import db

            for engine in db.engines.values():
                engine.dispose()
            app.extensions["sandbox_pay"].engine.dispose()


# -- pages and screenshots ------------------------------------------------------------------


@dataclass
class _Shots:
    folder: Path
    count: int = 0
    errors: list[str] = field(default_factory=list)


_shots: dict[int, _Shots] = {}
_failed = pytest.StashKey[bool]()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/browser/<test>/<NN>-<name>.png``."""
    shots = _shots[id(page)]
    shots.count += 1
    path = shots.folder / f"{shots.count:02d}-{_slug(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "page"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[_failed] = report.failed
    return report


@pytest.fixture
def page(browser: Browser, live_app: LiveApp, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new browser context (1280×900) per test, its base URL the live app."""
    folder = ARTIFACTS / _slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    shots = _Shots(folder)
    _shots[id(new_page)] = shots
    new_page.on("pageerror", lambda error: shots.errors.append(f"page error: {error}"))
    new_page.on(
        "console",
        lambda msg: (
            shots.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    try:
        yield new_page
    finally:
        if request.node.stash.get(_failed, False):
            try:
                shot(new_page, "failed")
            except Exception as exc:  # the page may be gone; the report matters more
                shots.errors.append(f"no failure screenshot: {exc}")
            (folder / "page.txt").write_text(
                f"URL: {new_page.url}\n" + "".join(f"{line}\n" for line in shots.errors)
            )
        del _shots[id(new_page)]
        context.close()
