"""What an analysis reads: a folder (or some files of it, and files gone from it), or stored tracks.

A :class:`Folder` is scanned (tags, manifest), files already stored at the same path with the
same bytes are recognised without decoding, and the rest go to the executor, which validates
(decodes) and analyses them in one pass. :class:`Stored` is the store's own tracks: the
``embed`` stage, and whatever an earlier ingest or an interrupted run left without vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..library import ScanResult, TrackRecord, file_sha256, scan
from ..store import Store
from .kernel import FileOutcome, RunSummary

__all__ = ["Folder", "Stored", "Source", "as_source", "scan_into", "add_record", "record_scan_failures",
           "forget_paths"]


@dataclass(frozen=True)
class Folder:
    """A music folder (or one file), scanned for tracks.

    Parameters
    ----------
    root : path-like
        The library root: artists and albums are read relative to it.
    manifest : path-like, optional
        CSV/YAML manifest (only the files it lists are analysed).
    paths : sequence of path-like, optional
        Only these files of the scan (a watcher's batch of added or changed files).
    removed : sequence of path-like
        Files gone from the folder: a track none of whose recorded paths exists any more is
        forgotten with its vectors; a track still present at another recorded path moves there.
    """

    root: str | os.PathLike
    manifest: str | os.PathLike | None = None
    paths: Sequence[str | os.PathLike] | None = None
    removed: Sequence[str | os.PathLike] = field(default_factory=tuple)


@dataclass(frozen=True)
class Stored:
    """The store's tracks (optionally only `track_ids`) that lack vectors of the run's models."""

    track_ids: Sequence[str] | None = None


Source = Folder | Stored


def as_source(source: "Source | str | os.PathLike") -> Source:
    """A path given where a source is expected is a :class:`Folder`."""
    return source if isinstance(source, (Folder, Stored)) else Folder(source)


def _norm(p: str | os.PathLike) -> str:
    return str(Path(p).expanduser().resolve())


def scan_into(store: Store, source: Folder, summary: RunSummary) -> tuple[list[TrackRecord], ScanResult, int]:
    """Scan `source`; store the files already known by path whose bytes are unchanged.

    Returns the records still to validate, the scan, and how many were stored here (counted as
    ``cached`` in `summary`, which also gets the scan's failures).
    """
    if source.paths is not None and source.manifest is None:
        result = _scan_paths(source.root, source.paths)  # a watcher's batch: no walk of the whole library
    else:
        result = scan(source.root, manifest=source.manifest)
    if source.paths is not None:
        wanted = {_norm(p) for p in source.paths}
        result = ScanResult([r for r in result.tracks if _norm(r.path) in wanted],
                            [f for f in result.failures if _norm(f[0]) in wanted])
    for path, kind, message in result.failures:
        summary.add_failure(FileOutcome(str(path), "failed", kind, message))
    known_paths = store.track_ids_by_path()
    todo: list[TrackRecord] = []
    quick: list[tuple[TrackRecord, str]] = []
    for rec in result.tracks:
        tid = known_paths.get(str(rec.path))
        # Path already stored and bytes unchanged: no need to decode again (hash still checked).
        if tid is not None and rec.path.is_file():
            quick.append((rec, tid))
        else:
            todo.append(rec)
    n = 0
    with store.transaction() as db:
        for rec, tid in quick:
            try:
                same = file_sha256(rec.path) == tid
            except OSError:
                same = False
            if not same:
                todo.append(rec)
                continue
            add_record(store, rec, tid, db=db)
            summary.cached += 1
            n += 1
    return todo, result, n


def _scan_paths(root: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> ScanResult:
    """The scan of only `paths` under `root` (named as :func:`~soundalike.library.scan` names them)."""
    return scan(root, paths=[_norm(p) for p in paths])


def add_record(store: Store, rec: TrackRecord, track_id: str, *, duration_s: float | None = None, db=None) -> str:
    """Store one scanned file as `track_id`; returns the store's status (new / known / moved)."""
    return store.add_track(track_id=track_id, path=str(rec.path), artist=rec.artist, title=rec.title,
                           album=rec.album, duration_s=duration_s, external_id=rec.external_id, genres=rec.genres,
                           artist_mbid=rec.artist_mbid, credit=rec.credit, artist_source=rec.artist_source,
                           naming=rec.naming, db=db)


def record_scan_failures(store: Store, result: ScanResult, run_id: int | None) -> None:
    """Record the scan-level failures (unsupported files, unreadable folders)."""
    if result.failures:
        with store.transaction() as db:
            for path, kind, message in result.failures:
                store.record_failure(run_id, str(path), kind, message, db=db)


def forget_paths(store: Store, paths: Sequence[str | os.PathLike]) -> int:
    """Forget the files `paths` (gone from disk): returns how many tracks were removed.

    Only tracks recorded at one of `paths` are looked at, so the cost follows the batch, not the
    library (``soundalike prune`` checks every track).
    """
    gone = {_norm(p) for p in paths} | {str(p) for p in paths}
    removed: list[str] = []
    moves: list[tuple[str, str]] = []
    stale: list[tuple[str, str]] = []
    for tid, recorded in store.recorded_paths().items():
        if not gone.intersection(recorded):
            continue
        alive = [p for p in recorded if p not in gone and os.path.isfile(p)]
        if not alive:
            removed.append(tid)
            continue
        if alive[0] != recorded[0]:
            moves.append((tid, alive[0]))
        stale += [(tid, p) for p in recorded[1:] if p not in alive]
    if removed or moves or stale:
        store.remove_tracks(removed, stale_paths=stale, moves=moves)
    return len(removed)
