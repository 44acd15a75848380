"""The README's "Plugging it into an app" runs as printed (issue #18): its blocks, taken
verbatim, on a non-editable install of the built wheel in a fresh virtualenv, serve an app
where a person signs in and buys a plan over HTTP with Sandbox Pay."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VISA = "4242 4242 4242 4242"

pytestmark = pytest.mark.slow


def readme_block(title: str) -> str:
    """The fenced block whose info string carries ``title="<title>"``, exactly as printed."""
    found = re.findall(rf'```\w+ title="{re.escape(title)}"\n(.*?)```', README.read_text(), re.S)
    assert len(found) == 1, f"README has {len(found)} blocks titled {title!r}"
    return str(found[0])


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout (not an editable install)."""
    where = tmp_path_factory.mktemp("install")
    wheels = where / "wheels"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("flask_subscriptions-*.whl")
    env_dir = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    return env_dir


def _shell(script: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def served(venv: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Write the README's files, run its set-up block, then its serve block; the base URL."""
    app_file, setup, serve = request.param
    (tmp_path / app_file).write_text(readme_block(app_file))
    (tmp_path / "catalog.toml").write_text(readme_block("catalog.toml"))
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "VIRTUAL_ENV": str(venv),
        "FLASK_RUN_PORT": str(free_port()),  # `flask run` as printed, on a free port
    }
    _shell(readme_block(setup), tmp_path, env)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        ["bash", "-c", f"exec {readme_block(serve)}"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{env['FLASK_RUN_PORT']}"
    try:
        _wait_for(base, server, tmp_path / "server.log")
        yield base
    finally:
        stop(server, timeout=10)
        log.close()


def _wait_for(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(base + "/sign-in", timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"the README's app did not answer:\n{log.read_text()}")


class Browser:
    """Cookies, redirects and CSRF tokens, as a person's browser keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        """The page's text and the URL it ended on."""
        with self.opener.open(self._url(path), timeout=30) as response:
            return response.read().decode(), response.geturl()

    def submit(self, page: str, action: str, **fields: str) -> tuple[str, str]:
        """POST ``fields`` to ``action`` with the CSRF token of the page at ``page``."""
        html, _ = self.get(page)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        assert token, f"no CSRF token on {page}:\n{html}"
        data = urllib.parse.urlencode({"csrf_token": token[1], **fields}).encode()
        with self.opener.open(self._url(action), data=data, timeout=30) as response:
            return response.read().decode(), response.geturl()

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path


def buy_small(browser: Browser, email: str) -> str:
    """Buy now → sign in → register a card at Sandbox Pay → choose it → Place Order; the
    License Management page afterwards."""
    order_page = "/billing/checkout/small?interval=month"
    _, landed = browser.submit(order_page, order_page, interval="month", currency="USD")
    assert "/sign-in" in landed, landed  # step 2: the host's sign-in page
    _, landed = browser.submit(landed, landed, email=email)
    assert "/billing/orders/" in landed, landed  # back to the same order
    key = re.search(r"/billing/orders/([^/]+)/", landed)
    assert key
    register = "/billing/payment-methods/register"
    _, card_form = browser.submit("/billing/payment-methods", register)
    registered, _ = browser.submit(card_form, card_form, number=VISA, expiry="12/39", cvc="123")
    assert "4242" in registered, registered
    payment = f"/billing/orders/{key[1]}/payment"
    html, _ = browser.get(payment)
    method = re.search(r'name="payment_method"[^>]*value="(\d+)"', html)
    assert method, html
    browser.submit(payment, payment, payment_method=method[1])
    confirm = f"/billing/orders/{key[1]}/confirm"
    html, _ = browser.get(confirm)
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]{64})"', html)
    assert fingerprint and "Place Order" in html
    done, _ = browser.submit(confirm, f"/billing/orders/{key[1]}/place", fingerprint=fingerprint[1])
    assert "Small" in done
    licenses, _ = browser.get("/billing/licenses")
    return licenses


@pytest.mark.parametrize("served", [("yourapp.py", "setup", "serve")], indirect=True)
def test_the_readme_host_sells_a_plan_from_the_wheel(served: str) -> None:
    licenses = buy_small(Browser(served), "ada@example.com")
    assert "Small" in licenses and "Enabled" in licenses


@pytest.mark.parametrize("served", [("teamapp.py", "team-setup", "team-serve")], indirect=True)
def test_the_readme_team_host_sells_a_plan_to_an_owner_only(served: str) -> None:
    member = Browser(served)
    member.submit("/sign-in", "/sign-in", email="mike@acme.example")
    with pytest.raises(urllib.error.HTTPError) as refused:
        member.get("/billing/licenses")
    refused.value.close()  # the error carries the open response
    assert refused.value.code == 403
    licenses = buy_small(Browser(served), "olivia@acme.example")
    assert "Small" in licenses and "Enabled" in licenses


def test_usage_import_with_a_non_numeric_id_is_a_clear_error(venv: Path, tmp_path: Path) -> None:
    """The README's own ``load_account`` answers None for 'acme'; our CLI names the line."""
    (tmp_path / "yourapp.py").write_text(readme_block("yourapp.py"))
    (tmp_path / "catalog.toml").write_text(readme_block("catalog.toml"))
    (tmp_path / "usage.csv").write_text("acme,mau,10\n")
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    _shell(readme_block("setup"), tmp_path, env)
    result = subprocess.run(
        ["flask", "--app", "yourapp", "subscriptions", "usage", "import", "usage.csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "line 1: No account has the id 'acme'." in result.stderr
    assert "Traceback" not in result.stderr


def test_the_wheel_carries_compiled_japanese_and_korean_catalogs_R_I18N_1(venv: Path) -> None:
    """The .mo files are built by the packaging (setup.py), never committed: the installed
    wheel must have them, and they must say what the .po files say."""
    script = (
        "import flask_subscriptions.i18n as i18n\n"
        "from babel.support import Translations\n"
        "for lang in ('ja', 'ko'):\n"
        "    mo = i18n.TRANSLATIONS / lang / 'LC_MESSAGES' / 'flask_subscriptions.mo'\n"
        "    assert mo.is_file(), mo\n"
        "    t = Translations.load(str(i18n.TRANSLATIONS), [lang], i18n.DOMAIN)\n"
        "    print(t.gettext('License Management'))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ライセンス管理", "라이선스", "관리"]
