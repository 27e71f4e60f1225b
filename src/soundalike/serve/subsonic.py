"""Subsonic / OpenSubsonic endpoints under ``/rest`` so players can use soundalike for similarity.

Ids are soundalike's own (CONTRACTS.md): a song id is the track's sha256 hex, an artist id the
integer ``artist_id`` (as a string), an album id ``al-<16 hex>`` derived from artist and album
name. Every endpoint answers GET and POST, with or without the ``.view`` suffix, in XML
(default), JSON or JSONP (``f``).

Similarity endpoints: ``getSimilarSongs(2)`` (seed = song, album or artist; repeated ``id`` =
several seeds), ``getArtistInfo(2)`` (``similarArtist``), and the ``sonicSimilarity`` extension
(``getSonicSimilarTracks``, ``findSonicPath``) whose ``similarity`` is the calibrated score in
[0, 1] (percentile among all track pairs; 1.0 for the song itself). soundalike extras:
``artistGap=N`` (no artist repeats within N results) and ``excludeArtist=true``.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import ParameterError, SoundalikeError
from ..store import Track
from .access import LoginThrottle, client_address
from .library_state import LibraryState
from .queries import similar_artists, similar_tracks, track_path
from .subsonic_wire import Params, SubsonicError, authenticate, failed, ok, read_params

__all__ = ["router", "EXTENSIONS"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/rest")

EXTENSIONS = [
    {"name": "apiKeyAuthentication", "versions": [1]},
    {"name": "formPost", "versions": [1]},
    {"name": "sonicSimilarity", "versions": [1]},
]
IGNORED_ARTICLES = "The El La Los Las Le Les"
#: most seeds (repeated ``id``) one similarity query takes
MAX_SEEDS = 50
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPES = {".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac",
                  ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
                  ".aif": "audio/aiff", ".aiff": "audio/aiff", ".wma": "audio/x-ms-wma", ".webm": "audio/webm"}


# --- entities --------------------------------------------------------------------------------
def _created(state: LibraryState) -> str:
    try:
        ts = os.stat(state.settings.db).st_mtime
    except OSError:
        ts = 0.0
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(t: Track) -> int | None:
    try:
        return Path(t.path).stat().st_size
    except OSError:
        return None


def child(state: LibraryState, t: Track) -> dict:
    """A song as the Subsonic ``Child`` element."""
    suffix = Path(t.path).suffix.lower()
    al = state.albums[state.album_of_track[t.track_id]]
    d = {
        "id": t.track_id, "parent": al.id, "isDir": False, "title": t.title or Path(t.path).stem,
        "album": al.name, "artist": t.artist, "albumId": al.id, "artistId": str(t.artist_id),
        "type": "music", "mediaType": "song", "isVideo": False,
        "duration": int(round(t.duration_s)) if t.duration_s else None,
        "suffix": suffix.lstrip(".") or None,
        "contentType": _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(t.path)[0] or "application/octet-stream",
        "size": _size(t), "genre": t.genres[0] if t.genres else None,
        "path": f"{t.artist}/{Path(t.path).name}", "coverArt": t.track_id,
    }
    if t.genres:
        d["genres"] = [{"name": g} for g in t.genres]
    return {k: v for k, v in d.items() if v is not None}


def artist_id3(state: LibraryState, artist_id: int) -> dict:
    a = state.artist_by_id[artist_id]
    return {"id": str(a.artist_id), "name": a.name, "albumCount": len(state.albums_by_artist.get(a.artist_id, []))}


def album_id3(state: LibraryState, album_id: str) -> dict:
    al = state.albums[album_id]
    tracks = [state.track_by_id[t] for t in al.track_ids]
    genres = [g for t in tracks for g in t.genres]
    d = {
        "id": al.id, "name": al.name, "artist": state.artist_by_id[al.artist_id].name, "artistId": str(al.artist_id),
        "songCount": len(tracks), "duration": int(round(sum(t.duration_s or 0.0 for t in tracks))),
        "created": _created(state), "coverArt": al.id,
    }
    if genres:
        d["genre"] = max(sorted(set(genres)), key=genres.count)
    return d


def _artist(state: LibraryState, raw: str) -> int:
    try:
        aid = int(raw)
    except ValueError:
        raise SubsonicError(70, f"Artist not found: {raw!r}.") from None
    if aid not in state.artist_by_id:
        raise SubsonicError(70, f"Artist not found: {raw!r}.")
    return aid


def _album(state: LibraryState, raw: str) -> str:
    if raw not in state.albums:
        raise SubsonicError(70, f"Album not found: {raw!r}.")
    return raw


def _song(state: LibraryState, raw: str) -> Track:
    t = state.track_by_id.get(raw)
    if t is None:
        raise SubsonicError(70, f"Song not found: {raw!r}.")
    return t


def _seed_tracks(state: LibraryState, ids: list[str]) -> list[str]:
    """Track ids behind song, album and artist ids (several ids = several seeds, at most MAX_SEEDS)."""
    if len(ids) > MAX_SEEDS:
        raise SubsonicError(0, f"{len(ids)} ids given; a similarity query takes at most {MAX_SEEDS} seeds.")
    out: list[str] = []
    for raw in ids:
        if _HEX64.match(raw):
            out.append(_song(state, raw).track_id)
        elif raw.startswith("al-"):
            out.extend(state.albums[_album(state, raw)].track_ids)
        else:
            out.extend(t.track_id for t in state.tracks_by_artist.get(_artist(state, raw), []))
    backend = state.default_backend
    embedded = state.extra(("embedded", backend), lambda: frozenset(state.engine.vectors(backend).track_ids))
    out = [t for t in dict.fromkeys(out) if t in embedded]
    if not out:
        raise SubsonicError(70, "None of the given items has analysed audio yet; run `soundalike embed`.")
    return out


# --- endpoints -------------------------------------------------------------------------------
def _ping(state, p):
    return {}


def _license(state, p):
    return {"license": {"valid": True}}


def _extensions(state, p):
    return {"openSubsonicExtensions": EXTENSIONS}


def _music_folders(state, p):
    return {"musicFolders": {"musicFolder": [{"id": 1, "name": "soundalike"}]}}


def _artists(state, p):
    index: dict[str, list[dict]] = {}
    for a in sorted(state.artists, key=lambda a: a.name_key):
        first = a.name.strip()[:1].upper()
        index.setdefault(first if first.isalpha() else "#", []).append(artist_id3(state, a.artist_id))
    return {"artists": {"ignoredArticles": IGNORED_ARTICLES,
                        "index": [{"name": k, "artist": v} for k, v in sorted(index.items())]}}


def _artist_ep(state, p):
    aid = _artist(state, p.require("id"))
    return {"artist": {**artist_id3(state, aid),
                       "album": [album_id3(state, al.id) for al in state.albums_by_artist.get(aid, [])]}}


def _album_ep(state, p):
    al = state.albums[_album(state, p.require("id"))]
    return {"album": {**album_id3(state, al.id), "song": [child(state, state.track_by_id[t]) for t in al.track_ids]}}


def _song_ep(state, p):
    return {"song": child(state, _song(state, p.require("id")))}


def _search3(state, p):
    q = (p.get("query") or "").strip().strip('"').casefold()
    ac, ao = p.int("artistCount", 20, hi=1000), p.int("artistOffset", 0, hi=10**9)
    bc, bo = p.int("albumCount", 20, hi=1000), p.int("albumOffset", 0, hi=10**9)
    sc, so = p.int("songCount", 20, hi=1000), p.int("songOffset", 0, hi=10**9)
    q = q.replace("\n", " ")[:256]
    keys = state.extra(("search3",), lambda: _search_keys(state))
    artists = [state.artists[i] for i, k in enumerate(keys[0]) if q in k]
    album_list = list(state.albums.values())
    albums = [album_list[i] for i, k in enumerate(keys[1]) if q in k]
    songs = [state.tracks[i] for i, k in enumerate(keys[2]) if q in k]
    return {"searchResult3": {
        "artist": [artist_id3(state, a.artist_id) for a in artists[ao:ao + ac]],
        "album": [album_id3(state, al.id) for al in albums[bo:bo + bc]],
        "song": [child(state, t) for t in songs[so:so + sc]],
    }}


def _search_keys(state: LibraryState) -> tuple[list[str], list[str], list[str]]:
    """Casefolded search texts of artists, albums and songs, built once per catalogue (search3)."""
    return ([a.name.casefold() for a in state.artists], [al.name.casefold() for al in state.albums.values()],
            [f"{t.title or Path(t.path).stem}\n{t.artist}\n{t.album or ''}".casefold() for t in state.tracks])


def _similar(state: LibraryState, p: Params, count_default: int) -> list[tuple[dict, float]]:
    ids = p.all("id")
    if not ids or not ids[0]:
        raise SubsonicError(10, "Required parameter is missing: id.")
    seeds = _seed_tracks(state, ids)
    doc = similar_tracks(state, seeds, k=p.int("count", count_default, lo=1, hi=500),
                         exclude_artist=p.bool("excludeArtist"), artist_gap=p.int("artistGap", 0, hi=100))
    return [(child(state, state.track_by_id[n["track_id"]]), n["score"]) for n in doc["neighbours"]]


def _similar_songs2(state, p):
    return {"similarSongs2": {"song": [c for c, _ in _similar(state, p, 50)]}}


def _similar_songs(state, p):
    return {"similarSongs": {"song": [c for c, _ in _similar(state, p, 50)]}}


def _sonic_similar(state, p):
    return {"sonicMatch": [{"entry": c, "similarity": s} for c, s in _similar(state, p, 10)]}


def _sonic_path(state, p):
    start, end = _song(state, p.require("startSongId")), _song(state, p.require("endSongId"))
    doc = track_path(state, start.track_id, end.track_id, count=p.int("count", 25, lo=2, hi=500))
    return {"sonicMatch": [{"entry": child(state, state.track_by_id[s["track_id"]]), "similarity": s["score"]}
                           for s in doc["steps"]]}


def _artist_info(state: LibraryState, p: Params) -> dict:
    aid = _artist(state, p.require("id"))
    count = p.int("count", 20, lo=1, hi=500)
    try:
        similar = similar_artists(state, aid, k=count)["neighbours"]
    except ParameterError:  # the artist has no analysed audio yet
        similar = []
    return {"similarArtist": [artist_id3(state, nb["artist_id"]) for nb in similar if nb["artist_id"] in state.artist_by_id]}


def _artist_info2(state, p):
    return {"artistInfo2": _artist_info(state, p)}


def _artist_info1(state, p):
    return {"artistInfo": _artist_info(state, p)}


ENDPOINTS = {
    "ping": _ping, "getLicense": _license, "getOpenSubsonicExtensions": _extensions,
    "getMusicFolders": _music_folders, "getArtists": _artists, "getArtist": _artist_ep, "getAlbum": _album_ep,
    "getSong": _song_ep, "search3": _search3, "getSimilarSongs": _similar_songs, "getSimilarSongs2": _similar_songs2,
    "getArtistInfo": _artist_info1, "getArtistInfo2": _artist_info2,
    "getSonicSimilarTracks": _sonic_similar, "findSonicPath": _sonic_path,
}
from .subsonic_browse import BINARY_ENDPOINTS, BROWSE_ENDPOINTS  # noqa: E402 (uses the entities above)

ENDPOINTS.update(BROWSE_ENDPOINTS)
#: Endpoints the OpenSubsonic spec requires to answer without authentication.
PUBLIC = {"getOpenSubsonicExtensions"}
BINARY = {"stream", "download"}


def _stream(state: LibraryState, p: Params) -> Response:
    t = _song(state, p.require("id"))
    path = Path(t.path)  # from the store, never from the request
    if not path.is_file():
        raise SubsonicError(70, f"The file of song {t.track_id} is missing on the server.")
    suffix = path.suffix.lower()
    return FileResponse(path, media_type=_CONTENT_TYPES.get(suffix) or "application/octet-stream",
                        filename=path.name if p.get("download") else None)


def _login(request: Request, params: Params, settings) -> None:
    """Subsonic authentication, slowed per client after repeated failures (serve.access)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = client_address(request.scope)
    wait = throttle.wait_s(client)
    if wait > 0:
        raise SubsonicError(40, f"Too many failed logins from this address; retry in {max(1, int(wait + 0.999))} s.")
    try:
        authenticate(params, settings)
    except SubsonicError as exc:
        if exc.code in (40, 44):
            throttle.failed(client, user=params.get("u"), how="subsonic " + ("api key" if exc.code == 44 else "password"))
        raise
    throttle.succeeded(client)


