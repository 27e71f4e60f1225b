"""The page in real Chromium (Debian's ``chromium`` driven by Playwright) against the real server,
with every request outside the server aborted: search -> artist -> neighbours with reasons ->
play a preview, on a synthetic 10,000-artist store and on the bundled demo library; ``/docs`` and
``/redoc`` render from local assets. Screenshots go to ``SOUNDALIKE_SCREENSHOT_DIR``, else
``out/screens/`` in the repository (gitignored)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SOUNDALIKE_CHROMIUM", "/usr/bin/chromium")
SCREENS = Path(os.environ.get("SOUNDALIKE_SCREENSHOT_DIR", REPO / "out" / "screens"))


def _page_bench():
    spec = importlib.util.spec_from_file_location("soundalike_bench_page", REPO / "benchmarks" / "page.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _server_thread():
    return _page_bench().server_thread_class()


@pytest.fixture(scope="module")
def chromium() -> str:
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright Python package")
    if missing:
        msg = "browser test needs " + " and ".join(missing)
        if os.environ.get("SOUNDALIKE_CI") == "1":
            pytest.fail(msg + " (SOUNDALIKE_CI=1: CI must install it)")
        pytest.skip(msg)
    SCREENS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


class Browser:
    """One Chromium for the module; each `page()` gets a fresh context that aborts outside requests."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        bench = _page_bench()
        self._block = bench.block_outside
        self.browser = self._pw.chromium.launch(executable_path=executable, args=bench.CHROMIUM_ARGS)

    def page(self, base_url: str):
        ctx = self.browser.new_context(viewport={"width": 1500, "height": 950})
        blocked: list[str] = []
        self._block(ctx, base_url, blocked)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        ranges: list[str] = []
        page.on("request", lambda r: ranges.append(r.headers.get("range", "")) if "/audio" in r.url else None)
        return page, blocked, errors, ranges

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


@pytest.fixture(scope="module")
def browser(chromium):
    b = Browser(chromium)
    yield b
    b.close()


@pytest.fixture(scope="module")
def store_10k(tmp_path_factory) -> dict:
    return _page_bench().build_page_store(tmp_path_factory.mktemp("page10k") / "page.db", n_artists=10_000)


def _search_open_and_play(page, name: str, *, n_tracks: int, shot: str) -> list[dict]:
    """The user path: search -> click the artist -> its tracks and neighbours with reasons -> play."""
    from playwright.sync_api import expect

    page.fill("#search", name)
    hit = page.locator("#results li.artist-hit", has_text=name)
    expect(hit).to_have_count(1, timeout=30_000)
    hit.click()
    expect(page.locator("#artist-title")).to_have_text(name, timeout=60_000)
    expect(page.locator("#tracks li.track")).to_have_count(n_tracks, timeout=30_000)
    nbs = page.locator("#neighbours li.nb")
    expect(nbs.first).to_be_visible(timeout=60_000)
    reasons = page.evaluate("""() => [...document.querySelectorAll('#neighbours li.nb')].map((li) => ({
        name: li.querySelector('.name').textContent,
        reasons: [...li.querySelectorAll('ul.reasons li')].map((r) => ({kind: r.dataset.kind, text: r.textContent}))}))""")
    # The map marks the selection and draws the name of the selected artist and its neighbours.
    assert page.evaluate("window.soundalikeMap.selected !== null && window.soundalikeMap.neighbours.length > 0")
    page.locator("#tracks li.track button.play").first.click()
    page.wait_for_function("""() => { const p = document.querySelector('#player');
        return !p.paused && p.currentTime > 0 && p.readyState >= 2; }""", timeout=30_000)
    page.screenshot(path=str(SCREENS / shot), full_page=True)
    return reasons


