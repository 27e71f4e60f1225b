"""The page at library scale: time to first paint of the artist map and pan/zoom frame times at
10,000 artists, in headless Chromium (Debian's ``chromium``, driven by Playwright), every request
outside the server blocked.

The store is synthetic (:func:`build_page_store`): 10,000 artists x 2 tracks, 64-d vectors
around 40 genre centres (``weights_kind='random'``: nothing here says anything about quality),
plus descriptor values and musicnn-style tag probabilities so neighbours carry reasons, and one
short generated WAV behind every track (hard links) so previews play. The server is the real
``soundalike serve`` app (uvicorn in a thread, models warmed before the page loads).

Measured (medians over repeated page loads / frames):

* **first paint** — with the server warm (its models and the map layout built once, before the
  page loads; the cold first ``/api/map`` is reported apart), from navigation start to the end of the first drawing of the map with all
  points (``performance.mark("soundalike-map-drawn")``), which includes fetching ``/api/map``
  (10,000 points) and ``/api/health``; Chromium's own ``first-contentful-paint`` beside it.
* **frame** — for each wheel-zoom and drag-pan step, the time of the map's ``draw()`` (the
  JS work of one frame) and the latency from the input event to the end of that draw (which
  includes waiting for the next animation frame, up to one 16.7 ms vsync interval).

Usage::

    python benchmarks/page.py [--artists 10000] [--loads 5] [--frames 60] [--out out/bench/page]

Targets (issue 17): first paint <= 2 s, a pan/zoom frame <= 50 ms at 10,000 artists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

CHROMIUM = os.environ.get("SOUNDALIKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "sel", "da", "quin", "bro", "zel", "ny", "fa", "gus", "ha", "jo",
             "ix", "ul", "pe", "sto", "mar", "ri", "ton", "el", "vi", "dro", "na", "cle", "bo", "tre")
SR = 22050


def artist_name(i: int) -> str:
    """Pronounceable, unique (the number), some very long (full names must survive on the page)."""
    h = hashlib.sha256(f"artist-{i}".encode()).digest()
    n_words = 1 + h[0] % 3
    words = ["".join(SYLLABLES[h[1 + 3 * w + s] % len(SYLLABLES)] for s in range(2 + h[20 + w] % 2)).capitalize()
             for w in range(n_words)]
    name = " ".join(words)
    if i % 97 == 0:
        name = f"The {name} and the Extraordinarily Long-Named Orchestra of {words[0]}"
    return f"{name} {i:05d}"


def _preview_wav(path: Path) -> None:
    import soundfile as sf

    t = np.arange(int(2.0 * SR)) / SR
    y = 0.2 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)
    sf.write(str(path), y.astype(np.float32), SR)


def build_page_store(db: Path, *, n_artists: int = 10_000, tracks_per_artist: int = 2, n_genres: int = 40,
                     dim: int = 64, seed: int = 0) -> dict:
    """A synthetic store for the page: vectors, genres, descriptor values, tags, playable files.

    Returns ``{"db", "backend", "audio_dir", "n_artists", "n_tracks"}``. Building 10,000 artists
    takes a few seconds.
    """
    from soundalike.backends.descriptors import FEATURE_NAMES
    from soundalike.backends.musicnn import MSD_TAGS
    from soundalike.backends._descriptors_scores import key_circle
    from soundalike.store import Store

    rng = np.random.default_rng(seed)
    audio_dir = Path(db).parent / "page-audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    source = audio_dir / "preview.wav"
    _preview_wav(source)
    centres = rng.standard_normal((n_genres, dim)) * 2.0
    genre_tags = rng.dirichlet(np.full(len(MSD_TAGS), 0.3), size=n_genres)
    genre_tempo = rng.uniform(70, 175, n_genres)
    genre_loud = rng.uniform(-20, -7, n_genres)
    fi = {n: i for i, n in enumerate(FEATURE_NAMES)}
    models = {
        "synthetic": ("synthetic-page-" + hashlib.sha256(f"{dim}-{seed}".encode()).hexdigest()[:10], dim,
                      {"window": "middle:30", "default_layer": 0}, "random"),
        "descriptors": ("synthetic-desc-" + hashlib.sha256(str(seed).encode()).hexdigest()[:10], len(FEATURE_NAMES),
                        {"window": "middle:30", "default_layer": 0, "synthetic": True}, "none"),
        "musicnn-msd": ("synthetic-tags-" + hashlib.sha256(str(seed).encode()).hexdigest()[:10], len(MSD_TAGS),
                        {"window": "middle:30", "default_layer": 0, "output": "taggram", "synthetic": True}, "random"),
    }
    with Store(db) as store:
        for backend, (key, d, cfg, kind) in models.items():
            store.register_model(model_key=key, backend=backend, config=cfg, weights_sha256=None, weights_kind=kind, dim=d)
        with store.transaction() as tx:
            for a in range(n_artists):
                g = a % n_genres
                centre = centres[g] + rng.standard_normal(dim)
                name = artist_name(a)
                for t in range(tracks_per_artist):
                    tid = hashlib.sha256(f"page-artist{a}-track{t}".encode()).hexdigest()
                    path = audio_dir / f"{tid[:16]}.wav"
                    if not path.exists():
                        os.link(source, path)
                    store.add_track(track_id=tid, path=str(path), artist=name, title=f"Track {t + 1} of {name}",
                                    duration_s=2.0, genres=[f"genre {g:02d}"], db=tx)
                    v = (centre + 0.5 * rng.standard_normal(dim)).astype(np.float32)
                    store.put_embeddings(tx, track_id=tid, model_key=models["synthetic"][0], vectors=v[None, None, :])
                    desc = rng.standard_normal(len(FEATURE_NAMES)).astype(np.float32)
                    tonic, mode = int(rng.integers(12)), int(rng.integers(2))
                    desc[fi["key_sin"]], desc[fi["key_cos"]] = key_circle(tonic, mode)
                    desc[fi["mode"]] = mode
                    desc[fi["tempo_bpm"]] = genre_tempo[g] * rng.uniform(0.97, 1.03)
                    desc[fi["loudness_lufs"]] = genre_loud[g] + rng.normal(0, 1.5)
                    for s in ("energy", "danceability", "valence", "acousticness", "instrumentalness", "speechiness"):
                        desc[fi[s]] = rng.uniform(0, 1)
                    store.put_embeddings(tx, track_id=tid, model_key=models["descriptors"][0], vectors=desc[None, None, :])
                    tags = np.clip(genre_tags[g] * 6 + rng.uniform(0, 0.05, len(MSD_TAGS)), 0, 1).astype(np.float32)
                    store.put_embeddings(tx, track_id=tid, model_key=models["musicnn-msd"][0], vectors=tags[None, None, :])
    return {"db": Path(db), "backend": "synthetic", "audio_dir": audio_dir, "n_artists": n_artists,
            "n_tracks": n_artists * tracks_per_artist}


def server_thread_class():
    """The tests' uvicorn-in-a-thread helper (``tests/serve/conftest.py``), loaded by path."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "serve" / "conftest.py"
    spec = importlib.util.spec_from_file_location("soundalike_serve_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ServerThread


def block_outside(context, base_url: str, blocked: list[str]) -> None:
    """Abort every request that does not go to `base_url` (recorded in `blocked`)."""
    def route(r):
        if r.request.url.startswith(base_url) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)


