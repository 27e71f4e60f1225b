"""Answers shared by the HTTP API and the Subsonic endpoints, built from the cached models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError
from ..store import Track
from .engine import FULL_MATRIX_MAX_ARTISTS
from .library_state import LibraryState

__all__ = ["parse_signals", "similar_artists", "similar_tracks", "track_path", "artist_map", "track_json", "LOCAL_SIGNALS"]

#: Signals answered from the service's own cached models; anything else goes to the hybrid.
LOCAL_SIGNALS = ("audio",)


def parse_signals(values: Sequence[str] | None) -> list[str]:
    """Repeatable and comma-separated ``signals`` → unique names, default ``["audio"]``."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return list(dict.fromkeys(out)) or ["audio"]


def track_json(state: LibraryState, t: Track) -> dict:
    return {
        "track_id": t.track_id, "artist_id": t.artist_id, "artist": t.artist, "title": t.title,
        "album": t.album, "album_id": state.album_of_track[t.track_id], "duration_s": t.duration_s,
        "genres": list(t.genres),
    }


def _hybrid(state: LibraryState, signals: list[str], backend: str, calibration: str):
    """The blended model of `signals` (cached per signals/backend/calibration)."""
    if len(state.artists) > FULL_MATRIX_MAX_ARTISTS:
        raise ParameterError(f"signals {', '.join(signals)} need the hybrid blend, which the service builds only up to "
                             f"{FULL_MATRIX_MAX_ARTISTS} artists (this library has {len(state.artists)}); use signals=audio.")
    try:
        from ..hybrid import HybridConfig, hybrid_scores
        from ..signals import SIGNALS
    except ImportError:  # an older build without the hybrid module
        raise ParameterError(f"signals {signals} need the hybrid scorer, which this build lacks; use signals=audio.") from None
    bad = [s for s in signals if s not in SIGNALS]
    if bad:
        raise ParameterError(f"signals={bad[0]!r} is not valid; choose from {', '.join(SIGNALS)}.")
    cfg_path = state.settings.hybrid_config
    key = ("hybrid", tuple(signals), backend, calibration)

    def build():
        cfg = HybridConfig.from_yaml(cfg_path) if cfg_path else None
        return hybrid_scores(state.store, signals=signals, config=cfg, backend=backend, calibration=calibration)

    return state._models.get(key, build)


def _reasons(state: LibraryState, artist_id: int, neighbours: list[dict]) -> None:
    from ..query.traits import TraitTable, add_reasons

    table = state._models.get(("traits",), lambda: TraitTable(state.store))
    add_reasons(table, table.artist(artist_id), neighbours)


def similar_artists(state: LibraryState, artist_id: int, *, k: int = 10, signals: Sequence[str] | None = None,
                    calibration: str | None = None, backend: str | None = None) -> dict:
    """The ``similar --json`` document (CONTRACTS.md) for one artist, plus genres and per-signal scores."""
    artist = state.artist(artist_id)
    sig = parse_signals(signals)
    b = state.resolve_backend(backend)
    cal = state.resolve_calibration(calibration)
    model = state.model_info(b)
    doc = {
        "query": {"artist": artist.name, "artist_id": artist.artist_id},
        "backend": b, "weights_kind": model.weights_kind, "calibration": cal,
        "layer": state.view(b).layer, "profile": "centroid",
    }
    if sig == ["audio"]:
        scorer = state.scorer(b, cal)
        if not scorer.has(artist.artist_id):
            raise ParameterError(f"Artist {artist.name!r} has no {b} embeddings yet; run `soundalike embed`.")
        neighbours = [{
            "artist": state.artist_by_id[a].name, "artist_id": a, "score": round(s, 6), "raw_cosine": round(r, 6),
            "contributions": {"audio": round(s, 6)}, "signal_scores": {"audio": round(s, 6)},
            "genre": state.genre_of.get(a),
        } for a, s, r in scorer.top(artist.artist_id, k=k)]
        _reasons(state, artist.artist_id, neighbours)
        return {**doc, "signals_used": ["audio"], "neighbours": neighbours}

    res = _hybrid(state, sig, b, cal)
    ids = res.artist_ids.tolist()
    if artist.artist_id not in ids:
        raise ParameterError(f"Artist {artist.name!r} has none of the signals {', '.join(sig)}.")
    i = ids.index(artist.artist_id)
    audio = res.signals.get("audio") or res.signals.get("descriptors")
    raw = audio.details.get("raw_cosine") if audio is not None else None
    neighbours = []
    for j in res.neighbours(i, k=k):
        a = int(ids[j])
        present = {s: v for s, v in res.signals.items() if np.isfinite(v.score[i, j])}
        nb = {
            "artist": state.artist_by_id[a].name if a in state.artist_by_id else str(a), "artist_id": a,
            "score": round(float(res.score[i, j]), 6),
            "contributions": {s: round(float(res.contributions[s][i, j]), 6) for s in present},
            "signal_scores": {s: (round(float(v.score[i, j]), 6) if s in present else None) for s, v in res.signals.items()},
            "genre": state.genre_of.get(a),
        }
        if raw is not None and np.isfinite(raw[i, j]):
            nb["raw_cosine"] = round(float(raw[i, j]), 6)
        neighbours.append(nb)
    used = [s for s in res.signals_used if np.isfinite(res.signals[s].score[i]).sum() > 1]
    _reasons(state, artist.artist_id, neighbours)
    return {**doc, "signals_used": used, "neighbours": neighbours}


