"""The page holds up in a real browser (issue 20): tabs, figures that fit, a phone's first screen,
errors that stay where they happened, and the Share tab's round trips.

One Chromium for the module, one served app for the session; each test opens the pages it needs.
Screenshots go to test-artifacts/.
"""

import collections
import json
import urllib.request

import pytest

from browsing import ARTIFACTS, choose_example, chromium, click_field_centre, run_example

WIDTHS = (390, 768, 1400)
SCREENS = [(w, theme) for w in WIDTHS for theme in ("light", "dark")]  # "Done when": three widths, light and dark
# The tab bar, in order: the one list to extend when the page gets a tab.
TABS = ["Architecture", "Residual blocks", "Levels", "Space", "Feature heatmaps", "Compare", "Share", "Report"]
# Orders a user may click them in: Compare → Share → Compare broke the bar before.
VISITS = [["Compare", "Share", "Compare"], ["Share", "Compare", "Report", "Share"], TABS[::-1], TABS]


@pytest.fixture(scope="module")
def browser(served_app):
    with chromium() as b:
        yield b


def open_page(browser, url: str, width: int, height: int = 900, dark: bool = False, **context):
    """A page of ``url`` at ``width`` px; below 700 px a phone (touch, 844 px tall)."""
    if width < 700:
        height, context = 844, dict(is_mobile=True, has_touch=True) | context
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


@pytest.mark.parametrize("width, theme", SCREENS)
def test_every_tab_once_in_any_order(browser, served_app, width, theme):
    page = open_page(browser, served_app, width, dark=theme == "dark")
    assert page.evaluate(BAR_JS) == TABS
    for order in VISITS:
        for name in order:
            tab = page.get_by_role("tab", name=name, exact=True)
            assert tab.count() == 1, f"{name}: {page.evaluate(BAR_JS)}"
            tab.click()
            assert page.evaluate(BAR_JS) == TABS, f"after {name} at {width} px"
            assert page.get_attribute("#views [role=tab][aria-selected=true]", "data-tab-id") is not None
    page.screenshot(path=str(ARTIFACTS / f"tabs-{width}-{theme}.png"))
    page.context.close()


def _goes_quiet(page, seconds: float = 3.0) -> None:
    """Once what the last action started has finished, the page sends nothing more while it idles
    (evaluated in every 250 ms, as a visible tab keeps rendering): each event that follows a design
    change runs once. A Slider's own .change once re-fired its event with the value unchanged, about
    18 times a second, for as long as the page was open."""
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=status-tracker]')]"
                           ".every(e => e.className.includes('hide'))")
    page.wait_for_timeout(500)  # a follow-up chained after the last to finish
    url = page.url.split("?")[0]
    config = json.loads(urllib.request.urlopen(url + "config").read())
    names = {d.get("id", i): d.get("api_name") for i, d in enumerate(config["dependencies"])}
    sent = []

    def on_request(request):
        if "queue/join" in request.url and request.post_data:
            sent.append(names.get(json.loads(request.post_data).get("fn_index")))

    page.on("request", on_request)
    try:
        for _ in range(int(seconds / 0.25)):
            page.evaluate("() => document.body.getBoundingClientRect().height")
            page.wait_for_timeout(250)
    finally:
        page.remove_listener("request", on_request)
    assert sent == [], f"the idle page sent {len(sent)} events in {seconds} s: {collections.Counter(sent)}"


def _log(served_app) -> str:
    from conftest import SERVED_LOG

    return SERVED_LOG.read_text()