FRAME_JS = """async ([kind, steps]) => {
  const m = window.soundalikeMap, cv = document.querySelector('#map'), r = cv.getBoundingClientRect();
  const js = [], wall = [];
  const frame = () => new Promise((res) => requestAnimationFrame(() => res()));
  await frame(); await frame();
  for (let s = 0; s < steps; s++) {
    const before = m.stats.draws, t0 = performance.now();
    const x = r.left + r.width * (0.3 + 0.4 * ((s * 7) % 10) / 10), y = r.top + r.height * (0.3 + 0.4 * ((s * 3) % 10) / 10);
    if (kind === 'zoom') {
      cv.dispatchEvent(new WheelEvent('wheel', { deltaY: (s % 8 < 4 ? -120 : 120), clientX: x, clientY: y, bubbles: true, cancelable: true }));
    } else {
      if (s === 0) cv.dispatchEvent(new MouseEvent('mousedown', { clientX: x, clientY: y, bubbles: true }));
      window.dispatchEvent(new MouseEvent('mousemove', { clientX: x + (s % 2 ? 15 : -15), clientY: y, bubbles: true }));
    }
    await frame(); await frame();
    if (m.stats.draws > before) { js.push(m.stats.lastDrawMs); wall.push(m.stats.lastDrawEnd - t0); }
  }
  if (kind === 'pan') window.dispatchEvent(new MouseEvent('mouseup', { bubbles: true }));
  return { js, wall, visible: m.stats.visible, labels: m.stats.labels };
}"""


