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


def _log(served_app) -> str:
    from conftest import SERVED_LOG

    return SERVED_LOG.read_text()


def test_errors_stay_where_they_happened(browser, served_app):
    """An invalid design says why under the control and in the summary; a refused run and a failed
    download leave their message, with the remedy, where the heatmaps would be; each refusal is one
    line in the log, without a traceback."""
    tracebacks = _log(served_app).count("Traceback")
    page = open_page(browser, served_app + "?p6=maxpool", 1400)
    page.click("#p6 input")
    page.locator("[role=option]", has_text="no P6").click()
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('parameters')")
    page.locator("#p7 input").check()
    page.wait_for_function("() => document.querySelector('#p7').innerText.includes('⚠')")
    note = page.inner_text("#p7")
    assert "needs a P6" in note and "“max-pool of P5”" in note and "p7=" not in note
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('cannot be built')")
    assert page.locator("#summary .error, #arch-plot .error").count() == 0  # no bare "Error" badge
    _wait_plot_text(page, "arch-plot", "needs a P6")
    page.screenshot(path=str(ARTIFACTS / "error-p7-without-p6.png"))
    page.locator("#p7 input").uncheck()
    page.wait_for_function("() => !document.querySelector('#p7').innerText.includes('⚠')"
                           " && document.querySelector('#summary').innerText.includes('parameters')")

    # A published source offline with an empty cache: the download fails, and says how to get it.
    page.get_by_role("tab", name="Feature heatmaps", exact=True).click()
    page.locator("#examples").get_by_role("button").first.click()
    page.wait_for_selector("#image img")
    page.click("#weights input")
    page.locator("[role=option]", has_text="ImageNet").first.click()
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#run-status').innerText.includes('not available')")
    status = page.inner_text("#run-status")
    assert "python -m resfpn download" in status, status  # the remedy
    _wait_plot_text(page, "heat-plot", "not available")
    assert page.locator("#heat-plot .error, #run-status .error").count() == 0
    page.screenshot(path=str(ARTIFACTS / "error-download.png"), full_page=True)

    # A run above the memory budget: refused before any work, with what to change.
    page.goto(served_app + "?input_height=2048&input_width=2048&widths=2048,2048,2048,2048")
    page.wait_for_function("() => { const e = document.querySelector('#summary'); return e && e.innerText.includes('2048×2048'); }")
    page.get_by_role("tab", name="Feature heatmaps", exact=True).click()
    page.locator("#examples").get_by_role("button").first.click()
    page.wait_for_selector("#image img")
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#run-status').innerText.includes('Run refused')")
    assert "use a smaller input" in page.inner_text("#run-status")
    page.context.close()
    log = _log(served_app)
    assert "refused: Configuration refused: p7=True needs a P6" in log
    assert "refused: Run refused: this run would need" in log
    assert log.count("Traceback") == tracebacks


def _wait_plot_text(page, elem_id: str, needle: str) -> None:
    page.wait_for_function("([id, needle]) => [...document.querySelectorAll(`#${id} .js-plotly-plot text`)]"
                           ".map(t => t.textContent).join(' ').includes(needle)", arg=[elem_id, needle])