@router.api_route("/{endpoint}", methods=["GET", "HEAD", "POST"], include_in_schema=False)
async def subsonic(endpoint: str, request: Request) -> Response:
    name = endpoint[:-5] if endpoint.endswith(".view") else endpoint
    try:
        params = await read_params(request)
    except Exception:  # a malformed form body
        params = Params([])
    fmt, callback = (params.get("f") or "xml").lower(), params.get("callback")
    state: LibraryState = request.app.state.library
    try:
        if name not in PUBLIC:
            _login(request, params, state.settings)
        if name in BINARY:
            return _stream(state, params)
        if name in BINARY_ENDPOINTS:
            return await run_in_threadpool(BINARY_ENDPOINTS[name], state, params)
        handler = ENDPOINTS.get(name)
        if handler is None:
            resp = failed(SubsonicError(0, f"Endpoint {name!r} is not implemented by soundalike."), fmt, callback)
            resp.status_code = 404
            return resp
        # queries and rendering off the event loop: one slow answer never holds the others
        return await run_in_threadpool(lambda: ok(handler(state, params), fmt, callback))
    except SubsonicError as exc:
        return failed(exc, fmt, callback)
    except SoundalikeError as exc:
        code = 70 if isinstance(exc, LookupError) else 0
        if isinstance(exc, ParameterError):
            code = 0
        return failed(SubsonicError(code, str(exc)), fmt, callback)
    except Exception:  # never a server error for a player: the envelope says what failed
        log.exception("unexpected error in Subsonic %s", name[:64])
        return failed(SubsonicError(0, f"Internal error in {name[:64]!r}; see the server log."), fmt, callback)