def measure(url: str, *, loads: int, frames: int, shots: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {"first_paint_ms": [], "fcp_ms": [], "zoom": {}, "pan": {}}
    blocked: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(loads):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                block_outside(ctx, url, blocked)
                page = ctx.new_page()
                page.goto(url + "/")
                page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
                marks = page.evaluate("""() => ({
                    drawn: performance.getEntriesByName('soundalike-map-drawn')[0]?.startTime,
                    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
                    points: window.soundalikeMap.n })""")
                out["first_paint_ms"].append(marks["drawn"])
                out["fcp_ms"].append(marks["fcp"])
                out["points"] = marks["points"]
                if i == loads - 1:
                    for kind in ("zoom", "pan"):
                        out[kind] = page.evaluate(FRAME_JS, [kind, frames])
                    if shots is not None:
                        page.screenshot(path=str(shots / "page_10k_after_frames.png"))
                ctx.close()
        finally:
            browser.close()
    out["blocked_requests"] = len(blocked)
    return out


def summarise(raw: dict) -> dict:
    def med(xs):
        return round(statistics.median(xs), 1) if xs else None

    def p95(xs):
        return round(float(np.percentile(xs, 95)), 1) if xs else None

    return {
        "points": raw.get("points"),
        "first_paint_ms_median": med(raw["first_paint_ms"]), "first_paint_ms_max": round(max(raw["first_paint_ms"]), 1),
        "fcp_ms_median": med([x for x in raw["fcp_ms"] if x is not None]),
        **{f"{k}_draw_ms_median": med(raw[k]["js"]) for k in ("zoom", "pan")},
        **{f"{k}_draw_ms_p95": p95(raw[k]["js"]) for k in ("zoom", "pan")},
        **{f"{k}_input_to_drawn_ms_median": med(raw[k]["wall"]) for k in ("zoom", "pan")},
        **{f"{k}_input_to_drawn_ms_p95": p95(raw[k]["wall"]) for k in ("zoom", "pan")},
        "frames_measured": len(raw["zoom"]["js"]) + len(raw["pan"]["js"]),
        "blocked_requests": raw["blocked_requests"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artists", type=int, default=10_000)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", type=Path, default=Path("out/bench/page"))
    args = ap.parse_args(argv)
    ServerThread = server_thread_class()
    from soundalike.serve import Settings, create_app

    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "page.db"
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    info = build_page_store(db, n_artists=args.artists)
    build_s = time.perf_counter() - t0
    settings = Settings(db=db, backend=info["backend"])
    t0 = time.perf_counter()
    with ServerThread(create_app(settings)) as srv:
        startup_s = time.perf_counter() - t0
        import httpx

        t0 = time.perf_counter()  # the layout is built once per server, on the first /api/map
        httpx.get(srv.url + "/api/map", timeout=600).raise_for_status()
        cold_map_s = time.perf_counter() - t0
        cpu0 = time.process_time()
        raw = measure(srv.url, loads=args.loads, frames=args.frames, shots=args.out)
        server_cpu_s = time.process_time() - cpu0
    res = {"artists": args.artists, "tracks": info["n_tracks"], "store_build_s": round(build_s, 1),
           "server_startup_s": round(startup_s, 1), "first_api_map_s_cold": round(cold_map_s, 2), "server_process_cpu_s_during_page_runs": round(server_cpu_s, 1),
           "load_average_1m": os.getloadavg()[0], **summarise(raw),
           "chromium": CHROMIUM, "chromium_args": CHROMIUM_ARGS, "weights_kind": "random (synthetic vectors)"}
    (args.out / "page.json").write_text(json.dumps({"summary": res, "raw": raw}, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
