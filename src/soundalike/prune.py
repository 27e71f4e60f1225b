"""Forget tracks whose files are gone, so a deleted file never comes back as a neighbour.

A track is gone when none of the paths recorded for its bytes exists any more. A track whose
main path is gone but which still exists at another recorded path is kept and moved there;
recorded other paths that are gone are forgotten. Removing tracks changes the vectors of every
model, so the saved calibrators are refreshed afterwards (as after ``embed``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from .store import Store, Track

__all__ = ["PruneReport", "prune", "refresh_saved_calibrators"]

log = logging.getLogger(__name__)


@dataclass
class PruneReport:
    """What `prune` removed (or would remove, with ``dry_run``)."""

    removed: list[Track] = field(default_factory=list)
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (track_id, old path, new path)
    forgotten_paths: list[tuple[str, str]] = field(default_factory=list)  # (track_id, path)
    dry_run: bool = False
    calibrators_refreshed: bool = False

    def as_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "removed": [{"track_id": t.track_id, "path": t.path, "artist": t.artist, "title": t.title}
                        for t in self.removed],
            "moved": [{"track_id": t, "from": a, "to": b} for t, a, b in self.moved],
            "forgotten_paths": [{"track_id": t, "path": p} for t, p in self.forgotten_paths],
            "calibrators_refreshed": self.calibrators_refreshed,
        }


def refresh_saved_calibrators(store: Store) -> bool:
    """Refit the saved default calibrators of every model after its vectors changed.

    The single call site into the query engine's ``refresh_calibrators``; returns False (and
    logs why) when this build has no saved calibrators.
    """
    try:
        from .query import refresh_calibrators
    except ImportError:
        log.warning("this build has no saved calibrators (soundalike.query.refresh_calibrators); nothing to refresh")
        return False
    refresh_calibrators(store)
    return True


def prune(store: Store, *, dry_run: bool = False) -> PruneReport:
    """Drop tracks whose files are all gone, with their vectors; refresh calibrators after.

    Parameters
    ----------
    store : Store
        An open, writable store.
    dry_run : bool
        List what would be removed and change nothing.

    Returns
    -------
    PruneReport
        Removed tracks, tracks moved to another recorded path, and forgotten stale paths.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from soundalike.store import Store
    >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "library.db") as s:
    ...     prune(s, dry_run=True).removed
    []
    """
    report = PruneReport(dry_run=dry_run)
    by_id = {t.track_id: t for t in store.tracks()}
    for tid, paths in store.recorded_paths().items():
        alive = [p for p in paths if os.path.isfile(p)]
        if not alive:
            if tid in by_id:
                report.removed.append(by_id[tid])
            continue
        if alive[0] != paths[0]:
            report.moved.append((tid, paths[0], alive[0]))
        report.forgotten_paths += [(tid, p) for p in paths[1:] if p not in alive]
    if dry_run or not (report.removed or report.moved or report.forgotten_paths):
        return report
    store.remove_tracks([t.track_id for t in report.removed], stale_paths=report.forgotten_paths,
                        moves=[(t, new) for t, _, new in report.moved])
    if report.removed:
        report.calibrators_refreshed = refresh_saved_calibrators(store)
    return report
