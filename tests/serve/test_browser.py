"""The page in headless Chromium (Debian's ``chromium``) driven by Playwright, against the real
server on the small generated library: the map renders, search works, neighbours show, a clip
query answers. A screenshot is saved (``SOUNDALIKE_SCREENSHOT_DIR``, else the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SOUNDALIKE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _need_chromium() -> None:
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        msg = "browser test needs " + " and ".join(missing)
        if os.environ.get("SOUNDALIKE_CI") == "1":
            pytest.fail(msg + " (SOUNDALIKE_CI=1: CI must install it)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Skip (fail under SOUNDALIKE_CI=1) before the library is built when Chromium is absent."""
    _need_chromium()
    return CHROMIUM


@pytest.mark.browser
def test_page_map_search_neighbours_query(chromium, serve_library, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from soundalike.serve import Settings, create_app

    from conftest import ServerThread  # tests/serve/conftest.py (rootdir-relative import)

    shots = Path(os.environ.get("SOUNDALIKE_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with ServerThread(create_app(Settings(db=serve_library["db"]))) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "/")
            expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=60_000)
            # The map (a canvas): one dot per artist, coloured by genre, with a legend.
            expect(page.locator("#map")).to_have_attribute("data-points", "4")
            assert page.evaluate("new Set(window.soundalikeMap.colour).size") == 3  # three genres
            expect(page.locator("#legend span")).to_have_count(3)
            # Hover shows the tooltip.
            aid = page.evaluate("window.soundalikeMap.ids[0]")
            pos = page.evaluate(f"window.soundalikeMap.clientPosOf({aid})")
            page.mouse.move(pos["x"], pos["y"])
            expect(page.locator("#tooltip")).to_be_visible()
            # Search narrows the list; clicking a hit shows its neighbours with bars and scores.
            page.fill("#search", "tones")
            hits = page.locator("#results li.artist-hit")
            expect(hits).to_have_count(2)
            page.locator("#results li.artist-hit", has_text="Low Tones").click()
            expect(page.locator("#neighbours-title")).to_have_text("Neighbours of Low Tones")
            expect(page.locator("#neighbours li.nb")).to_have_count(3)
            expect(page.locator("#neighbours li.nb .bar").first).to_be_visible()
            fill = page.locator("#neighbours li.nb .bar .fill").first.bounding_box()
            assert fill is not None and fill["width"] > 10  # the per-signal bar is drawn
            assert page.evaluate("window.soundalikeMap.names[window.soundalikeMap.selected]") == "Low Tones"
            # Zoom with the wheel changes the view.
            before = page.evaluate("window.soundalikeMap.view.k")
            page.locator("#map").hover()
            page.mouse.wheel(0, -300)
            page.wait_for_function(f"window.soundalikeMap.view.k !== {before}")
            # Upload a clip: its neighbours appear.
            page.set_input_files("#clip", str(serve_library["clip"]))
            page.click("#query-form button")
            expect(page.locator("#query-artists li.nb").first).to_contain_text("Low Tones", timeout=120_000)
            page.click("#zoom-reset")
            page.screenshot(path=str(shots / "serve_page.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert (shots / "serve_page.png").stat().st_size > 10_000
