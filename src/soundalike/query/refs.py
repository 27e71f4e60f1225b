"""Tracks and artists addressed the way users name them (CONTRACTS "track reference").

A track reference is tried in this order: an existing file path; a sha256 prefix of at least
6 hex digits; a manifest ``track_id`` (``tracks.external_id``, exact); ``"Artist - Title"``
(:func:`~soundalike.naming.reference_key`: case, punctuation and a leading track number of the
title ignored; the artist may be the track's whole credit or its artist's name). It must name
exactly one track; otherwise the error is one line listing the closest candidates. A reference
from the network (``paths=False``) is never read as a
path, and with a :class:`~soundalike.query.suggest.TrackLookup` every step costs a bounded time;
references longer than :data:`MAX_REF_CHARS` are refused (a local file path may be longer).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import ParameterError, UnknownArtistError, UnknownTrackError
from ..library import artist_key
from ..naming import reference_key
from ..store import Artist, Track
from .suggest import TrackLookup

__all__ = ["resolve_track", "resolve_artist", "track_label", "track_reference_keys", "reference_key", "track_lookup",
           "MIN_PREFIX", "MAX_REF_CHARS"]

#: shortest sha256 prefix accepted as a track reference
MIN_PREFIX = 6
#: longest track reference accepted (a file path given locally may be longer)
MAX_REF_CHARS = 256
_HEX = re.compile(r"^[0-9a-f]+$")


def track_label(t: Track) -> str:
    """``"Artist - Title"`` as every surface shows it (CONTRACTS "Track title")."""
    return f"{t.artist} - {t.title or Path(t.path).stem}"


def track_reference_keys(t: Track) -> set[str]:
    """The keys that name `t` (:func:`reference_key`, spaces dropped): by its shown credit and by
    its artist's name."""
    title = t.title or Path(t.path).stem
    return {reference_key(f"{a} - {title}").replace(" ", "") for a in (t.artist, t.artist_name) if a}


def _candidates(tracks: Sequence[Track], ref: str, n: int = 3) -> str:
    labels = {f"{track_label(t)} ({t.track_id[:8]})": t for t in tracks}
    keys = {artist_key(k): k for k in labels}
    close = difflib.get_close_matches(artist_key(ref), list(keys), n=n, cutoff=0.4)
    if not close:
        return " List the tracks with `soundalike tracks`."
    return " Closest: " + "; ".join(keys[c] for c in close) + "."


def track_lookup(tracks: Sequence[Track]) -> TrackLookup:
    """The bounded-cost indexes over `tracks`, with this module's naming rules."""
    return TrackLookup(tracks, key=artist_key, label=track_label, title=lambda t: t.title or Path(t.path).stem,
                       names=track_reference_keys, name_key=_reference_name_key)


def _reference_name_key(ref: str) -> str:
    return reference_key(ref).replace(" ", "")


