"""store.py: schema and migrations, identity by hash, embeddings round trip, dimension checks."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from soundalike import _migrations
from soundalike.errors import DimensionMismatchError, ParameterError, SchemaError, StoreError, UnknownArtistError
from soundalike.store import Store


def test_schema_matches_contract_and_wal(store):
    cols = {r[1] for r in store.execute("PRAGMA table_info(embeddings)")}
    assert {"track_id", "model_key", "window", "layer", "vector"} <= cols
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    names = [r[0] for r in store.execute("SELECT name FROM migrations ORDER BY id")]
    assert names == [n for n, _ in _migrations.MIGRATIONS]
    for table in ("artists", "tracks", "models", "embeddings", "failures", "runs"):
        assert store.execute("SELECT COUNT(*) FROM sqlite_master WHERE name=?", (table,)).fetchone()[0] == 1


def test_reopen_applies_nothing_and_newer_schema_is_refused(tmp_path):
    s = Store(tmp_path / "a.db")
    s.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert _migrations.apply_migrations(db) == []
    db.execute("INSERT INTO migrations(name, applied) VALUES ('m999_future', 'now')")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="newer soundalike"):
        Store(tmp_path / "a.db")


def test_not_a_database(tmp_path):
    p = tmp_path / "junk.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable soundalike database"):
        Store(p)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.db", readonly=True)


def test_tracks_artists_and_moves(store):
    with store.transaction() as db:
        assert store.add_track(track_id="a" * 64, path="/m/x.ogg", artist="The Band", genres=["rock"], db=db) == "new"
        assert store.add_track(track_id="a" * 64, path="/m/moved.ogg", artist="the  band", db=db) == "moved"
        assert store.add_track(track_id="b" * 64, path="/m/y.ogg", artist="THE BAND feat. X", db=db) == "new"
    artists = store.artists()
    assert len(artists) == 1 and artists[0].name == "The Band" and artists[0].n_tracks == 2
    assert store.track("a" * 64).path == "/m/moved.ogg"
    assert store.find_artist(" the band ").artist_id == artists[0].artist_id
    with pytest.raises(UnknownArtistError, match="Did you mean: The Band"):
        store.find_artist("The Bnad")


def test_changed_bytes_replace_the_old_track(store):
    with store.transaction() as db:
        store.add_track(track_id="a" * 64, path="/m/x.ogg", artist="A", db=db)
        store.add_track(track_id="c" * 64, path="/m/x.ogg", artist="A", db=db)  # re-tagged file
    assert [t.track_id for t in store.tracks()] == ["c" * 64]


def test_embeddings_round_trip_and_mean_over_windows(store, rng):
    with store.transaction() as db:
        for tid in ("a" * 64, "b" * 64):
            store.add_track(track_id=tid, path=f"/m/{tid[0]}.ogg", artist="A", db=db)
    store.register_model(model_key="k1", backend="fake", config={"default_layer": 1}, weights_sha256=None,
                         weights_kind="random", dim=4, n_layers=2)
    va = rng.standard_normal((3, 2, 4)).astype(np.float32)
    vb = rng.standard_normal((1, 2, 4)).astype(np.float32)
    with store.transaction() as db:
        store.put_embeddings(db, track_id="a" * 64, model_key="k1", vectors=va)
        store.put_embeddings(db, track_id="b" * 64, model_key="k1", vectors=vb)
    tids, X = store.track_embeddings("k1")  # default layer 1 from the model config
    assert tids == ["a" * 64, "b" * 64]
    np.testing.assert_allclose(X[0], va[:, 1].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(X[1], vb[0, 1])
    _, win, X0 = store.window_embeddings("k1", layer=0)
    assert list(win) == [0, 1, 2, 0] and X0.dtype == np.float32
    with pytest.raises(ParameterError, match="layers 0..1"):
        store.window_embeddings("k1", layer=5)
    with pytest.raises(DimensionMismatchError, match="8 x 2"):
        store.register_model(model_key="k1", backend="fake", config={}, weights_sha256=None, weights_kind="random",
                             dim=8, n_layers=2)


def test_rollback_keeps_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            store.add_track(track_id="a" * 64, path="/m/x.ogg", artist="A", db=db)
            raise RuntimeError("boom")
    assert store.counts()["tracks"] == 0
