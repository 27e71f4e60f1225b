"""`soundalike prune [--dry-run]` on a library with deleted and moved files, and `soundalike export`
round-trips (npz always, parquet with pyarrow), through the real CLI and a real store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner


def _library(root) -> None:
    """Three artists × two tracks of distinct generated audio (4 s), laid out Artist/Album/file."""
    import soundfile as sf

    sr, t = 22050, np.arange(4 * 22050) / 22050
    rng = np.random.default_rng(0)
    specs = {
        "Tone Artist": [np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)],
        "Noise Artist": [rng.standard_normal(t.size), np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, "same")],
        "Chirp Artist": [np.sin(2 * np.pi * (200 * t + 475 * t**2)), np.sin(2 * np.pi * (300 * t + 712 * t**2))],
    }
    for artist, ys in specs.items():
        for i, y in enumerate(ys):
            p = root / artist / "Album" / (f"{i:02d}.flac" if i else f"{i:02d}.wav")
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), (0.3 * y / np.abs(y).max()).astype(np.float32), sr)


def _analyse(base):
    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    root, db = base / "lib", base / "lib.db"
    _library(root)
    with Store(db) as store:
        ingest(store, root)
        embed(store, [load_backend("descriptors")])
    return db, root


@pytest.fixture
def analysed(tmp_path):
    """(db path, music root) of a small generated library, ingested and embedded (descriptors)."""
    return _analyse(tmp_path)


@pytest.fixture(scope="module")
def analysed_once(tmp_path_factory):
    """The same, built once for the tests that only read it."""
    return _analyse(tmp_path_factory.mktemp("export-lib"))


def _cli(*args: str):
    from soundalike.cli import app

    return CliRunner().invoke(app, list(args))


def test_prune_dry_run_then_prune(analysed, tmp_path):
    from soundalike.query import load_vectors
    from soundalike.store import Store

    db, root = analysed
    with Store(db) as s:
        tracks = {t.path: t for t in s.tracks()}
        before = s.counts()
    gone = [root / "Tone Artist/Album/00.wav", root / "Noise Artist/Album/01.flac"]
    moved_from = root / "Chirp Artist/Album/00.wav"
    moved_to = tmp_path / "elsewhere.wav"
    shutil.copy(moved_from, moved_to)
    with Store(db) as s:  # identical bytes at a second path: recorded beside the first
        s.add_track(track_id=tracks[str(moved_from)].track_id, path=str(moved_to), artist="Chirp Artist")
        s.add_track(track_id=tracks[str(moved_from)].track_id, path=str(moved_from), artist="Chirp Artist")
    for p in gone + [moved_from]:
        p.unlink()

    dry = _cli("prune", "--dry-run", "--db", str(db))
    assert dry.exit_code == 0, dry.output
    for p in gone:
        assert f"would remove {tracks[str(p)].track_id[:12]}" in dry.output and str(p) in dry.output
    assert f"would move {tracks[str(moved_from)].track_id[:12]}" in dry.output
    with Store(db) as s:
        assert s.counts() == before  # nothing changed

    res = _cli("prune", "--db", str(db), "--json")
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(res.stdout)
    assert sorted(r["path"] for r in doc["removed"]) == sorted(map(str, gone))
    assert doc["moved"] == [{"track_id": tracks[str(moved_from)].track_id, "from": str(moved_from), "to": str(moved_to)}]
    with Store(db) as s:
        after = s.counts()
        assert after["tracks"] == before["tracks"] - 2
        per_track = before["embeddings"] // before["tracks"]
        assert after["embeddings"] == before["embeddings"] - 2 * per_track  # their vectors went with them
        left = {t.track_id: t.path for t in s.tracks()}
        assert left[tracks[str(moved_from)].track_id] == str(moved_to)
        view = load_vectors(s)  # what every query reads: the deleted files never come back as neighbours
        assert {tracks[str(p)].track_id for p in gone}.isdisjoint(view.track_ids) and len(view.track_ids) == 4
        saved = s.calibration_default(view.model.model_key, view.layer)  # refreshed on the vectors left
        assert doc["calibrators_refreshed"] is True and saved["fingerprint"] == view.fingerprint()
    again = _cli("prune", "--db", str(db))
    assert again.exit_code == 0 and "0 tracks removed" in again.output


@pytest.mark.parametrize("fmt", ["npz", pytest.param("parquet", marks=pytest.mark.requires_import("pyarrow"))])
def test_export_round_trips_vectors(analysed_once, tmp_path, fmt):
    from soundalike.query import pick_model
    from soundalike.export import read_export
    from soundalike.store import Store

    db, _ = analysed_once
    target = tmp_path / f"vectors.{fmt}"
    res = _cli("export", "--format", fmt, "--out", str(target), "--db", str(db))
    assert res.exit_code == 0, res.output
    assert "wrote 6 tracks" in res.output and "descriptors (none weights" in res.output
    table = read_export(target)
    with Store(db, readonly=True) as s:
        model = pick_model(s)
        tids, X = s.track_embeddings(model.model_key)
        tracks = {t.track_id: t for t in s.tracks()}
    order = [list(table.track_id).index(t) for t in tids]
    np.testing.assert_array_equal(table.vectors[order], X)  # bit-exact float32
    assert table.vectors.dtype == np.float32 and table.meta["model_key"] == model.model_key
    assert table.meta["backend"] == "descriptors" and table.meta["weights_kind"] == "none"
    for i, tid in enumerate(table.track_id):
        t = tracks[str(tid)]
        assert (table.path[i], table.artist[i], int(table.artist_id[i])) == (t.path, t.artist, t.artist_id)


def test_export_bad_target_and_format(analysed_once, tmp_path):
    db, _ = analysed_once
    res = _cli("export", "--format", "npz", "--out", str(tmp_path / "missing" / "v.npz"), "--db", str(db))
    assert res.exit_code == 1 and "does not exist" in res.output
    res = _cli("export", "--format", "csv", "--db", str(db))
    assert res.exit_code == 2 and "npz, parquet" in res.output