def _seed_positions(state: LibraryState, backend: str, track_ids: Sequence[str]) -> list[int]:
    idx = state.track_index(backend)
    out = []
    for tid in track_ids:
        state.track(tid)  # 404 for unknown ids
        if tid not in idx.pos:
            raise ParameterError(f"Track {tid!r} has no {backend} embeddings yet; run `soundalike embed`.")
        out.append(idx.pos[tid])
    return out


def similar_tracks(state: LibraryState, seeds: Sequence[str], *, k: int = 10, exclude_artist: bool = False,
                   artist_gap: int = 0, backend: str | None = None, exclude_seeds: bool = True) -> dict:
    """Tracks near one or several seed tracks (their mean vector), best first.

    Parameters
    ----------
    seeds : track ids (one or more)
    exclude_artist : leave out every track by the seeds' artists
    artist_gap : no artist repeats within this many consecutive results
    exclude_seeds : leave the seeds themselves out (default)
    """
    if not seeds:
        raise ParameterError("Give at least one seed track id.")
    if artist_gap < 0:
        raise ParameterError(f"artist_gap must be >= 0, got {artist_gap}.")
    b = state.resolve_backend(backend)
    idx = state.track_index(b)
    pos = _seed_positions(state, b, seeds)
    q = idx.seeds_query(pos)
    banned = {state.track(s).artist_id for s in seeds} if exclude_artist else set()
    hits = idx.nearest(q, k=k, exclude=pos if exclude_seeds else (), exclude_artists=banned, artist_gap=artist_gap)
    model = state.model_info(b)
    return {
        "query": {"track_ids": list(seeds)},
        "backend": b, "weights_kind": model.weights_kind, "calibration": "center",
        "exclude_artist": exclude_artist, "artist_gap": artist_gap,
        "neighbours": [{**track_json(state, state.track(idx.track_ids[j])), "score": round(s, 6), "raw_cosine": round(c, 6)}
                       for j, s, c in hits],
    }


def track_path(state: LibraryState, start: str, end: str, *, count: int = 10, backend: str | None = None) -> dict:
    """A path of `count` tracks from `start` to `end`; scores are relative to the start."""
    b = state.resolve_backend(backend)
    idx = state.track_index(b)
    a, z = _seed_positions(state, b, [start, end])
    if a == z:
        raise ParameterError("start and end are the same track; give two different tracks.")
    steps = idx.path(a, z, count=count)
    model = state.model_info(b)
    return {
        "start": start, "end": end, "backend": b, "weights_kind": model.weights_kind,
        "steps": [{**track_json(state, state.track(idx.track_ids[j])), "score": round(s, 6), "raw_cosine": round(c, 6)}
                  for j, s, c in steps],
    }


def artist_map(state: LibraryState, *, backend: str | None = None) -> dict:
    b = state.resolve_backend(backend)
    ids, Y = state.map_layout(b)
    model = state.model_info(b)
    points = []
    for aid, (x, y) in zip(ids.tolist(), Y.tolist()):
        a = state.artist_by_id.get(int(aid))
        if a is None:
            continue
        points.append({"artist_id": a.artist_id, "name": a.name, "x": round(x, 5), "y": round(y, 5),
                       "genre": state.genre_of.get(a.artist_id), "n_tracks": a.n_tracks})
    genres = sorted({p["genre"] for p in points if p["genre"]})
    method = "t-SNE of centred artist centroids" if 50 <= len(points) <= 1000 else "PCA of centred artist centroids"
    return {"backend": b, "weights_kind": model.weights_kind, "method": method, "genres": genres, "points": points}
