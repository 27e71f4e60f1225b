"""Similarity over a stored library: pick a model, load its vectors, score artists and tracks.

This is the layer the CLI, the reports and the service call; the maths lives in
``similarity`` (and ``hybrid`` for blends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .similarity import ArtistSimilarity, TrackSimilarity, artist_similarity, top_k, track_similarity
from .store import ModelInfo, Store

__all__ = ["LibraryView", "load_view", "pick_model", "similar_artists_json", "similar_tracks_json", "DEFAULT_CALIBRATION"]

#: chosen by measurement (experiments/similarity_table.py on ../shared/data/music, musicnn-msd real
#: weights, one 30 s window): best 5-fold-by-artist validation mean same-artist mAP (nicdm 0.524,
#: csls 0.523, center 0.518, raw cosine 0.502) with fewer hubs than raw cosine (largest
#: 5-occurrence 7 vs 13). It also wins on the 4-backend ensemble (0.555).
DEFAULT_CALIBRATION = "nicdm"


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

    def track_similarity(self, *, calibration: str = DEFAULT_CALIBRATION) -> TrackSimilarity:
        return track_similarity(self.X, calibration=calibration)


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
    layer: int | None = None, profile: str = "centroid", signals: list[str] | None = None, config=None,
) -> dict:
    """The ``similar --json`` document (CONTRACTS.md) for one artist.

    ``signals`` other than ``["audio"]`` (or a ``config``) use the hybrid blend
    (:mod:`soundalike.hybrid`); every neighbour then carries its per-signal contributions.
    """
    query = store.find_artist(artist)
    if signals and (list(signals) != ["audio"] or config is not None):
        return _hybrid_json(store, query, k=k, backend=backend, calibration=calibration, layer=layer,
                            profile=profile, signals=list(signals), config=config)
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


def _hybrid_json(store: Store, query, *, k: int, backend, calibration, layer, profile, signals, config) -> dict:
    from .hybrid import hybrid_scores

    res = hybrid_scores(store, signals=signals, config=config, backend=backend, calibration=calibration,
                        profile=profile, layer=layer)
    ids = res.artist_ids.tolist()
    i = ids.index(query.artist_id)
    names = {a.artist_id: a.name for a in store.artists()}
    audio = res.signals.get("audio") or res.signals.get("descriptors")
    raw = audio.details.get("raw_cosine") if audio is not None else None
    neighbours = []
    for j in res.neighbours(i, k=k):
        nb = {
            "artist": names[ids[j]],
            "artist_id": int(ids[j]),
            "score": round(float(res.score[i, j]), 6),
            "contributions": {s: round(float(c[i, j]), 6) for s, c in res.contributions.items()
                              if np.isfinite(res.signals[s].score[i, j])},
        }
        if raw is not None and np.isfinite(raw[i, j]):
            nb["raw_cosine"] = round(float(raw[i, j]), 6)
        neighbours.append(nb)
    used = [s for s in res.signals_used if np.isfinite(res.signals[s].score[i]).sum() > 1]
    if not used:
        raise ParameterError(f"Artist {query.name!r} has none of the signals {', '.join(signals)}; "
                             "embed its tracks or give reference/graph CSVs in the hybrid config.")
    details = audio.details if audio is not None else {}
    return {
        "query": {"artist": query.name, "artist_id": query.artist_id},
        "backend": details.get("backend"),
        "weights_kind": details.get("weights_kind"),
        "calibration": calibration,
        "layer": details.get("layer"),
        "profile": profile,
        "signals_used": used,
        "blend": {"weights": res.weights, "kind": res.weights_kind, "renormalised_over_present": True},
        "coverage": res.coverage(),
        "signal_notes": {s: v.note for s, v in res.signals.items()},
        "labels_as_signals": [s for s, v in res.signals.items() if v.is_label],
        "neighbours": neighbours,
    }


def similar_tracks_json(
    store: Store, track_id: str, *, k: int = 10, backend: str | None = None, calibration: str = DEFAULT_CALIBRATION,
    layer: int | None = None, exclude_same_artist: bool = False, exclude_same_album: bool = False,
) -> dict:
    """Tracks like one track (the ``similar --track`` document), with optional filters."""
    from .neighbours import group_exclusions

    track = store.track(track_id)
    view = load_view(store, backend=backend, layer=layer)
    if track.track_id not in view.track_ids:
        raise ParameterError(f"Track {track_id!r} has no {view.model.backend} embeddings yet; run `soundalike embed`.")
    q = view.track_ids.index(track.track_id)
    meta = {t.track_id: t for t in store.tracks()}
    if len(view.track_ids) > TRACK_MATRIX_MAX:
        return _similar_tracks_large(store, view, q, meta, k=k, exclude_same_artist=exclude_same_artist,
                                     exclude_same_album=exclude_same_album)
    sim = view.track_similarity(calibration=calibration)
    excl = {q}
    if exclude_same_artist:
        excl |= set(group_exclusions([track.artist_id], [meta[t].artist_id for t in view.track_ids])[0].tolist())
    if exclude_same_album and track.album:
        excl |= set(group_exclusions([(track.artist_id, track.album)],
                                     [(meta[t].artist_id, meta[t].album) if meta[t].album else None
                                      for t in view.track_ids])[0].tolist())
    order = [j for j in np.argsort(-sim.score[q], kind="stable") if j not in excl][:k]
    neighbours = []
    for j in order:
        t = meta[view.track_ids[j]]
        neighbours.append({"artist": t.artist, "artist_id": t.artist_id, "track_id": t.track_id, "title": t.title,
                           "score": round(float(sim.score[q, j]), 6), "raw_cosine": round(float(sim.raw_cosine[q, j]), 6),
                           "contributions": {"audio": round(float(sim.score[q, j]), 6)}})
    return {
        "query": {"track_id": track.track_id, "artist": track.artist, "title": track.title},
        "backend": view.model.backend, "weights_kind": view.model.weights_kind, "calibration": calibration,
        "layer": view.layer, "profile": None, "signals_used": ["audio"],
        "filters": {"exclude_same_artist": exclude_same_artist, "exclude_same_album": exclude_same_album},
        "neighbours": neighbours,
    }


#: Above this many tracks ``similar --track`` does not build the track x track matrix (n^2 memory):
#: it ranks with the service's track index (centred cosine; the saved Faiss index beside the
#: store from 50,000 tracks, see ``soundalike index``).
TRACK_MATRIX_MAX = 20_000


def _similar_tracks_large(store: Store, view: LibraryView, q: int, meta: dict, *, k: int,
                          exclude_same_artist: bool, exclude_same_album: bool) -> dict:
    from .neighbours import index_dir
    from .serve.engine import TrackIndex  # the same ranking the service gives

    track = meta[view.track_ids[q]]
    ann_path = index_dir(store.path) / f"tracks-{view.model.model_key}-layer{view.layer}.faiss"
    idx = TrackIndex(view.track_ids, view.X, view.track_artist, ann_path=ann_path)
    excl = [q]
    if exclude_same_album and track.album:
        excl += [j for j, t in enumerate(view.track_ids)
                 if meta[t].artist_id == track.artist_id and meta[t].album == track.album]
    hits = idx.nearest(idx.V[q], k=k, exclude=excl, exclude_artists=[track.artist_id] if exclude_same_artist else [])
    Xq = view.X[q] / max(float(np.linalg.norm(view.X[q])), 1e-12)
    neighbours = []
    for j, score, _ in hits:
        t = meta[view.track_ids[j]]
        raw = float(view.X[j] @ Xq) / max(float(np.linalg.norm(view.X[j])), 1e-12)
        neighbours.append({"artist": t.artist, "artist_id": t.artist_id, "track_id": t.track_id, "title": t.title,
                           "score": round(score, 6), "raw_cosine": round(raw, 6), "contributions": {"audio": round(score, 6)}})
    return {
        "query": {"track_id": track.track_id, "artist": track.artist, "title": track.title},
        "backend": view.model.backend, "weights_kind": view.model.weights_kind, "calibration": "center",
        "layer": view.layer, "profile": None, "signals_used": ["audio"],
        "filters": {"exclude_same_artist": exclude_same_artist, "exclude_same_album": exclude_same_album},
        "note": f"{len(view.track_ids)} tracks: ranked by centred cosine with the track index "
                f"({'Faiss, ' + str(ann_path) if idx.ann is not None else 'exact'}), not the full matrix",
        "neighbours": neighbours,
    }
