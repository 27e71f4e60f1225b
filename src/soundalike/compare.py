"""Similarity over a stored library: pick a model, load its vectors, score artists and tracks.

This is the layer the CLI, the reports and the service call; the maths lives in
``similarity`` (and ``hybrid`` for blends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .similarity import ArtistSimilarity, artist_similarity, top_k
from .store import ModelInfo, Store

__all__ = ["LibraryView", "load_view", "similar_artists_json", "DEFAULT_CALIBRATION"]

DEFAULT_CALIBRATION = "center"


@dataclass
class LibraryView:
    """Track vectors of one stored model, with artist labels and names.

    Attributes
    ----------
    model : ModelInfo
    layer : int
    track_ids : list of str [n_tracks]
    X : np.ndarray [shape=(n_tracks, dim)]   one vector per track (mean over its windows)
    track_artist : np.ndarray [shape=(n_tracks,)]   artist id of each track
    artist_names : dict[int, str]
    """

    model: ModelInfo
    layer: int
    track_ids: list[str]
    X: np.ndarray
    track_artist: np.ndarray
    artist_names: dict[int, str]

    def artist_similarity(self, *, calibration: str = DEFAULT_CALIBRATION, profile: str = "centroid") -> ArtistSimilarity:
        return artist_similarity(self.X, self.track_artist, calibration=calibration, profile=profile)


def pick_model(store: Store, backend: str | None = None) -> ModelInfo:
    """The stored model for `backend` (the one with most vectors), or the best available one."""
    models = store.models()
    if not models:
        raise ParameterError(f"{store.path} has no embeddings yet; run `soundalike embed` (or `soundalike run`) first.")
    if backend is not None:
        ms = store.models_for_backend(backend)
        if not ms:
            have = ", ".join(sorted({m.backend for m in models}))
            raise ParameterError(f"No embeddings of backend {backend!r} in {store.path} (it has: {have}); "
                                 f"run `soundalike embed --backend {backend}`.")
        return ms[0]
    # Prefer real weights, then DSP descriptors, then random weights; then most vectors.
    rank = {"real": 0, "none": 1, "random": 2}
    counts = {m.model_key: len(store.embedded_track_ids(m.model_key)) for m in models}
    return sorted(models, key=lambda m: (rank.get(m.weights_kind, 3), -counts[m.model_key], m.backend))[0]


def load_view(store: Store, *, backend: str | None = None, layer: int | None = None) -> LibraryView:
    """Load one model's track vectors with their artists."""
    model = pick_model(store, backend)
    if layer is None:
        layer = int(model.config.get("default_layer", 0))
    tids, X = store.track_embeddings(model.model_key, layer=layer)
    if not tids:
        raise ParameterError(f"No stored vectors for {model.backend} in {store.path}; run `soundalike embed`.")
    tracks = {t.track_id: t for t in store.tracks()}
    keep = [i for i, t in enumerate(tids) if t in tracks]
    tids = [tids[i] for i in keep]
    X = X[keep]
    artist_of = np.array([tracks[t].artist_id for t in tids])
    names = {t.artist_id: t.artist for t in tracks.values()}
    return LibraryView(model, layer, tids, X, artist_of, names)


def similar_artists_json(
    store: Store, artist: str, *, k: int = 10, backend: str | None = None, calibration: str = DEFAULT_CALIBRATION,
    layer: int | None = None, profile: str = "centroid",
) -> dict:
    """The ``similar --json`` document (CONTRACTS.md) for one artist."""
    query = store.find_artist(artist)
    view = load_view(store, backend=backend, layer=layer)
    sim = view.artist_similarity(calibration=calibration, profile=profile)
    if query.artist_id not in set(sim.labels.tolist()):
        raise ParameterError(f"Artist {query.name!r} has no {view.model.backend} embeddings yet; run `soundalike embed`.")
    neighbours = []
    for nb in top_k(sim, query.artist_id, k=k):
        aid = int(sim.labels[nb.index])
        neighbours.append({
            "artist": view.artist_names[aid],
            "artist_id": aid,
            "score": round(nb.score, 6),
            "raw_cosine": round(nb.raw_cosine, 6),
            "contributions": {"audio": round(nb.score, 6)},
        })
    return {
        "query": {"artist": query.name, "artist_id": query.artist_id},
        "backend": view.model.backend,
        "weights_kind": view.model.weights_kind,
        "calibration": calibration,
        "layer": view.layer,
        "profile": profile,
        "signals_used": ["audio"],
        "neighbours": neighbours,
    }
