"""The page holds up in a real browser (issue 20): tabs, figures that fit, a phone's first screen,
errors that stay where they happened, and the Share tab's round trips.

One Chromium for the module, one served app for the session; each test opens the pages it needs.
Screenshots go to test-artifacts/.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
WIDTHS = (390, 768, 1400)
# The tab bar, in order: the one list to extend when the page gets a tab.
TABS = ["Architecture", "Residual blocks", "Levels", "Feature heatmaps", "Compare", "Share", "Report"]
# Orders a user may click them in: Compare → Share → Compare broke the bar before.
VISITS = [["Compare", "Share", "Compare"], ["Share", "Compare", "Report", "Share"], TABS[::-1], TABS]


@pytest.fixture(scope="module")
def browser(served_app):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: scripts/install-chromium.sh should have installed it")
        pytest.skip("Chromium not installed (run scripts/install-chromium.sh)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def open_page(browser, url: str, width: int, height: int = 900, dark: bool = False, **context):
    ctx = browser.new_context(viewport={"width": width, "height": height}, **context)
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    page.goto(url + ("&" if "?" in url else "?") + "__theme=dark" if dark else url)
    page.wait_for_selector("#arch-plot .js-plotly-plot .main-svg")
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('parameters')")
    return page


BAR_JS = """() => [...document.querySelectorAll('#views [role=tablist] [role=tab]')]
    .filter(b => b.offsetParent !== null && !b.closest('[aria-hidden=true]'))
    .map(b => b.innerText.trim())"""


@pytest.mark.parametrize("width", WIDTHS)
def test_every_tab_once_in_any_order(browser, served_app, width):
    page = open_page(browser, served_app, width)
    assert page.evaluate(BAR_JS) == TABS
    for order in VISITS:
        for name in order:
            tab = page.get_by_role("tab", name=name, exact=True)
            assert tab.count() == 1, f"{name}: {page.evaluate(BAR_JS)}"
            tab.click()
            assert page.evaluate(BAR_JS) == TABS, f"after {name} at {width} px"
            assert page.get_attribute(f"#views [role=tab][aria-selected=true]", "data-tab-id") is not None
    page.screenshot(path=str(ARTIFACTS / f"tabs-{width}.png"))
    page.context.close()
