"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright for Python. No
browser is ever downloaded; the set-up installs Debian's package."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from corral.testbed.corral_server import CorralServer

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: Every main page is saved here (the issue asks for them), overwritten by each run.
SCREENSHOTS = REPO / "build" / "e2e"

# Chromium as root in a container: no sandbox; no background traffic (this machine's network
# is closed, and the tests must only talk to Corral).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and every asyncio test after it would then fail to start its own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is missing: run scripts/setup.sh --test"
    with tempfile.TemporaryDirectory(prefix="corral-chromium-"):
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def new_context(browser: Browser, corral: CorralServer) -> BrowserContext:
    context = browser.new_context(base_url=corral.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    return context


def log_in(page: Page, user: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def save(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def choose_kind(page: Page, select: str, value: str, container: str) -> None:
    """Pick ``value`` in a select whose change makes the server re-render the form inside
    ``container`` (htmx swaps its content), and wait for that swap: a field filled before the
    new form arrives is lost with the old one (the form's name was sent empty once)."""
    old = page.locator(f"{container} > *").first.element_handle()
    page.select_option(select, value)
    page.wait_for_function("element => !element.isConnected", arg=old, timeout=30_000)
