"""End to end in a real browser: Playwright for Python driving Debian's Chromium.

Screenshots are saved in test-artifacts/ for people to look at.
"""

import pytest

from browsing import ARTIFACTS, chromium, click_field_centre, run_example


@pytest.fixture(scope="module")
def page(served_app):
    with chromium() as browser:
        pg = browser.new_page(viewport={"width": 1500, "height": 1100})
        pg.set_default_timeout(60_000)
        pg.goto(served_app)
        yield pg


def _plot_text(page, elem_id: str) -> str:
    return page.eval_on_selector(f"#{elem_id} .js-plotly-plot", "e => JSON.stringify(e.data.map(d => [d.text, d.name]))")


def test_explore_run_switch_and_diagnose(page):
    page.wait_for_selector("#arch-plot .js-plotly-plot .main-svg")
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('parameters')")
    page.screenshot(path=str(ARTIFACTS / "1-architecture.png"), full_page=True)

    # Pick an example image and run it: every level's heatmap must render.
    run_example(page)
    page.wait_for_selector("#heat-plot .js-plotly-plot .main-svg")
    page.wait_for_function(
        "() => document.querySelectorAll('#heat-plot .heatmaplayer image').length >= 9", timeout=120_000
    )
    assert page.eval_on_selector("#heat-plot .js-plotly-plot", "e => e._fullData.filter(d => d.type === 'heatmap').length") == 9
    assert "seeded random weights" in page.inner_text("#run-status")
    page.screenshot(path=str(ARTIFACTS / "2-heatmaps.png"), full_page=True)

    # Switch the skip option: the residual block view changes to zero-padded channels.
    page.get_by_role("tab", name="Residual blocks").click()
    page.wait_for_selector("#block-plot .js-plotly-plot .main-svg")
    before = _plot_text(page, "block-plot")
    page.locator("#skip").get_by_text("A — zero-pad").click()
    page.wait_for_function(
        "(before) => { const e = document.querySelector('#block-plot .js-plotly-plot');"
        " return e && JSON.stringify(e.data.map(d => [d.text, d.name])) !== before; }", arg=before)
    page.screenshot(path=str(ARTIFACTS / "3-skip-option-A.png"), full_page=True)

    # Trigger a mismatch: input 225 with the ×2 policy. The explanation and fixes appear.
    page.get_by_role("tab", name="Architecture").click()
    for elem in ("#input-height", "#input-width"):
        box = page.locator(f"{elem} input[type=number]")
        box.fill("225")
        box.press("Enter")
    page.wait_for_function("() => document.querySelector('#mismatch').innerText.includes('FPN merge into P4')"
                           " && document.querySelector('#summary').innerText.includes('225×225 input')")
    page.wait_for_selector("#arch-plot .js-plotly-plot .main-svg")
    page.wait_for_timeout(500)  # let the last re-render settle before the screenshot
    text = page.inner_text("#mismatch")
    assert "15" in text and "16" in text and "Why" in text
    assert page.is_visible("#fix-0")
    page.screenshot(path=str(ARTIFACTS / "4-mismatch.png"), full_page=True)

    page.click("#fix-0")
    page.wait_for_function("() => document.querySelector('#mismatch').innerText.includes('Every addition holds')")
    assert page.input_value("#input-height input[type=number]") == "224"
    page.screenshot(path=str(ARTIFACTS / "5-fixed.png"), full_page=True)


def test_link_dark_theme_fields_and_compare(page, served_app):
    """A link opens its design (a bad parameter gets a note); dark pages get dark figures; a click on
    the input shows the fields; pinning A and changing B compares them."""
    # The module's browser page: a second Playwright in one module would clash with the first.
    page.set_default_timeout(120_000)
    page.goto(served_app + "?__theme=dark&input_height=225&input_width=225&skip=A&widths=64,128,256,oops&colour=red")
    page.wait_for_function("() => { const e = document.querySelector('#summary');"
                           " return e && e.innerText.includes('225×225 input'); }")
    note = page.inner_text("#link-note")
    assert "widths" in note and "colour" in note
    assert page.input_value("#width-3 input") == "512"  # the bad value kept the reference value
    page.wait_for_selector("#arch-plot .js-plotly-plot .main-svg")
    paper = page.eval_on_selector("#arch-plot .js-plotly-plot", "e => e.layout.paper_bgcolor")
    assert paper not in ("white", "#ffffff", "#fff")  # the dark theme's card
    assert page.eval_on_selector("#arch-plot .js-plotly-plot", "e => e.layout.meta.filename").startswith("resfpn-")
    page.screenshot(path=str(ARTIFACTS / "6-link-dark.png"), full_page=True)

    # Back to a runnable size; run an example, then click a point of the input.
    page.goto(served_app + "?input_height=128&input_width=128")
    page.wait_for_function("() => { const e = document.querySelector('#summary');"
                           " return e && e.innerText.includes('128×128 input'); }")
    run_example(page)
    click_field_centre(page)
    page.wait_for_function("() => document.querySelector('#fields-status').innerText.includes('point (x=')")
    page.wait_for_selector("#fields-plot .js-plotly-plot .main-svg")
    title = page.eval_on_selector("#fields-plot .js-plotly-plot", "e => e.layout.title.text")
    assert "Receptive fields" in title
    page.screenshot(path=str(ARTIFACTS / "7-receptive-fields.png"), full_page=True)

    page.get_by_role("tab", name="Compare", exact=True).click()
    page.click("#pin")
    page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('pinned')")
    page.locator("#skip").get_by_text("A — zero-pad").click()
    page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('skip')")
    page.wait_for_selector("#compare-arch-b .js-plotly-plot .main-svg")
    page.click("#run-both")
    page.wait_for_selector("#compare-heat .js-plotly-plot .main-svg")
    page.screenshot(path=str(ARTIFACTS / "8-compare.png"), full_page=True)
