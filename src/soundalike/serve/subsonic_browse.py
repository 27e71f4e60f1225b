"""Subsonic endpoints a player needs to browse soundalike's own server.

``getIndexes``/``getMusicDirectory`` (folder view: artist → albums → songs), ``getAlbumList`` and
``getAlbumList2`` (every list type the spec names), ``getGenres``, ``getRandomSongs``,
``getCoverArt`` (the picture embedded in the file, read with mutagen; else error 70 "not found")
and ``scrobble`` (accepted; play counts are kept in memory for the ``recent``/``frequent`` lists,
because the service opens the store read-only).

The store has no release years and no ratings: ``byYear`` and ``highest``/``starred`` lists are
empty, ``fromYear``/``toYear`` filters leave nothing out, and ``newest`` is alphabetical.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter
from pathlib import Path

from fastapi.responses import Response

from .library_state import LibraryState
from .subsonic import IGNORED_ARTICLES, _album, _artist, _song, album_id3, artist_id3, child
from .subsonic_wire import Params, SubsonicError

__all__ = ["BROWSE_ENDPOINTS", "BINARY_ENDPOINTS", "embedded_picture", "PlayLog"]

ALBUM_LIST_TYPES = ("random", "newest", "highest", "frequent", "recent", "alphabeticalByName",
                    "alphabeticalByArtist", "starred", "byYear", "byGenre")


# --- play log (scrobble) -----------------------------------------------------------------------
class PlayLog:
    """Plays reported by ``scrobble`` since the server started: count and last time per song."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count: Counter[str] = Counter()
        self.last: dict[str, float] = {}

    def record(self, track_id: str, when: float) -> None:
        with self._lock:
            self.count[track_id] += 1
            self.last[track_id] = max(when, self.last.get(track_id, 0.0))


def _play_log(state: LibraryState) -> PlayLog:
    log = getattr(state, "play_log", None)
    if log is None:
        log = state.play_log = PlayLog()  # type: ignore[attr-defined]
    return log


# --- cover art ---------------------------------------------------------------------------------
def embedded_picture(path: str | Path) -> tuple[bytes, str] | None:
    """The front cover (else the first picture) embedded in an audio file, as ``(bytes, mime)``.

    Reads FLAC picture blocks, ID3 ``APIC`` frames, MP4 ``covr`` atoms and Vorbis/Opus
    ``METADATA_BLOCK_PICTURE`` comments with mutagen; ``None`` when the file has none or is unreadable.
    """
    import mutagen
    from mutagen.flac import Picture

    try:
        f = mutagen.File(str(path))
    except Exception:  # unreadable or not audio: no picture, never a server error
        return None
    if f is None:
        return None
    pictures: list[tuple[int, bytes, str]] = []  # (picture type, data, mime)
    for p in getattr(f, "pictures", None) or []:  # FLAC
        pictures.append((p.type, p.data, p.mime))
    tags = f.tags
    if tags is not None:
        if hasattr(tags, "getall"):  # ID3
            pictures += [(fr.type, fr.data, fr.mime) for fr in tags.getall("APIC")]
        elif "covr" in tags:  # MP4
            for c in tags["covr"]:
                pictures.append((3, bytes(c), "image/png" if c.imageformat == c.FORMAT_PNG else "image/jpeg"))
        else:  # Vorbis comments (Ogg Vorbis, Opus)
            for b64 in tags.get("metadata_block_picture", []) if hasattr(tags, "get") else []:
                try:
                    p = Picture(base64.b64decode(b64))
                except Exception:
                    continue
                pictures.append((p.type, p.data, p.mime))
    if not pictures:
        return None
    _, data, mime = sorted(pictures, key=lambda p: p[0] != 3)[0]  # type 3 = front cover
    return data, mime or "image/jpeg"


def _cover_tracks(state: LibraryState, raw: str) -> list[str]:
    """Songs whose embedded art may stand for the cover-art id (song, album or artist id)."""
    if raw in state.track_by_id:
        return [raw]
    if raw in state.albums:
        return list(state.albums[raw].track_ids)
    if raw.isascii() and raw.isdigit() and len(raw) < 19 and int(raw) in state.artist_by_id:
        return [t.track_id for t in state.tracks_by_artist.get(int(raw), [])]
    raise SubsonicError(70, f"Cover art not found: {raw!r} is no song, album or artist id.")


def _cover_art(state: LibraryState, p: Params) -> Response:
    raw = p.require("id")
    for tid in _cover_tracks(state, raw):
        pic = embedded_picture(state.track_by_id[tid].path)
        if pic is not None:
            return Response(pic[0], media_type=pic[1])
    raise SubsonicError(70, f"Cover art not found: no file of {raw!r} has an embedded picture.")


# --- folder browsing ---------------------------------------------------------------------------
def _album_dir(state: LibraryState, album_id: str) -> dict:
    """An album as a directory ``Child`` (``isDir``), as in getMusicDirectory and getAlbumList."""
    al = state.albums[album_id]
    a = artist_id3(state, al.artist_id)
    return {"id": al.id, "parent": str(al.artist_id), "isDir": True, "title": al.name, "album": al.name,
            "artist": a["name"], "artistId": a["id"], "coverArt": al.id, "songCount": len(al.track_ids)}


