"""The JSON API under ``/api``: artists, similarity, tracks, paths, the map, clip queries, health."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import ParameterError
from ..signals import SIGNALS
from .errors import ApiError
from .library_state import LibraryState
from .models import (
    ArtistDetail,
    ArtistMap,
    ArtistPage,
    ErrorResponse,
    Health,
    QueryResult,
    RescanStarted,
    SimilarArtists,
    SimilarTracks,
    TrackOut,
    TrackPath,
)
from .queries import artist_map, parse_signals, similar_artists, similar_tracks, track_json, track_path
from .upload import Embedder, decode_upload

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")

_ERRORS = {404: {"model": ErrorResponse, "description": "Unknown artist or track"},
           422: {"model": ErrorResponse, "description": "Bad parameter"}}
TRACK_ID = Path(description="Track id: lowercase sha256 hex of the file", min_length=1, max_length=128)
K = Query(ge=1, le=500, description="How many neighbours")
BACKEND = Query(description="Backend whose vectors answer (default: the library's best)", max_length=100)
CALIBRATION = Query(description="Calibration (default: the backend's validated default)", max_length=40)
LAYER = Query(ge=0, le=256, description="Layer of a multi-layer backend (default: the model's)")
#: most seed tracks one query takes (each is resolved in bounded time)
MAX_SEEDS = 50


def _state(request: Request) -> LibraryState:
    return request.app.state.library


def _artist_json(state: LibraryState, a) -> dict:
    return {"artist_id": a.artist_id, "name": a.name, "n_tracks": a.n_tracks, "genre": state.genre_of.get(a.artist_id),
            "mbid": a.mbid}


@router.get("/health", response_model=Health)
def health(request: Request) -> dict:
    """Liveness plus what this library offers (backends, calibrations, signals)."""
    st = _state(request)
    counts = {m.backend: None for m in st.models}
    return {
        "status": "ok", "version": __version__, "n_tracks": len(st.tracks), "n_artists": len(st.artists),
        "backends": [{"name": m.backend, "weights_kind": m.weights_kind, "dim": m.dim, "n_tracks": counts[m.backend]}
                     for m in st.models],
        "default_backend": st.default_backend, "default_calibration": st.default_calibration,
        "calibrations": list(st.calibrations), "signals": list(SIGNALS),
        "subsonic": st.settings.subsonic_enabled, "max_upload_bytes": st.settings.max_upload_bytes,
        "classifier": st.settings.classifier is not None,
    }


@router.get("/artists", response_model=ArtistPage, responses=_ERRORS)
def list_artists(
    request: Request,
    q: Annotated[str | None, Query(description="Search: part of the name (case and spacing ignored)", max_length=200)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict:
    """Artists, paged, optionally filtered by a name search."""
    st = _state(request)
    found = st.find_artists(q)
    return {"total": len(found), "offset": offset, "limit": limit,
            "artists": [_artist_json(st, a) for a in found[offset:offset + limit]]}


@router.get("/artists/{artist_id}", response_model=ArtistDetail, responses=_ERRORS)
def get_artist(request: Request, artist_id: Annotated[int, Path(description="Artist id")]) -> dict:
    """One artist with its tracks."""
    st = _state(request)
    a = st.artist(artist_id)
    return {**_artist_json(st, a), "tracks": [track_json(st, t) for t in st.tracks_by_artist.get(a.artist_id, [])]}


@router.get("/artists/{artist_id}/similar", response_model=SimilarArtists, responses=_ERRORS)
def get_similar_artists(
    request: Request,
    artist_id: Annotated[int, Path(description="Artist id")],
    k: Annotated[int, K] = 10,
    signals: Annotated[list[str] | None, Query(description="Signals: audio (default), or hybrid ones: "
                                                           "descriptors, tags, refs, graph (repeat or comma-separate)")] = None,
    calibration: Annotated[str | None, CALIBRATION] = None,
    backend: Annotated[str | None, BACKEND] = None,
    profile: Annotated[str, Query(description="Artist profile: centroid or set", max_length=20)] = "centroid",
    layer: Annotated[int | None, LAYER] = None,
) -> dict:
    """Artists that sound like this one, best first, with calibrated scores and per-signal parts."""
    return similar_artists(_state(request), artist_id, k=k, signals=signals, calibration=calibration, backend=backend,
                           profile=profile, layer=layer)


@router.get("/tracks/{track_id}", response_model=TrackOut, responses=_ERRORS)
def get_track(request: Request, track_id: Annotated[str, TRACK_ID]) -> dict:
    st = _state(request)
    return track_json(st, st.track(track_id))


@router.get("/tracks/{track_id}/similar", response_model=SimilarTracks, responses=_ERRORS)
def get_similar_tracks(
    request: Request,
    track_id: Annotated[str, TRACK_ID],
    k: Annotated[int, K] = 10,
    exclude_artist: Annotated[bool, Query(description="Leave out tracks by the seeds' artists")] = False,
    artist_gap: Annotated[int, Query(ge=0, le=100, description="No artist repeats within this many results")] = 0,
    seed: Annotated[list[str] | None, Query(description="More seed track ids (multi-seed: their mean vector)")] = None,
    include_seeds: Annotated[bool, Query(description="Keep the seeds in the answer")] = False,
    backend: Annotated[str | None, BACKEND] = None,
    calibration: Annotated[str | None, CALIBRATION] = None,
    layer: Annotated[int | None, LAYER] = None,
    signals: Annotated[list[str] | None, Query(description="Track queries take signals=audio only")] = None,
) -> dict:
    """Tracks that sound like this one (or like several seeds together); ids or any track reference."""
    seeds = list(dict.fromkeys([track_id, *(seed or [])]))
    if len(seeds) > MAX_SEEDS:
        raise ParameterError(f"{len(seeds)} seeds given; a track query takes at most {MAX_SEEDS}.")
    if parse_signals(signals) != ["audio"]:
        raise ParameterError("Track queries use signals=audio; hybrid signals blend artist scores (ask an artist).")
    return similar_tracks(_state(request), seeds, k=k, exclude_artist=exclude_artist, artist_gap=artist_gap,
                          backend=backend, exclude_seeds=not include_seeds, calibration=calibration, layer=layer)


@router.get("/path", response_model=TrackPath, responses=_ERRORS)
def get_path(
    request: Request,
    start: Annotated[str, Query(description="Start track id", min_length=1, max_length=128)],
    end: Annotated[str, Query(description="End track id", min_length=1, max_length=128)],
    count: Annotated[int, Query(ge=2, le=200, description="Tracks in the path, start and end included")] = 10,
    backend: Annotated[str | None, BACKEND] = None,
) -> dict:
    """A sonic path from one track to another."""
    return track_path(_state(request), start, end, count=count, backend=backend)


@router.get("/map", response_model=ArtistMap, responses=_ERRORS)
def get_map(request: Request, backend: Annotated[str | None, BACKEND] = None,
            calibration: Annotated[str | None, CALIBRATION] = None) -> dict:
    """2-D artist map (coordinates in [0, 1]) with each artist's genre: the same layout as `soundalike map`."""
    return artist_map(_state(request), backend=backend, calibration=calibration)


