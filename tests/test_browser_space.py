"""The Space tab in a real browser: the map renders, hovering shows sizes, a click applies the size
(and a click on the sweep applies a design). Screenshots at 1400 and 390 px, light and dark."""

import time

import pytest

from browsing import ARTIFACTS, chromium, sync_api

MAP = "#space-sizes .draglayer .x3y3 .nsewdrag"


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _open_space(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(url)
    _select_space(page)
    return page


def _select_space(page) -> None:
    page.wait_for_function("() => { const e = document.querySelector('#summary'); return e && e.innerText.includes('input'); }")
    tab = page.get_by_role("tab", name="Space")
    if tab.count() and tab.first.is_visible():
        tab.first.click()
    else:  # a narrow page keeps some tabs in the tab bar's overflow menu
        page.click("button[aria-label='More tabs']")
        page.locator("button:not([tabindex='-1'])", has_text="Space").last.click()
    for elem in ("space-sizes", "space-costs", "space-sweep"):
        page.wait_for_selector(f"#{elem} .js-plotly-plot .main-svg")


def _drawn_for(page, h: int, w: int) -> None:
    """Wait until the tab shows the design at h×w: the map's title and the sweep's MACs axis name the
    size, and both come from one event (a design is drawn once, however many controls it set)."""
    page.wait_for_function("([h, w]) => { const s = document.querySelector('#space-sizes .js-plotly-plot'),"
                           " t = document.querySelector('#space-sweep .js-plotly-plot');"
                           " return !!s && !!t && s.layout.annotations.some(a => a.text.includes(`near ${h}×${w}`))"
                           " && t.layout.yaxis.title.text === `MACs at ${h}×${w}`; }", arg=[h, w])


def _hover_text(page, fx: float, fy: float) -> str:
    drag = page.locator(MAP)
    drag.scroll_into_view_if_needed()
    time.sleep(1)  # let the scroll settle before reading the box
    box = drag.bounding_box()
    page.mouse.move(box["x"] + box["width"] * (fx - 0.02), box["y"] + box["height"] * (fy - 0.02))
    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=5)
    page.wait_for_selector("#space-sizes .hoverlayer .hovertext")
    return page.eval_on_selector("#space-sizes .hoverlayer .hovertext", "e => e.textContent")


def test_map_renders_hover_shows_sizes_click_applies(browser, served_app):
    page = _open_space(browser, served_app + "?input_height=225&input_width=224", 1400)
    names = page.eval_on_selector("#space-sizes .js-plotly-plot", "e => e.data.map(d => d.name)")
    assert names[:3] == ["height-strip", "width-strip", "size-map"]
    assert "×2: 29–32 (mod 32)" in page.eval_on_selector("#space-sizes .js-plotly-plot", "e => e.layout.title.text")
    _drawn_for(page, 225, 224)
    text = _hover_text(page, 0.3, 0.3)  # away from the current size's × at the centre
    assert "height: C2" in text and "width: C2" in text or "fails ✗ at FPN merge" in text, text
    page.screenshot(path=str(ARTIFACTS / "space-1400-light-hover.png"))
    hovered = text.split(" ")[0]  # "218×214"
    h, w = (int(v) for v in hovered.split("×"))
    page.mouse.down()
    page.mouse.up()
    try:
        page.wait_for_function(f"() => document.querySelector('#summary').innerText.includes('{h}×{w} input')",
                               timeout=30_000)
    except sync_api.TimeoutError:
        sent = page.evaluate("() => [window.__resfpnSpaceClicks, document.querySelector('#space-pick textarea, "
                             "#space-pick input').value, document.querySelector('#summary').innerText.slice(0, 40)]")
        pytest.fail(f"the click on {h}×{w} was not applied; click handler, pick box, summary: {sent}")
    assert page.input_value("#input-height input[type=number]") == str(h)
    assert page.input_value("#input-width input[type=number]") == str(w)
    # The click's own event redraws the tab around the new size (the map's title names it).
    _drawn_for(page, h, w)
    page.wait_for_function("() => !document.querySelector('#space-costs .pending, #space-sweep .pending')")
    page.screenshot(path=str(ARTIFACTS / "space-1400-light.png"), full_page=True)

    # A click on a sweep point applies that design (at the current size).
    page.locator("#space-sweep .js-plotly-plot").scroll_into_view_if_needed()
    time.sleep(1)
    x, y = page.evaluate("""() => {
        const gd = document.querySelector('#space-sweep .js-plotly-plot');
        const d = gd._fullData[1], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        // the bottleneck design with the most parameters: top right, clear of the crowd
        let i = -1;
        d.x.forEach((v, k) => { if (d.marker.symbol[k] === 'diamond' && (i < 0 || v > d.x[i])) i = k; });
        const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [r.left + xa.l2p(Math.log10(d.x[i])), r.top + ya.l2p(Math.log10(d.y[i]))];
    }""")
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('#block input[value=bottleneck]').checked")
    # ... and its own event redraws the sweep around it: the current design (the largest mark) is a ◆.
    page.wait_for_function("""() => { const d = document.querySelector('#space-sweep .js-plotly-plot')._fullData[1];
        const k = d.marker.size.indexOf(14); return k >= 0 && d.marker.symbol[k] === 'diamond'; }""")

    # Latency: a few sizes timed through the served path, then fitted (the cost figure says so).
    page.goto(served_app)  # the reference design
    _select_space(page)
    page.click("#space-measure")
    page.wait_for_function("() => { const gd = document.querySelector('#space-costs .js-plotly-plot');"
                           " return gd && gd.layout.title.text.includes('fitted to 4 runs'); }", timeout=180_000)
    page.locator("#space-costs").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "space-1400-light-latency.png"))
    page.close()


@pytest.mark.parametrize("width, theme", [(1400, "dark"), (390, "light"), (390, "dark")])
def test_space_screenshots(browser, served_app, width, theme):
    page = _open_space(browser, served_app + f"?__theme={theme}", width)
    paper = page.eval_on_selector("#space-sweep .js-plotly-plot", "e => e._fullLayout.paper_bgcolor")
    assert (paper in ("white", "#ffffff", "#fff")) == (theme == "light")
    page.screenshot(path=str(ARTIFACTS / f"space-{width}-{theme}.png"), full_page=True)
    page.close()