@pytest.mark.parametrize("width, theme", SCREENS)
def test_errors_stay_where_they_happened(browser, served_app, width, theme):
    """An invalid design says why under the control and in the summary; a refused run and a failed
    download leave their message, with the remedy, where the heatmaps would be; each refusal is one
    line in the log, without a traceback; the page goes quiet after each."""
    tracebacks = _log(served_app).count("Traceback")
    p7_refused = "refused: Configuration refused: p7=True needs a P6"
    p7_lines = _log(served_app).count(p7_refused)
    tag = f"{width}-{theme}"
    page = open_page(browser, served_app + "?p6=maxpool", width, dark=theme == "dark")
    _unfold(page, "p6", "FPN")
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
    page.screenshot(path=str(ARTIFACTS / f"error-p7-without-p6-{tag}.png"))
    page.locator("#p7 input").uncheck()
    page.wait_for_function("() => !document.querySelector('#p7').innerText.includes('⚠')"
                           " && document.querySelector('#summary').innerText.includes('parameters')")
    _goes_quiet(page)
    # One action, one line: the views that follow the design (weights, Compare, Space) and the
    # design check re-read it quietly; ticking P7 was five lines before.
    assert _log(served_app).count(p7_refused) == p7_lines + 1

    # A published source offline with an empty cache: the download fails, and says how to get it.
    choose_example(page)
    page.click("#weights input")
    page.locator("[role=option]", has_text="ImageNet").first.click()
    for elem_id in ("preset", "weights", "p6"):  # a long choice ends in "…" before the arrow, not under it
        if elem_id == "p6":
            _unfold(page, elem_id, "FPN")
        box = page.evaluate(DROPDOWN_JS, elem_id)
        assert box["text_right"] <= box["arrow_left"] + 1 and box["ellipsis"], f"{elem_id}: {box}"
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#run-status').innerText.includes('not available')")
    status = page.inner_text("#run-status")
    assert "python -m resfpn download" in status, status  # the remedy
    _wait_plot_text(page, "heat-plot", "not available")
    assert page.locator("#heat-plot .error, #run-status .error").count() == 0
    page.screenshot(path=str(ARTIFACTS / f"error-download-{tag}.png"), full_page=True)

    # A run above the memory budget: refused before any work, with what to change.
    page.goto(served_app + "?input_height=2048&input_width=2048&widths=2048,2048,2048,2048"
              + ("&__theme=dark" if theme == "dark" else ""))
    page.wait_for_function("() => { const e = document.querySelector('#summary'); return e && e.innerText.includes('2048×2048'); }")
    run_example(page)
    page.wait_for_function("() => document.querySelector('#run-status').innerText.includes('Run refused')")
    assert "use a smaller input" in page.inner_text("#run-status")
    page.context.close()
    log = _log(served_app)
    assert "refused: Configuration refused: p7=True needs a P6" in log
    assert "refused: Run refused: this run would need" in log
    assert log.count("Traceback") == tracebacks


DROPDOWN_JS = """(id) => { const root = document.querySelector(`#${id}`), input = root.querySelector('input');
  const st = getComputedStyle(input), arrow = root.querySelector('.icon-wrap').getBoundingClientRect();
  return {text_right: input.getBoundingClientRect().right - parseFloat(st.paddingRight), arrow_left: arrow.left,
          ellipsis: input.scrollWidth <= input.clientWidth || st.textOverflow === 'ellipsis'}; }"""


def _wait_plot_text(page, elem_id: str, needle: str) -> None:
    page.wait_for_function("([id, needle]) => [...document.querySelectorAll(`#${id} .js-plotly-plot text`)]"
                           ".map(t => t.textContent).join(' ').includes(needle)", arg=[elem_id, needle])


# Every visible text element of a figure's SVG: none may leave the figure or overlap another.
FIT_JS = """(id) => {
  const gd = document.querySelector(`#${id} .js-plotly-plot`);
  if (!gd) return {missing: true};
  const svg = gd.querySelector('.main-svg');
  const paper = svg.getBoundingClientRect();
  const seen = [];
  for (const t of gd.querySelectorAll('svg.main-svg text, svg.main-svg ~ svg text')) {
    if (!t.textContent.trim()) continue;
    if (t.closest('.hoverlayer') || t.closest('.modebar')) continue;
    const st = getComputedStyle(t);
    if (st.display === 'none' || st.visibility === 'hidden' || st.opacity === '0') continue;
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const size = parseFloat(st.fontSize);
    seen.push({text: t.textContent.slice(0, 40), l: r.left, r: r.right, t: r.top, b: r.bottom, size});
  }
  const out = seen.filter(s => s.l < paper.left - 1 || s.r > paper.right + 1 || s.t < paper.top - 1 || s.b > paper.bottom + 1)
                  .map(s => s.text);
  const overlaps = [];
  for (let i = 0; i < seen.length; i++) for (let j = i + 1; j < seen.length; j++) {
    const a = seen[i], b = seen[j];
    const w = Math.min(a.r, b.r) - Math.max(a.l, b.l), h = Math.min(a.b, b.b) - Math.max(a.t, b.t);
    if (w > 1.5 && h > 1.5) overlaps.push(a.text + ' ✕ ' + b.text);
  }
  const tiny = seen.filter(s => s.size < 10).map(s => s.text + '@' + s.size);
  const modebar = gd.querySelector('.modebar');
  return {n: seen.length, out, overlaps, tiny: tiny.slice(0, 5), width: paper.width, height: paper.height,
          container: document.querySelector(`#${id}`).getBoundingClientRect().width};
}"""