def _embedder(st: LibraryState, backend: str) -> Embedder:
    vec = st.engine.vectors(backend)
    return st.extra(("embedder", backend), lambda: Embedder(vec.model, vec.layer))


def _genre(st: LibraryState, backend: str, vector) -> tuple[list[dict] | None, str | None]:
    path = st.settings.classifier
    if path is None:
        return None, "No genre classifier configured (train one with `soundalike classify train`, then set SOUNDALIKE_CLASSIFIER)."
    from ..classify import load_model

    model = st.extra(("classifier", str(path)), lambda: load_model(path))
    if set(model.members) != {backend}:
        return None, f"The classifier needs features of {', '.join(model.members)}; the upload was embedded with {backend}."
    proba = model.predict_proba({backend: vector[None, :]})[0]
    order = proba.argsort()[::-1][:5]
    return [{"genre": str(model.classes_[i]), "probability": round(float(proba[i]), 4)} for i in order], None


@router.post("/query", response_model=QueryResult,
             responses={**_ERRORS, 413: {"model": ErrorResponse, "description": "Upload too large"},
                        415: {"model": ErrorResponse, "description": "Not audio"}})
async def query_clip(
    request: Request,
    file: Annotated[UploadFile, File(description="An audio clip (WAV, FLAC, OGG, MP3, M4A, ...)")],
    k: Annotated[int, K] = 10,
    backend: Annotated[str | None, BACKEND] = None,
) -> dict:
    """Upload a clip: its nearest artists and tracks (and its genre when a classifier is set)."""
    st = _state(request)
    limit = st.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "UploadTooLarge", f"The upload is larger than the {limit} byte limit; send a shorter clip.")
    b = st.resolve_backend(backend)
    sem: asyncio.Semaphore = request.app.state.query_slots

    def work() -> dict:
        emb = _embedder(st, b)
        windows = decode_upload(data, max_bytes=limit, policy=emb.policy, sample_rate=emb.sample_rate)
        clip = emb.embed(windows)
        near = st.engine.nearest_to_vector(clip.vector, k=k, backend=b)
        artists = [{**nb, "genre": st.genre_of.get(nb["artist_id"])} for nb in near["artists"]]
        genre, note = _genre(st, b, clip.vector)
        return {
            "filename": (file.filename or None) and file.filename[:200], "size_bytes": len(data),
            "duration_s": clip.duration_s, "n_windows": clip.n_windows, "backend": b,
            "weights_kind": emb.model.weights_kind, "model_matches_library": emb.matches_library,
            "calibration": near["calibration"], "artists": artists,
            "tracks": [{**nb, **track_json(st, st.track_by_id[nb["track_id"]])} for nb in near["tracks"]],
            "genre": genre, "genre_note": note,
        }

    async with sem:
        return await run_in_threadpool(work)


