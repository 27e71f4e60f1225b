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


def _space(X, lab, calibration="center"):
    from soundalike.query.vectors import ModelVectors, fit_space
    from soundalike.store import ModelInfo

    model = ModelInfo("m", "test-vec", {}, None, "none", X.shape[1], 1)
    vec = ModelVectors(model, 0, [f"t{i}" for i in range(len(X))], X, lab.astype(np.int64), {})
    return fit_space(vec, level="tracks", calibration=calibration)


@pytest.mark.parametrize("calibration", ["center", "nicdm"])
def test_engine_space_with_the_saved_index_gives_the_exact_answers(rng, tmp_path, calibration):
    """Candidates from the saved Faiss index, re-ranked exactly: the same tracks and scores as the full scan."""
    X, lab = _clustered(rng)
    space = _space(X, lab, calibration)
    path = tmp_path / "lib.db.indexes" / "tracks.faiss"
    ids = [str(i) for i in space.ids]
    space.index = NeighbourIndex.cached(space.V.astype(np.float32), path, ids=ids, metric="ip", ann="ivf")
    assert not space.index.reused
    assert NeighbourIndex.cached(space.V.astype(np.float32), path, ids=ids, metric="ip", ann="ivf").reused
    agree = []
    for i in range(0, 300, 3):
        allowed = np.ones(len(space), bool)
        allowed[i] = False
        allowed &= lab != lab[(i + 1) % len(lab)]
        kw = dict(k=10, self_pos=i, raw_q=space.R[i], allowed=allowed)
        a, e = space.top(space.V[i], use_index=True, **kw), space.top(space.V[i], **kw)
        assert len(a) == 10 and i not in [h.pos for h in a]
        assert all(lab[h.pos] != lab[(i + 1) % len(lab)] for h in a)
        agree.append(len({h.pos for h in a} & {h.pos for h in e}) / 10)
        # a track's score is the same whichever search found it
        se = {h.pos: h.score for h in e}
        assert all(abs(h.score - se[h.pos]) < 1e-9 for h in a if h.pos in se)
    assert np.mean(agree) >= 0.95
    # a filter that removes most candidates still fills k (the index search widens)
    banned = [int(c) for c in np.unique(lab) if c != lab[0]][:25]
    hits = space.top(space.V[0], k=10, self_pos=0, allowed=~np.isin(lab, banned), use_index=True)
    assert len(hits) == 10 and all(int(lab[h.pos]) not in banned for h in hits)


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


def test_similar_track_is_the_same_with_the_index_forced_on(small_library, store):
    """`similar --track` gives the same answer whether the engine scans or asks the saved Faiss index."""
    from soundalike.pipeline import embed, ingest
    from soundalike.query import Engine, Query
    from tests.unit.test_pipeline import SpectrumBackend

    ingest(store, small_library)
    embed(store, [SpectrumBackend()])
    t = store.tracks()[0]
    for cal in ("center", "nicdm"):
        q = Query(track=t.track_id, k=3, calibration=cal)
        exact = Engine(store, index="exact").run(q)
        forced = Engine(store, index="faiss").run(q)
        assert "index" in forced and "index" not in exact
        assert forced["neighbours"] == exact["neighbours"]
    same_artist = Engine(store).run(Query(track=t.track_id, k=3, exclude_seed_artists=True))
    assert all(n["artist_id"] != t.artist_id for n in same_artist["neighbours"])
