"""Screenshots of the running app in headless Chromium, for README and for people to look at.

    python -m scripts.screenshots OUT_DIR [--url URL]

Without ``--url`` it starts ``python app.py`` itself (scripts/serve.py). Each shot is named after
what it shows; the script prints their paths.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from scripts import serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
EXAMPLE = serve.ROOT / "assets" / "examples" / "astronaut.jpg"


def _settle(page: Page, selector: str) -> None:
    page.wait_for_selector(selector, timeout=120_000)
    page.wait_for_timeout(800)


def shoot(url: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(120_000)

        page.goto(url + "?preset=resnet50&input_height=225&input_width=225&policy=x2&skip=A")
        page.wait_for_function("() => { const e = document.querySelector('#summary'); return e && e.innerText.includes('225×225'); }")
        _settle(page, "#arch-plot .js-plotly-plot .main-svg")
        shots.append(out / "link-resnet50-225.png")
        page.screenshot(path=str(shots[-1]), full_page=True)

        page.goto(url)
        _settle(page, "#arch-plot .js-plotly-plot .main-svg")
        page.get_by_role("tab", name="Feature heatmaps").click()
        page.set_input_files("#image input[type=file]", str(EXAMPLE))
        page.wait_for_selector("#image img")
        page.click("#run")
        page.wait_for_function("() => document.querySelectorAll('#heat-plot .heatmaplayer image').length >= 9",
                               timeout=180_000)
        page.wait_for_timeout(800)
        shots.append(out / "heatmaps.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        # Click a point of the input: the fields of every level, the effective field of the chosen one.
        page.wait_for_selector("#fields-image img")
        page.locator("#fields-image img").scroll_into_view_if_needed()
        box = page.locator("#fields-image img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.3)
        _settle(page, "#fields-plot .js-plotly-plot .main-svg")
        page.locator("#fields").scroll_into_view_if_needed()
        shots.append(out / "receptive-fields.png")
        page.screenshot(path=str(shots[-1]), full_page=True)

        # Compare: pin the reference as A, switch B to skip A, run both.
        page.get_by_role("tab", name="Compare", exact=True).click()
        page.click("#pin")
        page.wait_for_function("() => document.querySelector('#pinned-note').innerText.includes('pinned')")
        page.locator("#skip").get_by_text("A — zero-pad").click()
        page.wait_for_function("() => document.querySelector('#compare-summary').innerText.includes('skip')")
        _settle(page, "#compare-arch-b .js-plotly-plot .main-svg")
        page.click("#run-both")
        _settle(page, "#compare-heat .js-plotly-plot .main-svg")
        shots.append(out / "compare-skip-A-vs-B.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.url:
        paths = shoot(args.url.rstrip("/") + "/", args.out)
    else:
        with serve.serving(args.out / "app.log") as url:
            paths = shoot(url, args.out)
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