def _file_sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def resolve_track(tracks: Sequence[Track], ref: str, *, paths: bool = True, lookup: TrackLookup | None = None) -> Track:
    """The one track `ref` names (see the module docstring).

    Parameters
    ----------
    paths : bool
        Try `ref` as a file path first; False for references from the network.
    lookup : TrackLookup, optional
        Indexes over the same `tracks` (:func:`track_lookup`): every step then costs a bounded time.

    Raises
    ------
    UnknownTrackError   unknown or ambiguous, with the closest candidates in one line
    ParameterError      a reference (not a local path) longer than MAX_REF_CHARS
    """
    ref = str(ref).strip()
    if not ref:
        raise UnknownTrackError("An empty track reference; give a path, a track id prefix, a manifest id or 'Artist - Title'.")
    if paths and _is_file(ref):
        p = Path(ref).expanduser()
        resolved = str(p.resolve())
        by_path = [t for t in tracks if t.path == resolved or t.path == ref]
        if by_path:
            return by_path[0]
        digest = _file_sha256(p)
        hit = [t for t in tracks if t.track_id == digest]
        if hit:
            return hit[0]
        raise UnknownTrackError(f"The file {ref!r} is not in this library; run `soundalike ingest` on its folder first.")
    if len(ref) > MAX_REF_CHARS:
        raise ParameterError(f"A track reference has {len(ref)} characters; the limit is {MAX_REF_CHARS}. "
                             "Give a track id (or a prefix of 6+ hex digits) or 'Artist - Title'.")
    if lookup is not None:
        return _resolve_indexed(lookup, ref, paths)
    low = ref.lower()
    if len(low) >= MIN_PREFIX and _HEX.match(low):
        hits = [t for t in tracks if t.track_id.startswith(low)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            shown = "; ".join(f"{t.track_id[:12]} {track_label(t)}" for t in hits[:5])
            raise UnknownTrackError(f"Track id prefix {ref!r} matches {len(hits)} tracks ({shown}); give more digits.")
    hits = [t for t in tracks if t.external_id is not None and t.external_id == ref]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        shown = "; ".join(f"{t.track_id[:12]} {track_label(t)}" for t in hits[:5])
        raise UnknownTrackError(f"Manifest id {ref!r} names {len(hits)} tracks ({shown}); use a track id prefix.")
    hits = _by_artist_title(tracks, ref)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        shown = "; ".join(f"{t.track_id[:12]} {t.path}" for t in hits[:5])
        raise UnknownTrackError(f"{ref!r} names {len(hits)} tracks ({shown}); use a track id prefix or a path.")
    raise UnknownTrackError(f"No track {ref!r} in this library (tried path, id prefix, manifest id, 'Artist - Title')."
                            + _candidates(tracks, ref))


def _is_file(ref: str) -> bool:
    try:
        return len(ref) < 4096 and Path(ref).expanduser().is_file()
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL byte, an unknown ~user
        return False


def _resolve_indexed(lookup: TrackLookup, ref: str, paths: bool) -> Track:
    """:func:`resolve_track`'s steps after the path, each in bounded time."""
    low = ref.lower()
    if len(low) >= MIN_PREFIX and _HEX.match(low):
        hits, n = lookup.by_prefix(low)
        if n == 1:
            return hits[0]
        if n > 1:
            shown = "; ".join(f"{t.track_id[:12]} {track_label(t)}" for t in hits)
            raise UnknownTrackError(f"Track id prefix {ref!r} matches {n} tracks ({shown}); give more digits.")
    hits = lookup.by_external_id(ref)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        shown = "; ".join(f"{t.track_id[:12]} {track_label(t)}" for t in hits[:5])
        raise UnknownTrackError(f"Manifest id {ref!r} names {len(hits)} tracks ({shown}); use a track id prefix.")
    hits = lookup.by_artist_title(ref)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        shown = "; ".join(f"{t.track_id[:12]} {track_label(t)}" for t in hits[:5])
        raise UnknownTrackError(f"{ref!r} names {len(hits)} tracks ({shown}); use a track id prefix.")
    tried = "path, id prefix, manifest id, 'Artist - Title'" if paths else "id prefix, manifest id, 'Artist - Title'"
    close = lookup.closest(ref)
    hint = " Closest: " + "; ".join(close) + "." if close else " List the tracks with GET /api/artists."
    raise UnknownTrackError(f"No track {ref!r} in this library (tried {tried})." + hint)


def _by_artist_title(tracks: Sequence[Track], ref: str) -> list[Track]:
    key = _reference_name_key(ref)
    if not key:
        return []
    return [t for t in tracks if key in track_reference_keys(t)]


def resolve_artist(artists: Sequence[Artist], ref: str | int) -> Artist:
    """The artist named `ref`: an artist id (int) or a name (normalised); the error lists close names."""
    if isinstance(ref, int):
        for a in artists:
            if a.artist_id == ref:
                return a
        raise UnknownArtistError(f"No artist with id {ref} in this library; list them with `soundalike tracks`.")
    key = artist_key(str(ref))
    for a in artists:
        if a.name_key == key:
            return a
    keys = {a.name_key: a.name for a in artists}
    close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.5)
    close += [k for k in keys if key and key in k and k not in close][:3]
    names = [keys[k] for k in close]
    hint = f" Did you mean: {', '.join(names)}?" if names else " List the artists with `soundalike tracks`."
    raise UnknownArtistError(f"Unknown artist {str(ref)!r}.{hint}", suggestions=names)
