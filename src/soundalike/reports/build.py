"""Build the report document (the JSON shape of CONTRACTS.md) from a store."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from ..compare import DEFAULT_CALIBRATION, load_view
from ..similarity import pair_stats, top_k
from ..store import Store
from .verdict import build_verdict

__all__ = ["build_report", "WEIGHTS_NOTE"]

WEIGHTS_NOTE = {
    "real": "real trained weights",
    "random": "RANDOM weights: these numbers test the plumbing and say nothing about model quality",
    "none": "signal processing, no trained weights",
}


def _genre_of(genres_per_track: list[tuple[str, ...]]) -> str | None:
    """Most frequent track genre (ties: alphabetical), CONTRACTS.md."""
    from ..classify import majority_genre

    return majority_genre(genres_per_track)


def _quality(view, sim, genre: dict, calibration: str) -> dict:
    """Same-artist track mAP and artist genre P@1/P@5 with ceilings and chance (CONTRACTS.md).

    The genre labels come from tags/manifest and are used only as the reference here.
    """
    from ..metrics import genre_precision_at_k, hubness, same_artist_map
    from ..similarity import track_similarity

    out: dict = {}
    if len(view.track_ids) > 2:
        ts = track_similarity(view.X, calibration=calibration)
        sa = same_artist_map(ts.score, list(view.track_artist))
        out["same_artist_map"] = {"value": sa["MAP"], "chance": sa["chance"], "ceiling": sa["ceiling"],
                                  "n_queries": sa["n_queries"]}
    labels = [genre.get(int(a)) for a in sim.labels]
    if len(sim.labels) > 2 and sum(g is not None for g in labels) > 1:
        for k in (1, 5):
            r = genre_precision_at_k(sim.score, labels, k=min(k, len(sim.labels) - 1))
            out[f"genre_P@{k}"] = {"value": r[f"P@{r['k']}"], "ceiling": r["ceiling"], "chance": r["chance"],
                                   "n_queries": r["n_queries"]}
    if len(sim.labels) > 5:
        h = hubness(sim.score, k=5)
        out["hubness@5"] = {key: h[key] for key in h if not hasattr(h[key], "__len__")}
    return out


def build_report(
    store: Store, *, backends: list[str] | None = None, calibration: str = DEFAULT_CALIBRATION,
    k: int = 5, library: str | None = None, summaries: list[dict] | None = None,
) -> dict:
    """Artist table, pair statistics and top-k neighbours for each stored backend.

    The first backend is the primary one (its neighbours fill ``neighbours``); every backend
    gets its own section under ``models``.
    """
    names = backends or sorted({m.backend for m in store.models()})
    tracks = store.tracks()
    artists = store.artists()
    genre = {a.artist_id: _genre_of([t.genres for t in tracks if t.artist_id == a.artist_id]) for a in artists}
    sections = []
    for name in names:
        view = load_view(store, backend=name)
        sims = {cal: view.artist_similarity(calibration=cal) for cal in dict.fromkeys(["none", calibration])}
        sim = sims[calibration]
        neighbours = {}
        for i, aid in enumerate(sim.labels):
            aname = view.artist_names[int(aid)]
            neighbours[aname] = [
                {"artist": view.artist_names[int(sim.labels[nb.index])], "artist_id": int(sim.labels[nb.index]),
                 "score": round(nb.score, 4), "raw_cosine": round(nb.raw_cosine, 4)}
                for nb in top_k(sim, aid, k=min(k, len(sim.labels) - 1))
            ] if len(sim.labels) > 1 else []
        sections.append({
            "name": view.model.backend,
            "model_key": view.model.model_key,
            "weights_kind": view.model.weights_kind,
            "weights_note": WEIGHTS_NOTE.get(view.model.weights_kind, ""),
            "dim": view.model.dim,
            "layer": view.layer,
            "config": view.model.config,
            "n_tracks": len(view.track_ids),
            "artists": [view.artist_names[int(a)] for a in sim.labels],
            "raw_cosine_pairs": pair_stats(sims["none"].raw_cosine),
            "pairs": pair_stats(sim.score),
            "raw_cosine_matrix": np.round(sim.raw_cosine, 4).tolist(),
            "score_matrix": np.round(sim.score, 4).tolist(),
            "neighbours": neighbours,
            "metrics": _quality(view, sim, genre, calibration),
        })
    primary = sections[0] if sections else None
    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "library": library or str(store.path),
        "database": str(store.path),
        "n_tracks": len(tracks),
        "n_artists": len(artists),
        "backends": [{"name": s["name"], "weights_kind": s["weights_kind"], "dim": s["dim"]} for s in sections],
        "calibration": calibration,
        "score_meaning": "calibrated score in [0, 1]: the pair's percentile among all artist pairs of this library "
                         "(raw cosine shown beside it)",
        "artists": [
            {"artist": a.name, "artist_id": a.artist_id, "n_tracks": a.n_tracks, "genre": genre.get(a.artist_id)}
            for a in artists
        ],
        "pairs": primary["raw_cosine_pairs"] if primary else {},
        "neighbours": primary["neighbours"] if primary else {},
        "models": sections,
        "metrics": {"quality": {s["name"]: s["metrics"] for s in sections},
                    "quality_note": "same-artist mAP over tracks; genre P@k over artists (other artists only); "
                                    "genre labels from tags/manifest are the reference, never a signal"},
        "runs": summaries or [],
    }
    report["verdict"] = build_verdict(report)
    return report