def _fits(page, elem_id: str) -> None:
    found = page.evaluate(FIT_JS, elem_id)
    assert found["n"] > 3, f"{elem_id}: no text drawn"
    assert found["out"] == [] and found["overlaps"] == [] and found["tiny"] == [], f"{elem_id}: {found}"
    dark = page.evaluate("() => document.body.classList.contains('dark')")
    paper = page.eval_on_selector(f"#{elem_id} .js-plotly-plot", "gd => gd._fullLayout.paper_bgcolor")
    rgb = [int(v) for v in paper[paper.index("(") + 1:paper.index(")")].split(",")[:3]] if "(" in paper else \
        [int(paper[i:i + 2], 16) for i in (1, 3, 5)]
    assert (sum(rgb) / 3 < 100) == dark, f"{elem_id}: paper {paper} on a {'dark' if dark else 'light'} page"


def _unfold(page, elem_id: str, group: str) -> None:
    """Unfold the controls' accordion ``group`` where ``#elem_id`` is folded away (a phone)."""
    if not page.locator(f"#{elem_id}").is_visible():
        page.locator("#controls .label-wrap").filter(has_text=group).click()
        page.locator(f"#{elem_id}").wait_for(state="visible")


def _no_sideways_scroll(page, elem_id: str) -> None:
    """On a phone the map is laid out for the screen (resfpn.figures: compact): it fits its box."""
    size = page.evaluate("(id) => { const box = document.querySelector(`#${id}`);"
                         " const gd = box.querySelector('.js-plotly-plot');"
                         " return [box.scrollWidth, box.clientWidth, gd.layout.meta.min_width]; }", elem_id)
    assert size[0] <= size[1] + 1, f"{elem_id}: scrolls sideways (content, box, min_width px): {size}"


def _choose(page, elem_id: str, label: str) -> None:
    """Click a radio choice, unfolding its accordion first where it is folded (a phone)."""
    _unfold(page, elem_id, "Backbone")
    page.locator(f"#{elem_id}").get_by_text(label).click()


def _phone_first_screen(page) -> None:
    """At 390×844 the summary and the current view are on the first screen; the controls come
    after them, folded."""
    tops = page.evaluate("() => Object.fromEntries(['#summary', '#views', '#arch-plot', '#controls'].map("
                         "s => [s, document.querySelector(s).getBoundingClientRect().top]))")
    assert tops["#summary"] < 844 and tops["#views"] < 844 and tops["#arch-plot"] < 700, tops
    assert tops["#controls"] > tops["#arch-plot"]
    page.wait_for_function("() => document.querySelectorAll('#controls .label-wrap.open').length === 0")
    page.screenshot(path=str(ARTIFACTS / "phone-390-first-screen.png"))


@pytest.mark.parametrize("width, theme", SCREENS)
def test_figures_fit_their_text(browser, served_app, width, theme):
    """Each figure at 390 (a phone: 390×844), 768 and 1400 px, light and dark: no text leaves its plot
    or overlaps other text, none is under 10 px, and the figure is drawn in the page's theme; a phone
    sees the design first and two heatmaps per row."""
    dark, phone = theme == "dark", width < 700
    tag = f"{width}-{theme}"
    page = open_page(browser, served_app + "?input_height=128&input_width=128", width, dark=dark)
    if phone:
        _phone_first_screen(page)
    for tab, elem_id in [("Architecture", "arch-plot"), ("Residual blocks", "block-plot"), ("Levels", "bars-plot")]:
        page.get_by_role("tab", name=tab, exact=True).click()
        page.wait_for_selector(f"#{elem_id} .js-plotly-plot .main-svg text")
        page.wait_for_timeout(300)
        _fits(page, elem_id)
        page.locator(f"#{elem_id}").screenshot(path=str(ARTIFACTS / f"fit-{elem_id}-{tag}.png"))
    if phone:  # the maps are laid out for the screen, not scrolled
        for tab, elem_id in [("Architecture", "arch-plot"), ("Residual blocks", "block-plot"), ("Levels", "bars-plot")]:
            page.get_by_role("tab", name=tab, exact=True).click()
            _no_sideways_scroll(page, elem_id)
    # The design space: its map, cost curves and sweep (the sweep's labels placed for its measured width).
    page.get_by_role("tab", name="Space", exact=True).click()
    page.wait_for_function("() => { const t = document.querySelector('#space-sweep .js-plotly-plot');"
                           " return !!t && !!t.layout && t.layout.yaxis.title.text === 'MACs at 128×128'; }")
    for elem_id in ("space-sizes", "space-costs", "space-sweep"):
        page.wait_for_selector(f"#{elem_id} .js-plotly-plot .main-svg text")
        page.wait_for_timeout(300)
        page.locator(f"#{elem_id}").screenshot(path=str(ARTIFACTS / f"fit-{elem_id}-{tag}.png"))
        _fits(page, elem_id)
    run_example(page)
    page.wait_for_function("() => document.querySelectorAll('#heat-plot .heatmaplayer image').length >= 9")
    page.wait_for_timeout(300)
    _fits(page, "heat-plot")
    page.locator("#heat-plot").screenshot(path=str(ARTIFACTS / f"fit-heat-plot-{tag}.png"))
    if phone:
        columns = page.eval_on_selector("#heat-plot .js-plotly-plot", """gd => new Set(gd._fullData
            .filter(d => d.type === 'heatmap').map(d => gd._fullLayout[d.xaxis.replace('x', 'xaxis')].domain)
            .map(([a, b]) => Math.round((a + b) * 10))).size""")  # column centres
        assert columns == 2
        assert page.eval_on_selector("#heat-plot .js-plotly-plot", "gd => gd.getBoundingClientRect().width") <= 390
    page.get_by_role("tab", name="Compare", exact=True).click()
    page.click("#pin")
    page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('pinned')")
    _choose(page, "skip", "A — zero-pad")
    page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('skip')")
    page.wait_for_selector("#compare-arch-b .js-plotly-plot .main-svg text")
    page.wait_for_timeout(300)
    for elem_id in ("compare-arch-a", "compare-arch-b"):
        _fits(page, elem_id)
        if phone:
            _no_sideways_scroll(page, elem_id)
    _goes_quiet(page)
    page.screenshot(path=str(ARTIFACTS / f"fit-compare-{tag}.png"), full_page=True)
    page.context.close()


