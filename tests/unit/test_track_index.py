"""Saved Faiss indexes: built once beside the store, reused while the vectors match, same answers as exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundalike.neighbours import NeighbourIndex, index_dir

pytestmark = pytest.mark.requires_import("faiss")


def _clustered(rng, n=3000, d=32, centres=30):
    C = rng.normal(size=(centres, d)) * 3.0
    lab = rng.integers(0, centres, size=n)
    return (C[lab] + rng.normal(size=(n, d))).astype(np.float32), lab


def test_cached_index_is_reused_until_the_vectors_change(rng, tmp_path):
    X, _ = _clustered(rng)
    ids = [f"t{i}" for i in range(len(X))]
    path = index_dir(tmp_path / "library.db") / "tracks.faiss"
    first = NeighbourIndex.cached(X, path, ids=ids)
    assert not first.reused and path.is_file()
    assert json.loads(path.with_name("tracks.faiss.json").read_text())["n_items"] == len(X)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tracks.faiss", "tracks.faiss.json"]  # no temp files
    again = NeighbourIndex.cached(X, path, ids=ids)
    assert again.reused
    np.testing.assert_array_equal(first.search(X[:20], 10)[1], again.search(X[:20], 10)[1])
    exact = NeighbourIndex(X, backend="exact").search(X[:200], 10)[1]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(again.search(X[:200], 10)[1], exact)])
    assert recall >= 0.95
    X2 = X.copy()
    X2[5] += 1.0  # one track re-embedded: the saved index is stale and rebuilt
    assert not NeighbourIndex.cached(X2, path, ids=ids).reused
    assert not NeighbourIndex.cached(X2, path, ids=ids[::-1]).reused  # same vectors, other ids


def test_service_track_index_uses_the_saved_index_with_the_same_answers(rng, tmp_path):
    from soundalike.serve.engine import TrackIndex

    X, lab = _clustered(rng)
    ids = [f"t{i}" for i in range(len(X))]
    path = tmp_path / "lib.db.indexes" / "tracks.faiss"
    exact = TrackIndex(ids, X, lab)
    ann = TrackIndex(ids, X, lab, ann_path=path, ann_min_items=1000)
    assert exact.ann is None and ann.ann is not None and not ann.ann.reused
    assert TrackIndex(ids, X, lab, ann_path=path).ann.reused  # below the threshold, but a saved index exists
    agree = []
    for i in range(0, 300, 3):
        q = exact.V[i]
        kw = dict(k=10, exclude=[i], exclude_artists=[int(lab[(i + 1) % len(lab)])], artist_gap=0)
        a, e = ann.nearest(q, **kw), exact.nearest(q, **kw)
        assert len(a) == 10 and i not in [j for j, _, _ in a]
        assert all(lab[j] != lab[(i + 1) % len(lab)] for j, _, _ in a)
        agree.append(len({j for j, _, _ in a} & {j for j, _, _ in e}) / 10)
        # scores of a track are the same whichever index found it
        se = {j: s for j, s, _ in e}
        assert all(abs(s - se[j]) < 1e-6 for j, s, _ in a if j in se)
    assert np.mean(agree) >= 0.95
    # a filter that removes most candidates still fills k (the ANN search widens)
    banned = [int(c) for c in np.unique(lab) if c != lab[0]][:25]
    hits = ann.nearest(ann.V[0], k=10, exclude_artists=banned)
    assert len(hits) == 10 and all(int(lab[j]) not in banned for j, _, _ in hits)


def test_index_command_builds_then_reuses(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from soundalike.cli import app
    from soundalike.store import Store

    rng = np.random.default_rng(0)
    db = tmp_path / "lib.db"
    X, lab = _clustered(rng, n=400, d=16, centres=8)
    with Store(db) as store:
        store.register_model(model_key="m1", backend="test-vec", config={"default_layer": 0}, weights_sha256=None,
                             weights_kind="none", dim=16, n_layers=1)
        with store.transaction() as tx:
            for i, x in enumerate(X):
                tid = f"{i:064x}"
                store.add_track(db=tx, track_id=tid, path=str(tmp_path / f"{i}.wav"), artist=f"artist {lab[i]}",
                                title=f"t{i}", duration_s=30.0)
                store.put_embeddings(tx, track_id=tid, model_key="m1", vectors=x[None, None, :],
                                     starts_s=[0.0], lengths_s=[30.0])
    runner = CliRunner()
    res = runner.invoke(app, ["index", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["built"] is False  # 400 tracks: exact search, nothing built
    res = runner.invoke(app, ["index", "--db", str(db), "--min-items", "0", "--json"])
    doc = json.loads(res.stdout)
    assert doc["built"] and doc["recall_at_10"] >= 0.95 and (tmp_path / "lib.db.indexes").is_dir()
    doc2 = json.loads(runner.invoke(app, ["index", "--db", str(db), "--min-items", "0", "--json"]).stdout)
    assert doc2["reused"] and doc2["path"] == doc["path"]


def test_similar_track_on_a_large_library_uses_the_track_index(small_library, store, monkeypatch):
    """Beyond TRACK_MATRIX_MAX tracks `similar --track` ranks without the n x n matrix, same order as centred cosine."""
    from soundalike import compare
    from soundalike.pipeline import embed, ingest
    from tests.unit.test_pipeline import SpectrumBackend

    ingest(store, small_library)
    embed(store, [SpectrumBackend()])
    tid = store.tracks()[0].track_id
    exact = compare.similar_tracks_json(store, tid, k=3, calibration="center")
    monkeypatch.setattr(compare, "TRACK_MATRIX_MAX", 2)
    large = compare.similar_tracks_json(store, tid, k=3, calibration="center")
    assert "track index" in large["note"] and large["calibration"] == "center"
    assert [n["track_id"] for n in large["neighbours"]] == [n["track_id"] for n in exact["neighbours"]]
    assert [n["raw_cosine"] for n in large["neighbours"]] == [n["raw_cosine"] for n in exact["neighbours"]]
    same_artist = compare.similar_tracks_json(store, tid, k=3, exclude_same_artist=True)
    assert all(n["artist_id"] != store.track(tid).artist_id for n in same_artist["neighbours"])
