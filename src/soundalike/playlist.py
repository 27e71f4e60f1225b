"""Playlists from one or several seeds, or a sonic path from one song to another.

A playlist asks the query engine for the tracks nearest to its seeds (and for paths, the
engine's ``findSonicPath`` walk) and never scores by itself. On the engine's ranking it applies
the playlist rules: the seeds are left out, no artist repeats within ``artist_gap`` tracks, and
no recording appears twice (nor a recording of a seed): the same recording on another album, in
another format or master is found by :class:`soundalike.recordings.DuplicateDetector`.

The JSON shape (``Playlist.as_json``) is fixed in CONTRACTS.md: ``{"seeds": [{"kind", "track_id"?,
"artist_id"?, "name"}], "rules": {...}, "tracks": [{"track_id", "path", "artist", "title",
"score"}]}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ParameterError, UnknownArtistError, UnknownTrackError
from .query import track_label
from .recordings import DuplicateDetector
from .store import Store, Track

__all__ = ["PlaylistSeed", "PlaylistTrack", "Playlist", "resolve_seeds", "make_playlist", "sonic_path",
           "write_m3u8", "DEFAULT_LENGTH", "DEFAULT_ARTIST_GAP"]

DEFAULT_LENGTH = 30
DEFAULT_ARTIST_GAP = 3


@dataclass(frozen=True)
class PlaylistSeed:
    """A seed as the user named it: one track, or an artist (all of its tracks)."""

    kind: str  # "track" | "artist"
    name: str
    track_ids: tuple[str, ...]
    track_id: str | None = None
    artist_id: int | None = None

    def as_json(self) -> dict:
        d: dict = {"kind": self.kind, "name": self.name}
        if self.track_id is not None:
            d["track_id"] = self.track_id
        if self.artist_id is not None:
            d["artist_id"] = self.artist_id
        return d


@dataclass(frozen=True)
class PlaylistTrack:
    track_id: str
    path: str
    artist: str
    title: str | None
    score: float

    def as_json(self) -> dict:
        return {"track_id": self.track_id, "path": self.path, "artist": self.artist, "title": self.title,
                "score": round(self.score, 6)}


@dataclass
class Playlist:
    seeds: list[PlaylistSeed]
    rules: dict
    tracks: list[PlaylistTrack] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"seeds": [s.as_json() for s in self.seeds], "rules": dict(self.rules),
                "tracks": [t.as_json() for t in self.tracks]}


# --- the query engine: the one place playlists ask it ----------------------------------------
class _Engine:
    """Playlists' view of :class:`soundalike.query.Engine`: references, nearest tracks, paths."""

    def __init__(self, store: Store, backend: str | None) -> None:
        from .query import Engine

        self.store = store
        self.engine = Engine(store)
        self.backend = backend

    def resolve_track(self, text: str) -> str | None:
        """The track id a reference names; None when it names no track (it may be an artist).

        A reference that is an existing file, or an ambiguous one, raises the engine's error.
        """
        try:
            return self.engine.track(text).track_id
        except UnknownTrackError as exc:
            if Path(text).expanduser().is_file() or not str(exc).startswith("No track"):
                raise
            return None

    def nearest(self, seed_track_ids: Sequence[str], k: int) -> list[tuple[str, float]]:
        from .query import Query

        doc = self.engine.run(Query(tracks=tuple(seed_track_ids), k=k, backend=self.backend))
        return [(n["track_id"], float(n["score"])) for n in doc["neighbours"]]

    def path(self, start: str, end: str, count: int) -> list[tuple[str, float]]:
        tracks, hits, _, _ = self.engine.path(start, end, count=count, backend=self.backend)
        return [(t.track_id, h.score) for t, h in zip(tracks, hits)]

    def vectors(self):
        return self.engine.vectors(self.backend)

    def n_tracks(self) -> int:
        return len(self.vectors().track_ids)

    def backend_name(self) -> str:
        return self.vectors().model.backend