def _file_text(page, elem_id: str) -> tuple[str, str]:
    """(name, text) of the file a gr.File offers for download."""
    link = page.locator(f"#{elem_id} a[download]").first
    link.wait_for()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    return link.get_attribute("download"), response.text()


def test_share_compare_and_fields_round_trips(browser, served_app, tmp_path):
    """Share: a copied link opens the same design in a fresh page; the JSON file loads back; the
    exported code is Python. Compare: swap and clear. Receptive fields: choosing a level redraws."""
    page = open_page(browser, served_app + "?input_height=160&input_width=192", 1400)
    page.locator("#skip").get_by_text("A — zero-pad").click()
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('160×192 input')")
    page.get_by_role("tab", name="Share", exact=True).click()
    page.click("#copy-link")
    page.wait_for_function("() => document.querySelector('#link textarea, #link input').value.includes('skip=A')")
    link = page.input_value("#link textarea, #link input")
    assert "input_height=160" in link and "input_width=192" in link

    fresh = open_page(browser, link, 1400)
    assert fresh.input_value("#input-height input[type=number]") == "160"
    assert fresh.input_value("#input-width input[type=number]") == "192"
    assert fresh.locator("#skip input[value=A]").is_checked()
    fresh.context.close()

    page.click("#download-design")
    name, text = _file_text(page, "share-file")
    design = json.loads(text)
    assert name.endswith(".json") and design["input_height"] == 160 and design["skip"] == "A"
    json_path = tmp_path / name
    json_path.write_text(text)
    page.click("#download-code")
    page.wait_for_function("() => [...document.querySelectorAll('#share-file a[download]')]"
                           ".some(a => a.getAttribute('download').endsWith('.py'))")
    name, code = _file_text(page, "share-file")
    compile(code, name, "exec")  # a Python file
    assert "import torch" in code

    loader = open_page(browser, served_app, 1400)  # the reference design, then the file
    loader.get_by_role("tab", name="Share", exact=True).click()
    loader.set_input_files("#open-design input[type=file]", str(json_path))
    loader.wait_for_function("() => document.querySelector('#summary').innerText.includes('160×192 input')")
    assert loader.locator("#skip input[value=A]").is_checked()
    assert "Opened" in loader.inner_text("#share-note")
    loader.context.close()

    # Compare: pin (skip A), change B to skip B, swap, clear.
    page.get_by_role("tab", name="Compare", exact=True).click()
    page.click("#pin")
    page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('skip A')")
    page.locator("#skip").get_by_text("B — projection").click()
    page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('A → B')")
    page.click("#swap")
    page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('skip B')")
    assert page.locator("#skip input[value=A]").is_checked()  # the controls took A's design
    page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('B → A')")
    page.click("#clear-pin")
    page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('No design pinned')")
    page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('Pin the current design')")

    # Receptive fields: run, click a point, then choose another level.
    run_example(page)
    click_field_centre(page)
    page.wait_for_function("() => document.querySelector('#fields-status').innerText.includes('level P3')")
    page.locator("#fields-level").get_by_text("C4", exact=True).click()
    page.wait_for_function("() => document.querySelector('#fields-status').innerText.includes('level C4')")
    page.wait_for_function("() => (document.querySelector('#fields-plot .js-plotly-plot').layout.title.text || '')"
                           ".includes('Receptive fields')")
    _fits(page, "fields-plot")
    page.screenshot(path=str(ARTIFACTS / "share-compare-fields.png"), full_page=True)
    page.context.close()