@pytest.mark.browser
@pytest.mark.slow
def test_page_at_10k_artists_offline(browser, store_10k):
    from playwright.sync_api import expect

    from soundalike.serve import Settings, create_app

    ServerThread = _server_thread()
    with ServerThread(create_app(Settings(db=store_10k["db"], backend=store_10k["backend"]))) as srv:
        page, blocked, errors, ranges = browser.page(srv.url)
        page.goto(srv.url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=120_000)
        cv = page.locator("#map")
        expect(cv).to_have_attribute("data-points", "10000")
        # 40 genres: the palette's 11 most common, then "other" (29 genres) — no colour repeats.
        legend = page.locator("#legend span.genre")
        expect(legend).to_have_count(12)
        expect(legend.last).to_contain_text("other (29 genres)")
        labels_before = int(cv.get_attribute("data-labels"))
        assert 10 < labels_before <= 400  # labels without overlap even at 10k
        # Hover: the tooltip names the artist under the cursor.
        pos = page.evaluate("window.soundalikeMap.clientPosOf(1)")
        page.mouse.move(pos["x"], pos["y"])
        expect(page.locator("#tooltip")).to_be_visible()
        expect(page.locator("#tooltip")).to_contain_text("00000")
        # Zoom in: more, different names appear; pan moves the view.
        draws = int(cv.get_attribute("data-draws"))
        first_labels = page.evaluate("window.soundalikeMap.view.k")
        for _ in range(6):
            page.mouse.wheel(0, -400)
        page.wait_for_function(f"Number(document.querySelector('#map').dataset.draws) > {draws}")
        page.wait_for_function(f"window.soundalikeMap.view.k > {first_labels} * 3")
        assert int(cv.get_attribute("data-labels")) > 0
        page.screenshot(path=str(SCREENS / "page_10k_zoomed.png"))
        page.click("#zoom-reset")
        page.screenshot(path=str(SCREENS / "page_10k_map.png"))
        # Search -> artist -> neighbours with reasons -> preview. A long name stays whole.
        bench = _page_bench()
        long_name = bench.artist_name(97)
        assert len(long_name) > 60
        reasons = _search_open_and_play(page, long_name, n_tracks=2, shot="page_10k_artist.png")
        assert len(reasons) == 10
        for nb in reasons:
            kinds = {r["kind"] for r in nb["reasons"]}
            assert {"tempo", "key", "loudness"} <= kinds, nb
            assert any(r["text"].endswith(" BPM") or " BPM (" in r["text"] for r in nb["reasons"])
        assert any(" LU" in r["text"] for nb in reasons for r in nb["reasons"])
        assert any(r["kind"] == "tag" and "musicnn tags" in r["text"] for nb in reasons for r in nb["reasons"])
        assert any(r.startswith("bytes=") for r in ranges), ranges  # the preview is fetched with range requests
        assert not blocked, blocked  # the page asked nothing outside the server
        assert not errors, errors


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """The bundled demo library (10 s middle windows, to keep the test short): descriptors vectors
    + musicnn's real MSD taggram, filled in as for an older store."""
    from soundalike.audio import WindowPolicy
    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.analysis import fill_taggrams
    from soundalike.store import Store

    db = tmp_path_factory.mktemp("demo") / "library.db"
    policy = WindowPolicy.parse("middle:10")
    with Store(db) as store:
        ingest(store, REPO / "demo", manifest=REPO / "demo" / "manifest.csv", policy=policy)
        embed(store, [load_backend("descriptors")], policy=policy, jobs=2)
        fill_taggrams(store, jobs=2)  # takes the stored vectors' windows
    return db


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.requires_import("torch")
def test_page_on_the_demo_library_offline(browser, demo_store):
    from playwright.sync_api import expect

    from soundalike.serve import Settings, create_app

    ServerThread = _server_thread()
    with ServerThread(create_app(Settings(db=demo_store))) as srv:
        page, blocked, errors, ranges = browser.page(srv.url)
        page.goto(srv.url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=120_000)
        expect(page.locator("#map")).to_have_attribute("data-points", "10")
        reasons = _search_open_and_play(page, "Johann Sebastian Bach", n_tracks=4, shot="page_demo_artist.png")
        assert len(reasons) == 9
        texts = [r["text"] for nb in reasons for r in nb["reasons"]]
        assert any(t.endswith("(musicnn tags)") for t in texts)
        assert any("BPM" in t for t in texts) and any("LUFS" in t for t in texts)
        assert any(t.startswith("both ") and (" major" in t or " minor" in t) or "keys)" in t or "circle of fifths" in t
                   for t in texts)
        assert any(r.startswith("bytes=") for r in ranges), ranges
        assert not blocked, blocked
        assert not errors, errors


@pytest.mark.browser
def test_docs_and_redoc_render_offline(browser, tmp_path):
    from playwright.sync_api import expect

    from soundalike.serve import Settings, create_app
    from soundalike.store import Store

    db = tmp_path / "empty.db"
    Store(db).close()
    ServerThread = _server_thread()
    with ServerThread(create_app(Settings(db=db))) as srv:
        page, blocked, errors, _ = browser.page(srv.url)
        page.goto(srv.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("soundalike", timeout=60_000)
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
        assert page.locator(".swagger-ui .opblock-summary-path", has_text="/api/tracks/{track_id}/audio").count() == 1
        page.screenshot(path=str(SCREENS / "docs_swagger.png"))
        page.goto(srv.url + "/redoc")
        expect(page.locator("h1", has_text="soundalike")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("/api/artists/{artist_id}/similar").first).to_be_attached()
        page.screenshot(path=str(SCREENS / "docs_redoc.png"))
        assert not blocked, blocked


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.requires_import("torch")
def test_report_opens_with_the_verdict_offline(browser, demo_store, tmp_path):
    """The demo report in Chromium: the verdict first, the seeds' tables, the heatmap legend, reasons."""
    from playwright.sync_api import expect

    from soundalike.reports import write_reports
    from soundalike.reports.build import build_report
    from soundalike.store import Store

    with Store(demo_store, readonly=True) as store:
        rep = build_report(store, backends=["descriptors"])
    paths = write_reports(rep, tmp_path / "report")
    page, blocked, errors, _ = browser.page(paths["html"].as_uri())
    page.goto(paths["html"].as_uri())
    verdict = page.locator("#verdict")
    expect(verdict).to_be_visible()
    assert page.evaluate("document.querySelector('#verdict').getBoundingClientRect().top < "
                         "document.querySelector('h2:not(#verdict h2)').getBoundingClientRect().top")
    expect(verdict.locator("li").first).to_contain_text("raw cosine spans")
    expect(verdict).to_contain_text("Vril ↔ Sabrina Carpenter")
    expect(page.get_by_text("calibrated score (0–1)").first).to_be_attached()  # the heatmap's colour legend
    expect(page.locator("svg text title", has_text="Giovanni Pierluigi da Palestrina").first).to_be_attached()
    expect(page.locator("span.why").first).to_contain_text("BPM")  # reasons beside the neighbours
    page.screenshot(path=str(SCREENS / "report_demo.png"), full_page=True)
    assert not blocked, blocked
