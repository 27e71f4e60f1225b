"""The beets plugin through beets' own command line: a real beets library (PyPI beets) built in a
temporary folder from demo clips, then `beet soundalike` and `beet similar`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_import("beets")
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def beets_env(player_library, tmp_path_factory):
    """``(env, base, items)``: BEETSDIR with the plugin enabled and a library of 6 tagged demo clips."""
    from mutagen.flac import FLAC

    base = tmp_path_factory.mktemp("beets")
    music = base / "incoming"
    items = []
    picked = [r for r in player_library["rows"] if r["album"] != "Best Of"][::3][:6]
    for i, r in enumerate(picked):
        dst = music / r["artist"] / f"{i:02d}.flac"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(player_library["base"] / r["path"], dst)
        tags = FLAC(str(dst))
        tags["artist"], tags["title"], tags["album"] = r["artist"], r["title"], r["album"]
        tags["musicbrainz_trackid"] = f"00000000-0000-4000-8000-{i:012d}"
        tags.save()
        items.append({**r, "file": dst})
    (base / "config.yaml").write_text(f"""directory: {base / 'library'}
library: {base / 'beets.db'}
plugins: [soundalike]
soundalike:
  db: {base / 'soundalike.db'}
  backend: descriptors
import:
  copy: no
  write: no
  autotag: no
""", encoding="utf-8")
    env = {**os.environ, "BEETSDIR": str(base), "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    _beet(env, "import", "-A", "-C", "-W", "-q", str(music))
    return env, base, items


def _beet(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("beet", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert exe, "the `beet` program of PyPI beets is not on PATH"
    res = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_beet_soundalike_then_similar(beets_env, tmp_path):
    from soundalike.store import Store

    env, base, items = beets_env
    assert len(_beet(env, "ls").stdout.splitlines()) == 6
    res = _beet(env, "soundalike")  # every item
    assert "6 items" in res.stdout and "6 analysed now" in res.stdout
    with Store(base / "soundalike.db", readonly=True) as s:
        tracks = {Path(t.path): t for t in s.tracks()}
        assert set(tracks) == {it["file"] for it in items}  # beets' own paths, nothing else scanned
        first = tracks[items[0]["file"]]
        assert first.external_id == "00000000-0000-4000-8000-000000000000"  # MusicBrainz recording id
        assert (first.artist, first.title) == (items[0]["artist"], items[0]["title"])
    again = _beet(env, "soundalike", f"title:{items[1]['title']}")
    assert "1 items" in again.stdout and "0 analysed now, 1 already analysed" in again.stdout
    # similar: a listing in beets' own format, then an m3u8
    listing = _beet(env, "similar", f"title:{items[0]['title']}", "-n", "3").stdout.splitlines()
    assert len(listing) == 3 and all(" - " in line for line in listing)
    assert not any(items[0]["title"] in line for line in listing)  # the seed is left out
    out = tmp_path / "like.m3u8"
    _beet(env, "similar", f"artist:{items[0]['artist']}", "-n", "4", "-o", str(out))
    lines = out.read_text(encoding="utf-8").splitlines()
    paths = [Path(p) for p in lines[2::2]]
    assert lines[0] == "#EXTM3U" and len(paths) == 4 and all(p in tracks for p in paths)
    assert all(tracks[p].artist != items[0]["artist"] for p in paths)


def test_beets_errors_are_one_line(beets_env):
    env, base, _ = beets_env
    res = _beet(env, "soundalike", "title:no-such-song-anywhere", check=False)
    assert res.returncode != 0 and "matches no items" in res.stderr and "beet ls" in res.stderr
    res = _beet(env, "similar", "title:no-such-song-anywhere", check=False)
    assert res.returncode != 0 and "matches no items" in res.stderr