@router.post("/admin/rescan", response_model=RescanStarted, status_code=202,
             responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
def rescan(request: Request) -> dict:
    """Ingest and embed new files of the library folder, then reload (needs credentials).

    Any credential the access rule accepts will do (the bearer token, HTTP Basic, the API key, or
    the page's session with its CSRF header); with none configured, writes are disabled.
    """
    st = _state(request)
    if not st.settings.credentials_configured:
        raise ApiError(403, "Forbidden", "Write endpoints are disabled: set SOUNDALIKE_API_TOKEN (or a Subsonic "
                                         "account) to enable them.")
    if getattr(request.state, "principal", None) is None:  # --public: reads open, writes still need credentials
        raise ApiError(401, "Unauthorized", "Send the token as 'Authorization: Bearer <SOUNDALIKE_API_TOKEN>' "
                                            "(or HTTP Basic with the Subsonic account).",
                       headers={"WWW-Authenticate": "Bearer"})
    root = st.settings.library_root
    if root is None:
        raise ApiError(409, "Conflict", "No library folder configured; set SOUNDALIKE_LIBRARY_ROOT (or serve --library).")
    if st.settings.watch:  # the watcher is the store's one writer
        raise ApiError(409, "Conflict", "The library is watched (serve --watch): its changes are analysed as they happen.")
    app = request.app
    if getattr(app.state, "rescan_thread", None) is not None and app.state.rescan_thread.is_alive():
        raise ApiError(409, "Conflict", "A rescan is already running; wait for it to finish.")
    t = threading.Thread(target=_run_rescan, args=(app, st), name="soundalike-rescan", daemon=True)
    app.state.rescan_thread = t
    t.start()
    return {"status": "started", "root": str(root)}


def _run_rescan(app, st: LibraryState) -> None:
    from ..analysis import Folder, InProcess, analyse
    from ..audio import WindowPolicy
    from ..backends import load_backend
    from ..query import refresh_calibrators
    from ..store import Store

    try:
        with Store(st.settings.db) as store:
            run_id = store.start_run(["serve", "rescan", str(st.settings.library_root)])
            policies = {m.config.get("window", "middle") for m in st.models} or {"middle"}
            policy = WindowPolicy.parse(sorted(policies)[0])
            backends = [load_backend(b) for b in st.backends]
            # the one analysis path, in this process (the service's workers answer queries meanwhile):
            # each new file is decoded once, validated and embedded
            analyse(store, Folder(st.settings.library_root, st.settings.library_manifest), backends, policy=policy,
                    executor=InProcess(), run_id=run_id)
            store.finish_run(run_id)
            refresh_calibrators(store)  # new vectors: the default calibrations are decided again
        new = LibraryState(st.settings)
        new.warm_up()
        app.state.library = new
        log.info("rescan finished: %d tracks", len(new.tracks))
    except Exception:  # a failed rescan keeps serving the old state
        log.exception("rescan failed")