# --- seeds -------------------------------------------------------------------------------------
def resolve_seeds(store: Store, texts: Sequence[str], *, engine: _Engine | None = None) -> list[PlaylistSeed]:
    """Turn the user's seed texts into seeds: a track reference first, else an artist name.

    Raises
    ------
    UnknownArtistError
        A seed that names no track and no artist, listing close artist names.
    """
    eng = engine or _Engine(store, None)
    seeds = []
    for text in texts:
        tid = eng.resolve_track(text)
        if tid is not None:
            t = eng.engine.track_by_id[tid]
            seeds.append(PlaylistSeed("track", track_label(t), (tid,), track_id=tid))
            continue
        try:
            a = eng.engine.artist(text)
        except UnknownArtistError as exc:
            names = list(getattr(exc, "suggestions", None) or [])
            hint = f" Did you mean: {', '.join(names)}?" if names else ""
            raise UnknownArtistError(
                f"Seed {text!r} names no track and no artist in {store.path}.{hint} A seed is a file path, a track id "
                "(>= 6 hex digits), a manifest track_id, \"Artist - Title\" or an artist name; "
                "list them with `soundalike tracks`.", suggestions=names) from None
        tids = tuple(t.track_id for t in eng.engine.tracks if t.artist_id == a.artist_id)
        seeds.append(PlaylistSeed("artist", a.name, tids, artist_id=a.artist_id))
    return seeds


# --- playlists ---------------------------------------------------------------------------------
def _detector(store: Store, eng: _Engine, detector: DuplicateDetector | None) -> DuplicateDetector:
    if detector is not None:
        return detector
    vec = eng.vectors()
    return DuplicateDetector.from_vectors(vec.model.backend, vec.track_ids, vec.X, eng.engine.track_by_id)


def make_playlist(store: Store, seeds: Sequence[str], *, n: int = DEFAULT_LENGTH, artist_gap: int = DEFAULT_ARTIST_GAP,
                  backend: str | None = None, exclude: Sequence[str] = (),
                  detector: DuplicateDetector | None = None) -> Playlist:
    """A mix of `n` tracks that sound like the seeds together, best first.

    Parameters
    ----------
    seeds : track references or artist names (one or more)
    n : int > 0       playlist length
    artist_gap : int >= 0
        No artist repeats within this many consecutive tracks (best effort: when the library
        runs out of other artists, ``rules["artist_gap_relaxed"]`` says so and the rest fills in).
    exclude : track ids never to include (e.g. what a player's queue already holds)

    Raises
    ------
    ParameterError
        No seeds, n < 1, artist_gap < 0, or seeds without analysed audio.
    UnknownArtistError
        A seed that names nothing.
    """
    if not seeds:
        raise ParameterError("Give at least one seed (a track or an artist), or --path START END.")
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}.")
    if artist_gap < 0:
        raise ParameterError(f"artist_gap must be >= 0, got {artist_gap}.")
    eng = _Engine(store, backend)
    resolved = resolve_seeds(store, seeds, engine=eng)
    seed_ids = list(dict.fromkeys(t for s in resolved for t in s.track_ids))
    det = _detector(store, eng, detector)
    tracks = eng.engine.track_by_id
    banned = set(seed_ids) | set(exclude)
    rules = {"n": n, "artist_gap": artist_gap, "exclude_seeds": True, "no_duplicate_recordings": True,
             "backend": eng.backend_name(), "artist_gap_relaxed": False}
    total = eng.n_tracks()
    k = min(total, max(4 * n, n + 20) + len(banned))
    while True:
        ranked = eng.nearest(seed_ids, k)
        picked, relaxed = _pick(ranked, tracks, n=n, gap=artist_gap, banned=banned, kept=seed_ids, detector=det)
        if len(picked) >= n or k >= total:
            break
        k = min(total, 4 * k)
    rules["artist_gap_relaxed"] = relaxed
    return Playlist(resolved, rules, [_entry(tracks[t], s) for t, s in picked])


def _entry(t: Track, score: float) -> PlaylistTrack:
    return PlaylistTrack(t.track_id, t.path, t.artist, t.title, score)


