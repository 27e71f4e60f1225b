"""Build the report document (the JSON shape of CONTRACTS.md) from a store."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from ..query import Engine, Query, validation_summary
from ..similarity import pair_stats
from ..store import Store
from .verdict import build_verdict

__all__ = ["build_report", "WEIGHTS_NOTE"]

#: the artist matrices (heatmap, histogram, verdict) are written into the report up to this many artists
REPORT_MATRIX_MAX_ARTISTS = 500
#: pair statistics, genre P@k and hubness: every artist up to this many, else a seeded sample of this many
REPORT_SAMPLE_ARTISTS = 2000
#: same-artist mAP: every track up to this many, else whole artists sampled up to this many tracks
REPORT_SAMPLE_TRACKS = 1000

WEIGHTS_NOTE = {
    "real": "real trained weights",
    "random": "RANDOM weights: these numbers test the plumbing and say nothing about model quality",
    "none": "signal processing, no trained weights",
}


def _genre_of(genres_per_track: list[tuple[str, ...]]) -> str | None:
    """Most frequent track genre (ties: alphabetical), CONTRACTS.md."""
    from ..classify import majority_genre

    return majority_genre(genres_per_track)


def _quality(engine: Engine, backend: str, ids: np.ndarray, score: np.ndarray, genre: dict, calibration: str) -> dict:
    """The report's quality block (:func:`soundalike.metrics.quality_metrics`) from the engine's scores.

    The genre labels come from tags/manifest and are used only as the reference here.
    """
    from ..metrics import quality_metrics

    vec = engine.vectors(backend)
    if len(vec.track_ids) <= 2:
        return quality_metrics(score, [genre.get(int(a)) for a in ids])
    tids, ts, _, _ = engine.track_scores(backend=backend, calibration=calibration, max_tracks=REPORT_SAMPLE_TRACKS)
    artist_of = dict(zip(vec.track_ids, vec.track_artist))
    return quality_metrics(score, [genre.get(int(a)) for a in ids], S_tracks=ts,
                           track_artists=[artist_of[t] for t in tids])


def build_report(
    store: Store, *, backends: list[str] | None = None, calibration: str | None = None,
    k: int = 5, library: str | None = None, summaries: list[dict] | None = None,
) -> dict:
    """Artist table, pair statistics and top-k neighbours for each stored backend, from the query engine.

    The first backend is the primary one (its neighbours fill ``neighbours``); every backend
    gets its own section under ``models``. ``calibration`` None: each backend's default.
    """
    from ..classify import artist_genres

    engine = Engine(store)
    names = backends or sorted({m.backend for m in store.models()})
    tracks = store.tracks()
    artists = store.artists()
    genre = artist_genres(tracks)
    sections = []
    cals = []
    for name in names:
        vec = engine.vectors(name)
        # pair statistics and quality on every artist, or on a seeded sample of a large library
        ids, score, raw, cal = engine.artist_scores(backend=name, calibration=calibration,
                                                    max_artists=REPORT_SAMPLE_ARTISTS)
        cals.append(cal)
        all_ids = np.asarray(engine.space(vec, "artists", cal).ids)
        sampled = len(ids) < len(all_ids)
        neighbours = {}
        for aid in all_ids.tolist():
            doc = engine.run(Query(artist=int(aid), backend=name, calibration=cal, k=max(min(k, len(all_ids) - 1), 1))) \
                if len(all_ids) > 1 else {"neighbours": []}
            neighbours[vec.artist_names[int(aid)]] = [
                {"artist": nb["artist"], "artist_id": nb["artist_id"], "score": round(nb["score"], 4),
                 "raw_cosine": round(nb["raw_cosine"], 4), "reasons": nb.get("reasons", [])} for nb in doc["neighbours"]]
        with_matrix = len(all_ids) <= REPORT_MATRIX_MAX_ARTISTS
        sections.append({
            "name": vec.model.backend,
            "model_key": vec.model.model_key,
            "weights_kind": vec.model.weights_kind,
            "weights_note": WEIGHTS_NOTE.get(vec.model.weights_kind, ""),
            "dim": vec.model.dim,
            "layer": vec.layer,
            "config": vec.model.config,
            "calibration": cal,
            "n_tracks": len(vec.track_ids),
            "artists": [vec.artist_names[int(a)] for a in all_ids],
            "raw_cosine_pairs": pair_stats(raw),
            "pairs": pair_stats(score),
            **({"pairs_sample": {"n_artists": len(ids), "of": len(all_ids), "seed": 0,
                                 "note": "pair statistics, genre P@k and hubness over a seeded sample of artists; "
                                         "same-artist mAP over whole artists sampled up to "
                                         f"{REPORT_SAMPLE_TRACKS} tracks"}} if sampled else {}),
            **({"raw_cosine_matrix": np.round(raw, 4).tolist(), "score_matrix": np.round(score, 4).tolist()}
               if with_matrix else
               {"matrix_note": f"{len(all_ids)} artists: the artist x artist matrices are left out of the report "
                               f"above {REPORT_MATRIX_MAX_ARTISTS} artists"}),
            "neighbours": neighbours,
            "metrics": _quality(engine, name, ids, score, genre, cal),
        })
    primary = sections[0] if sections else None
    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "library": library or str(store.path),
        "database": str(store.path),
        "n_tracks": len(tracks),
        "n_artists": len(artists),
        "backends": [{"name": s["name"], "weights_kind": s["weights_kind"], "dim": s["dim"]} for s in sections],
        "calibration": cals[0] if cals else calibration,
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
    report["validation"] = validation_summary(store)  # the saved default calibration per model and its CV figures
    report["verdict"] = build_verdict(report)
    return report
