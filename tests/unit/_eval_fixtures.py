"""A small synthetic library store for evaluate/reports tests (no audio, vectors by construction)."""

from __future__ import annotations

import hashlib

import numpy as np

# Six artists, three tracks each; two genres of three artists. Vectors: genre direction +
# artist offset + noise, so genre retrieval is clean and same-artist retrieval is strong.
ARTISTS = [("Alpha", "rock"), ("Bravo", "rock"), ("Charlie", "rock"),
           ("Delta", "jazz"), ("Echo", "jazz"), ("Foxtrot", "jazz")]


def fill_store(store, *, backend: str = "toy", weights_kind: str = "real", dim: int = 8, seed: int = 0,
               model_key: str | None = None) -> None:
    rng = np.random.default_rng(seed)
    genre_dir = {"rock": rng.normal(size=dim) * 3, "jazz": rng.normal(size=dim) * 3}
    key = model_key or f"{backend}-key"
    store.register_model(model_key=key, backend=backend, config={"window": "middle", "default_layer": 0},
                         weights_sha256=None, weights_kind=weights_kind, dim=dim, n_layers=1)
    with store.transaction() as db:
        for a, (name, genre) in enumerate(ARTISTS):
            offset = rng.normal(size=dim)
            for t in range(3):
                tid = hashlib.sha256(f"{name}{t}".encode()).hexdigest()
                store.add_track(track_id=tid, path=f"/music/{genre}/{name}_{t}.wav", artist=name, title=f"{name} {t}",
                                genres=(genre,), db=db)
                v = genre_dir[genre] + offset + 0.3 * rng.normal(size=dim)
                store.put_embeddings(db, track_id=tid, model_key=key, vectors=v.reshape(1, 1, dim))
