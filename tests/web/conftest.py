"""The review web app against the real stack, driven by Debian's Chromium through Playwright.

The web server runs in this process (uvicorn on its own thread and event loop, bound to
127.0.0.1:0); the gateway, registry, task store, workers and fake provider are the
suite's real ones (tests/stack.py). Playwright never downloads a browser: it launches
/usr/bin/chromium (`apt-get install chromium`; `make test` installs it when missing)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet

from services.web.app import create_app
from services.web.config import Settings
from tests.jobs_harness import log_dir_for, started_workers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Set to 1 to refresh the README's screenshots in docs/screenshots/; otherwise they go to
# the test's temporary folder (taken either way, so the pages are rendered for real).
UPDATE_SCREENSHOTS = "SYNTHTASKS_UPDATE_SCREENSHOTS"


class WebServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("the web server did not start")
            time.sleep(0.02)
        return self

    def open_streams(self) -> int:
        return self.app.state.web.streams.open_streams()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


@pytest.fixture(scope="session")
def web(stack) -> Iterator[WebServer]:
    settings = Settings(
        gateway_address=stack.gateway_address,
        session_keys=Fernet.generate_key().decode(),
        metrics_port=0,
        page_size=25,
    )
    server = WebServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(stack, suite_log, request):
    with started_workers(stack, log_dir_for(suite_log, request), count=1) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (`make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() starts Chromium on a fresh temporary profile (user-data-dir) every time.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A new browser context per test: its own cookies, so each test signs in itself."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors include Content-Security-Policy violations; refused requests
    # (403, 429), which some tests cause on purpose, are not script errors.
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    opened.script_errors = errors
    yield opened
    context.close()


@pytest.fixture
def shoot(tmp_path):
    """Save a full-page screenshot of the page as NAME.png."""
    folder = SCREENSHOTS if os.environ.get(UPDATE_SCREENSHOTS) == "1" else tmp_path

    def take(page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    return take


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def new_project() -> str:
    return f"web-{uuid.uuid4().hex[:10]}"


def sign_in(page, web: WebServer, token: str, project: str = "") -> None:
    """Sign in with `token`, then open `project` on the project chooser when given."""
    page.goto(f"{web.url}/sign-in")
    page.fill("#token", token)
    page.click("button[type=submit]")
    if project:
        choose_project(page, project)


def choose_project(page, project: str) -> None:
    """On the project chooser: pick `project` from a project token's list, or type it
    (an admin may act in any project), and open it."""
    page.wait_for_url(re.compile(r"/projects$"))
    picker = page.locator("#project")
    if picker.evaluate("element => element.tagName") == "SELECT":
        picker.select_option(project)
    else:
        picker.fill(project)
    page.click("#project-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/p/{project}/texts$"))