def _pick(ranked: list[tuple[str, float]], tracks: dict[str, Track], *, n: int, gap: int, banned: set[str],
          kept: list[str], detector: DuplicateDetector) -> tuple[list[tuple[str, float]], bool]:
    """Apply the playlist rules to the engine's ranking; returns (picked, whether the gap was relaxed)."""
    picked: list[tuple[str, float]] = []
    recordings = list(kept)  # seeds count as already heard
    waiting: list[tuple[str, float]] = []
    cands = [(t, s) for t, s in ranked if t not in banned and t in tracks]

    def fits(tid: str) -> bool:
        recent = {tracks[p].artist_id for p, _ in picked[-gap:]} if gap else set()
        return tracks[tid].artist_id not in recent

    def fresh(tid: str) -> bool:
        return not detector.duplicates(tid, recordings)

    i = 0
    while len(picked) < n:
        chosen = next((w for w in waiting if fits(w[0])), None)
        if chosen is not None:
            waiting.remove(chosen)
        else:
            while i < len(cands):
                tid, s = cands[i]
                i += 1
                if not fresh(tid):
                    continue
                if fits(tid):
                    chosen = (tid, s)
                    break
                waiting.append((tid, s))
            if chosen is None:
                break
        if not fresh(chosen[0]):
            continue
        picked.append(chosen)
        recordings.append(chosen[0])
    relaxed = False
    while len(picked) < n and waiting:  # the library ran out of other artists: fill in, say so
        tid, s = waiting.pop(0)
        if fresh(tid):
            picked.append((tid, s))
            recordings.append(tid)
            relaxed = True
    return picked, relaxed


def sonic_path(store: Store, start: str, end: str, *, n: int = DEFAULT_LENGTH, backend: str | None = None,
               detector: DuplicateDetector | None = None) -> Playlist:
    """A playlist of about `n` tracks from `start` to `end` (both included), as ``findSonicPath``.

    Intermediate steps that repeat a recording already on the path are dropped and the path
    asked again, longer, so the playlist keeps its length when the library allows.
    """
    if n < 2:
        raise ParameterError(f"A path needs n >= 2 (start and end), got {n}.")
    eng = _Engine(store, backend)
    resolved = []
    for text in (start, end):
        tid = eng.resolve_track(text)
        if tid is None:
            raise ParameterError(f"--path {text!r} names no track; a path goes from one track to another "
                                 "(a file path, a track id of >= 6 hex digits, a manifest track_id or \"Artist - Title\").")
        resolved.append(PlaylistSeed("track", track_label(eng.engine.track_by_id[tid]), (tid,), track_id=tid))
    a, z = resolved[0].track_id, resolved[1].track_id
    if a == z:
        raise ParameterError("--path START and END are the same track; give two different tracks.")
    det = _detector(store, eng, detector)
    tracks = eng.engine.track_by_id
    count, total = n, eng.n_tracks()
    while True:
        steps = eng.path(a, z, count)
        kept = [steps[0]]
        for tid, s in steps[1:-1]:
            if not det.duplicates(tid, [k for k, _ in kept] + [z]):
                kept.append((tid, s))
        kept.append(steps[-1])
        if len(kept) >= n or count >= total:
            break
        count = min(total, count + (n - len(kept)))
    rules = {"n": n, "path": True, "no_duplicate_recordings": True, "backend": eng.backend_name()}
    return Playlist(resolved, rules, [_entry(tracks[t], s) for t, s in kept[:n - 1] + [kept[-1]]])


# --- m3u8 ----------------------------------------------------------------------------------------
def write_m3u8(playlist: Playlist, out: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Path:
    """Write an extended M3U (UTF-8) playlist; paths absolute, or relative to `root`.

    Raises
    ------
    ParameterError
        The target cannot be written (missing or read-only folder), naming the fix.
    """
    out = Path(out).expanduser()
    base = Path(root).expanduser().resolve() if root is not None else None
    lines = ["#EXTM3U"]
    for t in playlist.tracks:
        p = Path(t.path).resolve()
        path = os.path.relpath(p, base) if base is not None else str(p)
        lines.append(f"#EXTINF:-1,{t.artist} - {t.title or p.stem}")
        lines.append(path)
    try:
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"Cannot write the playlist to {out} ({exc.strerror}); choose a writable --out "
                             "(an existing folder you may write to).") from None
    return out
