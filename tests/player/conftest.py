"""A small real library for the player tests, built once per session from bundled demo clips.

Six demo artists × three clips (the first 10 s of each, to keep analysis fast), plus one
duplicate recording (a FLAC copy of a clip, re-tagged as a "Remastered" title on another album)
and an embedded cover picture in one FLAC. Analysed with the ``descriptors`` backend (DSP, no
weights), so the tests are about plumbing, not about quality.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from player_support import API_KEY, PASSWORD, PNG, USER, free_port

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo"
ARTISTS = ("Askyel", "Johann Sebastian Bach", "Muldjord", "Obsidian Shell", "Doug Kaufman", "Mattias Westlund")
CLIP_S = 10.0


def demo_rows() -> list[dict]:
    with open(DEMO / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for artist in ARTISTS:
        out += [r for r in rows if r["artist"] == artist][:3]
    return out


def write_clip(src: Path, dst: Path, seconds: float = CLIP_S) -> np.ndarray:
    y, sr = sf.read(str(src), dtype="float32", frames=int(seconds * 22050))
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), y, sr)
    return y


@pytest.fixture(scope="session")
def player_library(tmp_path_factory) -> dict:
    """``{"db", "music", "manifest", "rows", "dup", "dup_of", "cover"}``: the analysed library."""
    from mutagen.flac import FLAC, Picture

    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    base = tmp_path_factory.mktemp("player-lib")
    music = base / "music"
    rows = []
    for r in demo_rows():
        rel = Path(r["path"]).relative_to("music").with_suffix(".flac")
        y = write_clip(DEMO / r["path"], music / rel)
        rows.append({"path": str(Path("music") / rel), "artist": r["artist"], "title": r["title"],
                     "album": f"{r['artist']} Demo", "genre": r["genre"], "track_id": r["track_id"]})
    # the same recording again: other album, "(Remastered)" title, 1 dB quieter, as 16-bit FLAC
    src = rows[0]
    y, sr = sf.read(str(base / src["path"]), dtype="float32")
    dup_rel = Path("music/best_of") / "dvaered_remastered.flac"
    (base / dup_rel).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(base / dup_rel), y * 10 ** (-1 / 20), sr, subtype="PCM_16")
    rows.append({**src, "path": str(dup_rel), "title": src["title"] + " (Remastered)", "album": "Best Of",
                 "track_id": "best_of_dvaered"})
    cover = base / rows[2]["path"]
    f = FLAC(str(cover))
    pic = Picture()
    pic.type, pic.mime, pic.data, pic.width, pic.height, pic.depth = 3, "image/png", PNG, 1, 1, 24
    f.add_picture(pic)
    f.save()
    manifest = base / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "artist", "title", "album", "genre", "track_id"])
        w.writeheader()
        w.writerows(rows)
    db = base / "library.db"
    with Store(db) as store:
        ingest(store, music, manifest=manifest)
        embed(store, [load_backend("descriptors")])
    return {"db": db, "music": music, "base": base, "manifest": manifest, "rows": rows,
            "dup": base / dup_rel, "dup_of": base / src["path"], "cover": cover}



@pytest.fixture(scope="session")
def browse_server(player_library):
    """soundalike's service (with Subsonic) under uvicorn on a free loopback port: ``(url, port)``."""
    import threading
    import time

    import uvicorn

    from soundalike.serve import Settings, create_app

    settings = Settings(db=player_library["db"], subsonic_user=USER, subsonic_password=PASSWORD, api_key=API_KEY)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", port
    server.should_exit = True
    thread.join(timeout=10)
