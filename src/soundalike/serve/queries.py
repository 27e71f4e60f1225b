"""Answers shared by the HTTP API and the Subsonic endpoints: the query engine's documents,
with the service's own catalogue fields (album ids, genres) added — never a score of their own."""

from __future__ import annotations

from collections.abc import Sequence

from ..query import Query, layout_method, split_signals
from ..store import Track
from .library_state import LibraryState

__all__ = ["parse_signals", "similar_artists", "similar_tracks", "track_path", "artist_map", "track_json"]


def parse_signals(values: Sequence[str] | None) -> list[str]:
    """Repeatable and comma-separated ``signals`` → unique names, default ``["audio"]``."""
    return list(split_signals(values))


def track_json(state: LibraryState, t: Track) -> dict:
    return {
        "track_id": t.track_id, "artist_id": t.artist_id, "artist": t.artist, "title": t.title,
        "album": t.album, "album_id": state.album_of_track[t.track_id], "duration_s": t.duration_s,
        "genres": list(t.genres),
    }


def similar_artists(state: LibraryState, artist_id: int, *, k: int = 10, signals: Sequence[str] | None = None,
                    calibration: str | None = None, backend: str | None = None, profile: str = "centroid",
                    layer: int | None = None) -> dict:
    """The ``similar --json`` document (CONTRACTS.md) for one artist, plus each neighbour's genre."""
    artist = state.artist(artist_id)
    doc = state.engine.run(Query(artist=artist.artist_id, k=k, signals=split_signals(signals), calibration=calibration,
                                 backend=state.resolve_backend(backend), profile=profile, layer=layer))
    for nb in doc["neighbours"]:
        nb["genre"] = state.genre_of.get(nb["artist_id"])
    return doc


def similar_tracks(state: LibraryState, seeds: Sequence[str], *, k: int = 10, exclude_artist: bool = False,
                   artist_gap: int = 0, backend: str | None = None, exclude_seeds: bool = True,
                   calibration: str | None = None, layer: int | None = None) -> dict:
    """Tracks near one or several seed tracks (track references), best first.

    Parameters
    ----------
    seeds : track references (one or more)
    exclude_artist : leave out every track by the seeds' artists
    artist_gap : no artist repeats within this many consecutive results
    exclude_seeds : leave the seeds themselves out (default)
    """
    doc = state.engine.run(Query(tracks=tuple(seeds), want="tracks", k=k, exclude_seed_artists=exclude_artist,
                                 artist_gap=artist_gap, backend=state.resolve_backend(backend),
                                 include_seeds=not exclude_seeds, calibration=calibration, layer=layer))
    doc["neighbours"] = [{**nb, **track_json(state, state.track_by_id[nb["track_id"]])} for nb in doc["neighbours"]]
    doc["exclude_artist"], doc["artist_gap"] = exclude_artist, artist_gap
    return doc


def track_path(state: LibraryState, start: str, end: str, *, count: int = 10, backend: str | None = None) -> dict:
    """A path of `count` tracks from `start` to `end`; scores are relative to the start."""
    tracks, hits, cal, vec = state.engine.path(start, end, count=count, backend=state.resolve_backend(backend))
    return {
        "start": tracks[0].track_id, "end": tracks[-1].track_id, "backend": vec.model.backend,
        "weights_kind": vec.model.weights_kind, "calibration": cal,
        "steps": [{**track_json(state, t), "score": round(h.score, 6), "raw_cosine": round(h.raw_cosine, 6)}
                  for t, h in zip(tracks, hits)],
    }


def artist_map(state: LibraryState, *, backend: str | None = None, calibration: str | None = None) -> dict:
    """The artist map: the engine's one layout, with each artist's genre."""
    b = state.resolve_backend(backend)
    ids, Y, cal = state.engine.layout(backend=b, calibration=calibration)
    model = state.model_info(b)
    points = []
    for aid, (x, y) in zip(ids.tolist(), Y.tolist()):
        a = state.artist_by_id.get(int(aid))
        if a is None:
            continue
        points.append({"artist_id": a.artist_id, "name": a.name, "x": round(x, 5), "y": round(y, 5),
                       "genre": state.genre_of.get(a.artist_id), "n_tracks": a.n_tracks})
    genres = sorted({p["genre"] for p in points if p["genre"]})
    return {"backend": b, "weights_kind": model.weights_kind, "calibration": cal, "method": layout_method(len(ids)),
            "genres": genres, "points": points}
