"""Headless Chromium for the browser tests: Debian's package driven by Playwright for Python, with the
flags this network needs (no background requests to hosts it cannot reach)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # screenshots
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def chromium() -> Iterator:
    """A launched headless browser (a module's fixture holds one: two sync Playwrights in one module
    clash). Where Chromium is missing the tests skip, except in CI, where they fail."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: scripts/install-chromium.sh should have installed it")
        pytest.skip("Chromium not installed (run scripts/install-chromium.sh)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def choose_example(page) -> None:
    """Open the heatmaps tab and load its first example photo."""
    page.get_by_role("tab", name="Feature heatmaps", exact=True).click()
    page.locator("#examples").get_by_role("button").first.click()
    page.wait_for_selector("#image img")


def run_example(page) -> None:
    """Load the first example photo and press Run (what the run shows, the caller waits for)."""
    choose_example(page)
    page.click("#run")


def click_field_centre(page) -> None:
    """After a run: click the middle of the receptive-field section's image (it loads lazily, so
    it is scrolled into view first)."""
    image = page.locator("#fields-image img")
    image.wait_for()
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
