"""Browser tests: the real app served by uvicorn on a free loopback port, driven by Playwright.

The browser is Debian's `chromium` package (`apt-get install chromium`), not a `playwright install`
download; without it, or without the `playwright` package, every e2e test is skipped with the reason.
The app gets the PostgreSQL `session_factory` of `tests/conftest.py` (truncated per test), the fixed
test clock and a recording storage in the test's tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import FixedClock
from recordings.storage import LocalStorage
from tests.conftest import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

# Debian's binary by default; CC_E2E_CHROMIUM points elsewhere (another distribution's chromium).
CHROMIUM = Path(os.environ.get("CC_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
SCREENSHOT_DIR = Path(__file__).resolve().parent / "screenshots"
SERVER_START_TIMEOUT_S = 10.0
ACTION_TIMEOUT_MS = 10_000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the pages in headless Chromium (needs /usr/bin/chromium)")


def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the `playwright` Python package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing_browser()
    if reason is None:
        return
    if os.environ.get("CI"):
        # CI installs chromium (scripts/test): a missing browser there is a broken setup, not a skip.
        raise pytest.UsageError(f"e2e tests cannot run in CI: {reason}")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


class LiveServer:
    """uvicorn in a background thread, bound to a socket we opened, so the port is known and free."""

    def __init__(self, app: object) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="e2e-uvicorn", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        # `started` flips once the socket is serving; poll it rather than sleep a fixed time.
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def recording_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


@pytest.fixture
def live_server(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    recording_storage: LocalStorage,
) -> Iterator[str]:
    """Base URL of the app under test."""
    from api.app import create_app

    app = create_app(
        settings, session_factory=session_factory, clock=clock, recording_storage=recording_storage
    )
    server = LiveServer(app)
    server.start()
    yield server.url
    server.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread while it
# is started, and every asyncio test after it would fail with "Cannot run the event loop while another
# loop is running". Stopping it at the end of each e2e module gives the thread back.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    reason = _missing_browser()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; uncaught page errors fail the test."""
    context = browser.new_context(
        base_url=live_server,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """`screenshot(name)` saves the whole page as tests/e2e/screenshots/<name>.png."""

    def _shot(name: str) -> Path:
        SCREENSHOT_DIR.mkdir(exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


@pytest.fixture
def login_page(page: Page) -> Callable[..., None]:
    """Log in through the form as `username`; `next` is where the form sends the user afterwards."""

    def _login(username: str, *, password: str = PASSWORD, next: str = "/", expect_path: str) -> None:
        page.context.clear_cookies()
        page.goto(f"/login?next={next}")
        page.fill("#username", username)
        page.fill("#password", password)
        with page.expect_navigation():
            page.click("#login-submit")
        assert page.url.split("?")[0].endswith(expect_path), page.url

    return _login