def _indexes(state: LibraryState, p: Params) -> dict:
    index: dict[str, list[dict]] = {}
    for a in sorted(state.artists, key=lambda a: a.name_key):
        first = a.name.strip()[:1].upper()
        index.setdefault(first if first.isalpha() else "#", []).append({"id": str(a.artist_id), "name": a.name})
    return {"indexes": {"ignoredArticles": IGNORED_ARTICLES, "lastModified": int(_mtime(state) * 1000),
                        "index": [{"name": k, "artist": v} for k, v in sorted(index.items())]}}


def _mtime(state: LibraryState) -> float:
    try:
        return Path(state.settings.db).stat().st_mtime
    except OSError:
        return 0.0


def _music_directory(state: LibraryState, p: Params) -> dict:
    raw = p.require("id")
    if raw.startswith("al-"):
        al = state.albums[_album(state, raw)]
        return {"directory": {"id": al.id, "name": al.name, "parent": str(al.artist_id),
                              "child": [child(state, state.track_by_id[t]) for t in al.track_ids]}}
    aid = _artist(state, raw)
    albums = sorted(state.albums_by_artist.get(aid, []), key=lambda al: al.name.casefold())
    return {"directory": {"id": str(aid), "name": state.artist_by_id[aid].name, "parent": "1",
                          "child": [_album_dir(state, al.id) for al in albums]}}


# --- lists ---------------------------------------------------------------------------------------
def _album_ids(state: LibraryState, p: Params) -> list[str]:
    kind = p.require("type")
    if kind not in ALBUM_LIST_TYPES:
        raise SubsonicError(0, f"type={kind!r} is not an album list type; use one of {', '.join(ALBUM_LIST_TYPES)}.")
    size, offset = p.int("size", 10, lo=1, hi=500), p.int("offset", 0, hi=10**9)
    albums = list(state.albums.values())
    plays = _play_log(state)
    if kind == "random":
        random.shuffle(albums)
        return [al.id for al in albums[:size]]
    if kind in ("alphabeticalByName", "newest"):  # no dates in the store: newest falls back to names
        albums.sort(key=lambda al: (al.name.casefold(), state.artist_by_id[al.artist_id].name_key))
    elif kind == "alphabeticalByArtist":
        albums.sort(key=lambda al: (state.artist_by_id[al.artist_id].name_key, al.name.casefold()))
    elif kind == "byGenre":
        genre = p.require("genre").casefold()
        albums = [al for al in albums if any(genre == g.casefold() for t in al.track_ids
                                             for g in state.track_by_id[t].genres)]
        albums.sort(key=lambda al: al.name.casefold())
    elif kind in ("frequent", "recent"):
        def score(al) -> float:
            if kind == "frequent":
                return sum(plays.count[t] for t in al.track_ids)
            return max((plays.last.get(t, 0.0) for t in al.track_ids), default=0.0)

        albums = sorted((al for al in albums if score(al) > 0), key=score, reverse=True)
    else:  # highest, starred, byYear: the store has no ratings, stars or years
        albums = []
    return [al.id for al in albums[offset:offset + size]]


def _album_list2(state: LibraryState, p: Params) -> dict:
    return {"albumList2": {"album": [{**album_id3(state, a), "coverArt": a} for a in _album_ids(state, p)]}}


def _album_list(state: LibraryState, p: Params) -> dict:
    return {"albumList": {"album": [_album_dir(state, a) for a in _album_ids(state, p)]}}


def _genres(state: LibraryState, p: Params) -> dict:
    songs: Counter[str] = Counter()
    albums: dict[str, set[str]] = {}
    for t in state.tracks:
        for g in dict.fromkeys(t.genres):
            songs[g] += 1
            albums.setdefault(g, set()).add(state.album_of_track[t.track_id])
    return {"genres": {"genre": [{"value": g, "songCount": songs[g], "albumCount": len(albums[g])}
                                 for g in sorted(songs, key=str.casefold)]}}


def _random_songs(state: LibraryState, p: Params) -> dict:
    size = p.int("size", 10, lo=1, hi=500)
    genre = (p.get("genre") or "").casefold()
    pool = [t for t in state.tracks if not genre or any(g.casefold() == genre for g in t.genres)]
    picked = random.sample(pool, min(size, len(pool)))
    return {"randomSongs": {"song": [child(state, t) for t in picked]}}


def _scrobble(state: LibraryState, p: Params) -> dict:
    ids = p.all("id")
    if not ids or not ids[0]:
        raise SubsonicError(10, "Required parameter is missing: id.")
    times = p.all("time")
    tracks = [_song(state, raw) for raw in ids]  # every id is checked before anything is recorded
    if p.bool("submission", True):
        log = _play_log(state)
        for i, t in enumerate(tracks):
            when = _millis(times[i]) / 1000 if i < len(times) else time.time()
            log.record(t.track_id, when)
    return {}


def _millis(raw: str) -> int:
    """Milliseconds since 1970 as sent by a player (``time``), within the years 1970-9999."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15 or int(raw) > 253402300799999:
        raise SubsonicError(0, f"time={raw[:40]!r} is not milliseconds since 1970.")
    return int(raw)


BROWSE_ENDPOINTS = {
    "getIndexes": _indexes, "getMusicDirectory": _music_directory, "getAlbumList": _album_list,
    "getAlbumList2": _album_list2, "getGenres": _genres, "getRandomSongs": _random_songs, "scrobble": _scrobble,
}
#: Endpoints that answer with bytes rather than a Subsonic document.
BINARY_ENDPOINTS = {"getCoverArt": _cover_art}
