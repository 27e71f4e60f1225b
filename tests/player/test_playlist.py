"""`soundalike playlist`: several seeds make one mix, seeds left out, artists spaced, no recording
twice; --path; m3u8 output; one-line errors. Real store (descriptors vectors of demo clips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner


def _cli(*args: str):
    from soundalike.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def lib(player_library):
    from soundalike.store import Store

    with Store(player_library["db"], readonly=True) as s:
        by_path = {t.path: t for t in s.tracks()}
    return {**player_library, "by_path": by_path}


def _detector(db):
    from soundalike.query import pick_model
    from soundalike.recordings import DuplicateDetector
    from soundalike.store import Store

    with Store(db, readonly=True) as s:
        return DuplicateDetector.from_store(s, pick_model(s).model_key)


def test_two_seed_playlist_spaces_artists_and_skips_duplicate_recordings(lib):
    db, seed_track = str(lib["db"]), str(lib["dup_of"])  # a track (by path) whose recording is also on "Best Of"
    res = _cli("playlist", seed_track, "Johann Sebastian Bach", "-n", "8", "--artist-gap", "2", "--db", db, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [s["kind"] for s in doc["seeds"]] == ["track", "artist"]
    assert doc["seeds"][1]["name"] == "Johann Sebastian Bach" and doc["rules"]["artist_gap"] == 2
    tracks = doc["tracks"]
    assert len(tracks) == 8 and doc["rules"]["artist_gap_relaxed"] is False
    ids = [t["track_id"] for t in tracks]
    seed_id = lib["by_path"][seed_track].track_id
    assert seed_id not in ids and "Johann Sebastian Bach" not in {t["artist"] for t in tracks}  # seeds left out
    for i, t in enumerate(tracks):  # no artist repeats within the gap
        assert t["artist"] not in {p["artist"] for p in tracks[max(0, i - 2):i]}, [x["artist"] for x in tracks]
    det = _detector(lib["db"])
    assert lib["by_path"][str(lib["dup"])].track_id not in ids  # the seed's "Best Of" copy is not played again
    assert det.is_duplicate(seed_id, lib["by_path"][str(lib["dup"])].track_id)
    assert not any(det.is_duplicate(a, b) for i, a in enumerate(ids) for b in ids[i + 1:])
    scores = [t["score"] for t in tracks]
    assert all(0 <= s <= 1 for s in scores)


def test_one_recording_once_when_both_copies_are_candidates(lib):
    other = next(p for p, t in lib["by_path"].items() if t.artist == "Muldjord")
    res = _cli("playlist", other, "-n", "30", "--artist-gap", "0", "--db", str(lib["db"]), "--json")
    assert res.exit_code == 0, res.output
    ids = {t["track_id"] for t in json.loads(res.stdout)["tracks"]}
    copies = {lib["by_path"][str(lib["dup"])].track_id, lib["by_path"][str(lib["dup_of"])].track_id}
    assert len(ids & copies) == 1  # every other track fits, but only one copy of that recording
    assert len(ids) == len(lib["by_path"]) - 2  # all tracks but the seed and one copy


def test_path_and_m3u8(lib, tmp_path):
    tracks = sorted(lib["by_path"].values(), key=lambda t: t.path)
    start = next(t for t in tracks if t.artist == "Askyel" and "best_of" not in t.path)
    end = next(t for t in tracks if t.artist == "Muldjord")
    out = tmp_path / "path.m3u8"
    res = _cli("playlist", "--path", start.track_id[:10], end.track_id[:10], "-n", "5", "--out", str(out),
               "--root", str(lib["music"]), "--db", str(lib["db"]), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    ids = [t["track_id"] for t in doc["tracks"]]
    assert ids[0] == start.track_id and ids[-1] == end.track_id and len(ids) == 5
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and lines[1].startswith("#EXTINF:-1,Askyel - ")
    paths = lines[2::2]
    assert len(paths) == 5 and not any(Path(p).is_absolute() for p in paths)
    assert [str((lib["music"] / p).resolve()) for p in paths] == [str(Path(t["path"]).resolve()) for t in doc["tracks"]]


def test_bad_input_one_line(lib, tmp_path):
    db = str(lib["db"])
    res = _cli("playlist", "Nobody At All", "--db", db)
    assert res.exit_code == 1 and "names no track and no artist" in res.output and len(res.output.strip().splitlines()) == 1
    res = _cli("playlist", "Askyl", "--db", db)
    assert res.exit_code == 1 and "Did you mean: Askyel" in res.output
    res = _cli("playlist", "Askyel", "--out", str(tmp_path / "no" / "such" / "dir.m3u8"), "--db", db)
    assert res.exit_code == 1 and "Cannot write the playlist" in res.output and "writable --out" in res.output
    res = _cli("playlist", "Askyel", "--path", "a", "b", "--db", db)
    assert res.exit_code == 2
