"""Building the answer document: the header and one entry per neighbour (CONTRACTS ``similar --json``).

Every surface gets these dicts; a surface may add fields of its own (an album id, a genre) but
never changes a score. ``finish`` is the one place where per-neighbour extras are added:
with ``Query.reasons`` it calls ``soundalike.query.reasons.add_reasons(engine, query, doc)``, which
gives every neighbour its ``reasons`` list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Engine
    from .spec import Query
    from .vectors import ModelVectors

__all__ = ["header", "artist_neighbour", "track_neighbour", "finish", "SCORE_DIGITS"]

#: scores and cosines are rounded to this many decimals in every document
SCORE_DIGITS = 6


def _r(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), SCORE_DIGITS)


def header(seed_doc: dict, vec: "ModelVectors", calibration: str, source: str, query: "Query", signals_used: list[str]) -> dict:
    return {
        "query": seed_doc,
        "backend": vec.model.backend,
        "weights_kind": vec.model.weights_kind,
        "calibration": calibration,
        "calibration_source": source,
        "layer": vec.layer,
        "profile": query.profile if query.level == "artists" else None,
        "signals_used": list(signals_used),
        "level": query.level,
        "filters": {"exclude_track_ids": list(query.exclude_track_ids), "exclude_artist_ids": list(query.exclude_artist_ids),
                    "exclude_seed_artists": query.exclude_seed_artists, "exclude_same_album": query.exclude_same_album,
                    "include_seeds": query.include_seeds, "artist_gap": query.artist_gap},
    }


def artist_neighbour(engine: "Engine", artist_id: int, score: float, raw_cosine: float | None, *,
                     contributions: dict[str, float] | None = None, signal_scores: dict | None = None) -> dict:
    a = engine.artist_by_id.get(artist_id)
    nb = {"artist": a.name if a is not None else str(artist_id), "artist_id": int(artist_id), "score": _r(score)}
    if raw_cosine is not None and raw_cosine == raw_cosine:
        nb["raw_cosine"] = _r(raw_cosine)
    contributions = contributions if contributions is not None else {"audio": score}
    nb["contributions"] = {s: _r(v) for s, v in contributions.items()}
    signal_scores = signal_scores if signal_scores is not None else {"audio": score}
    nb["signal_scores"] = {s: _r(v) for s, v in signal_scores.items()}
    return nb


def track_neighbour(engine: "Engine", track_id: str, score: float, raw_cosine: float | None) -> dict:
    t = engine.track_by_id[track_id]
    nb = {"artist": t.artist, "artist_id": t.artist_id, "track_id": t.track_id, "title": t.title, "album": t.album,
          "path": t.path, "score": _r(score)}
    if raw_cosine is not None and raw_cosine == raw_cosine:
        nb["raw_cosine"] = _r(raw_cosine)
    nb["contributions"] = {"audio": _r(score)}
    return nb


def finish(engine: "Engine", query: "Query", doc: dict) -> dict:
    """Add the per-neighbour extras a query asks for (``reasons``), then return `doc`."""
    if query.reasons:
        from .reasons import add_reasons  # issue 17 writes this module

        add_reasons(engine, query, doc)
    return doc
