"""A library that keeps itself current: watch a music folder and analyse what changes.

:class:`LibraryWatcher` notices added, changed, moved and deleted files of one library root
(file-system events from ``watchfiles``, plus a periodic full rescan by ``stat`` where events do
not arrive: network mounts, inotify limits reached) and hands them to the one analysis path
(:func:`soundalike.analysis.analyse` with a :class:`~soundalike.analysis.Folder` batch).

- A file is analysed only once its size and modification time have not changed for
  ``settle_s`` seconds (a file still being copied is not hashed).
- Additions are analysed before deletions are applied, so a moved file (same bytes) is found
  under its new path and keeps its id without analysis; a re-tagged file (new bytes at a known
  path) replaces its old entry.
- Nothing is pruned when the root is missing or when more than ``vanish_fraction`` of its known
  files vanish at once (an unmounted disk): that is reported instead (``soundalike prune``
  removes them on purpose).
- A burst is queued as paths only (at most ``max_pending``; beyond that the queue is dropped and
  a full rescan finds the rest once it has drained), analysed ``batch_size`` files at a time.
- Default calibrations are refreshed once the queue has drained and at least
  ``max(refresh_min, refresh_fraction × tracks)`` tracks were added or removed since the last
  refresh (by default 20 tracks or 5 % of the library, whichever is larger).

Every batch is committed by the analysis path before the next starts, so Ctrl-C or kill -9
loses at most the batch in flight; a restart catches up with a full scan.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .analysis import AnalysisSummary, Folder, analyse
from .analysis.executors import Executor
from .audio import AUDIO_EXTENSIONS, WindowPolicy
from .backends.base import Backend
from .errors import ParameterError
from .store import Store

__all__ = ["WatchOptions", "WatchEvent", "LibraryWatcher", "scan_stats", "require_watchfiles"]

log = logging.getLogger(__name__)

Stat = tuple[int, int]  # (size, mtime_ns): a file whose pair did not change is taken as unchanged


@dataclass(frozen=True)
class WatchOptions:
    """How the watcher waits, batches and guards.

    Parameters
    ----------
    settle_s : float
        A new or changed file is analysed once its size and mtime were unchanged this long.
    rescan_s : float
        Seconds between full rescans (``stat`` of every file); 0 turns them off.
    poll : bool
        Poll instead of using inotify-style events (network mounts); rescans still run.
    batch_size : int
        Files per call of the analysis path.
    max_pending : int
        Most paths queued; beyond it the queue is dropped and a rescan refills it.
    vanish_fraction, min_vanish : float, int
        Deletions are refused (nothing pruned) when at least ``min_vanish`` files and more than
        ``vanish_fraction`` of the known files under the root vanish at once.
    refresh_fraction, refresh_min : float, int
        Calibrators are refreshed after ``max(refresh_min, refresh_fraction × tracks)`` changes.
    tick_s : float
        How often the queue is looked at when no event arrives.
    """

    settle_s: float = 2.0
    rescan_s: float = 3600.0
    poll: bool = False
    batch_size: int = 64
    max_pending: int = 10_000
    vanish_fraction: float = 0.5
    min_vanish: int = 10
    refresh_fraction: float = 0.05
    refresh_min: int = 20
    tick_s: float = 0.5


@dataclass
class WatchEvent:
    """What one step of the watcher did (passed to ``on_change``)."""

    kind: str  # "analysed", "removed", "refused" or "calibrated"
    paths: list[str] = field(default_factory=list)
    summary: AnalysisSummary | None = None
    message: str = ""


def require_watchfiles() -> None:
    """Raise a clear error when the ``watch`` extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("watchfiles") is None:
        raise ParameterError('Following a folder needs watchfiles: pip install -c constraints.txt -e ".[watch]".')


def _is_audio(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def _stat(path: str) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


def scan_stats(root: str | os.PathLike) -> dict[str, Stat]:
    """``{path: (size, mtime_ns)}`` of every audio file under `root` (hidden files skipped, as
    :func:`~soundalike.library.scan` does)."""
    out: dict[str, Stat] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if _is_audio(p):
                st = _stat(p)
                if st is not None:
                    out[p] = st
    return out


class LibraryWatcher:
    """Keep `store` current with the audio files under `root` (this process is its one writer).

    Parameters
    ----------
    store : Store
        Writable; used from the thread that calls :meth:`run` only.
    root : path-like
        The library root.
    backends : sequence of Backend
        The models every new file is analysed with (none: files are only validated and stored).
    policy : WindowPolicy, optional
        Which windows are analysed.
    executor : Executor, optional
        Where the analysis runs (default: in this process, one file after another).
    options : WatchOptions
    on_change : callable, optional
        Called with a :class:`WatchEvent` after each committed step (the service reloads on it).
    """

    def __init__(self, store: Store, root: str | os.PathLike, backends: Sequence[Backend] = (), *,
                 policy: WindowPolicy | None = None, executor: Executor | None = None,
                 options: WatchOptions | None = None, on_change: Callable[[WatchEvent], None] | None = None) -> None:
        self.store = store
        self.root = str(Path(root).expanduser().resolve())
        self.backends = list(backends)
        self.policy = policy or WindowPolicy()
        self.executor = executor
        self.opts = options or WatchOptions()
        self.on_change = on_change
        self.known: dict[str, Stat] = {}  # last seen (and handed to the analysis) state of each file
        self.pending: dict[str, tuple[Stat | None, float]] = {}  # path -> (stat, since when unchanged)
        self.gone: set[str] = set()
        self.gone_since: float | None = None
        self.need_rescan = False
        self.changed_since_refresh = 0
        self.last_rescan = time.monotonic()
        self.refused: str = ""  # the last refusal to prune (reported once per rescan)

    # --- the steps ---------------------------------------------------------------------------
    def catch_up(self) -> AnalysisSummary | None:
        """Start-up: analyse the whole folder (what changed while nobody watched) and forget the
        files gone from it (guarded like every deletion); returns the analysis summary."""
        if not os.path.isdir(self.root):
            self._refuse(f"library root {self.root} is missing (unmounted?): nothing analysed or pruned")
            return None
        stats = scan_stats(self.root)
        fresh = time.time_ns() - int(self.opts.settle_s * 1e9)
        recent = [p for p, (_, mtime) in stats.items() if mtime > fresh]  # perhaps still being copied
        source = Folder(self.root, paths=sorted(set(stats) - set(recent))) if recent else Folder(self.root)
        summary = analyse(self.store, source, self.backends, policy=self.policy, executor=self.executor,
                          batch_size=16)
        self.known = {p: st for p, st in stats.items() if p not in recent}
        for p in recent:
            self._queue(p)
        self._emit(WatchEvent("analysed", [], summary))
        under = self._recorded_under_root()
        self.gone = {p for p in under if p not in self.known and not os.path.exists(p)}
        self.gone_since = time.monotonic() - 1e9 if self.gone else None
        self._apply_deletions(force_now=True)
        self.changed_since_refresh += summary.ingest.done if summary.ingest else 0
        self.last_rescan = time.monotonic()
        return summary

    def notice(self, changes: Iterable[tuple[object, str]]) -> None:
        """Queue file-system changes ``(change, path)``; every path is checked by ``stat``, so
        the kind of change only matters for folders (a folder moved in or out)."""
        for _, path in changes:
            if os.path.isdir(path):  # a folder moved in: its files are new
                for p in scan_stats(path):
                    self._queue(p)
            elif _is_audio(path):
                self._queue(path)
            elif not os.path.exists(path):  # a folder moved out or deleted: its known files
                prefix = path.rstrip(os.sep) + os.sep
                for p in [k for k in self.known if k.startswith(prefix)]:
                    self._queue(p)

    def rescan(self) -> None:
        """Full rescan by ``stat``: new and changed files are queued, vanished ones too."""
        self.last_rescan = time.monotonic()
        self.need_rescan = False
        if not os.path.isdir(self.root):
            self._refuse(f"library root {self.root} is missing (unmounted?): nothing pruned")
            return
        now = scan_stats(self.root)
        for p, st in now.items():
            if self.known.get(p) != st:
                self._queue(p)
        for p in list(self.known):
            if p not in now:
                self._queue(p)

    def step(self) -> None:
        """Analyse the files that settled (one batch), then apply deletions when nothing is unsettled."""
        now = time.monotonic()
        ready: list[str] = []
        for p, (st, since) in list(self.pending.items()):
            cur = _stat(p)
            if cur is None:
                del self.pending[p]
                if p in self.known:
                    self.gone.add(p)
                    self.gone_since = self.gone_since or now
                continue
            if cur != st:
                self.pending[p] = (cur, now)  # still being written
            elif now - since >= self.opts.settle_s:
                ready.append(p)
                if len(ready) >= self.opts.batch_size:
                    break
        if ready:
            for p in ready:
                del self.pending[p]
            self._analyse(sorted(ready))
        self._apply_deletions()
        if not self.pending:
            if self.need_rescan:
                self.rescan()
            else:
                self._maybe_refresh()

    def run(self, stop: threading.Event | None = None, *, catch_up: bool = True) -> None:
        """Watch until `stop` is set (or Ctrl-C): catch up, then follow events and rescans."""
        stop = stop or threading.Event()
        require_watchfiles()
        if catch_up:
            self.catch_up()
        missing = False
        while not stop.is_set():
            if not os.path.isdir(self.root):  # nothing to watch: look again every few seconds
                self._refuse(f"library root {self.root} is missing (unmounted?): nothing pruned")
                missing = True
                stop.wait(max(self.opts.tick_s, 5.0))
                continue
            if missing:  # back (remounted): what changed meanwhile sent no events
                missing = False
                self.rescan()
            try:
                self._follow(stop)
            except (OSError, RuntimeError) as exc:  # root gone, inotify limit reached: rescans carry on
                log.warning("file events from %s stopped (%s); relying on rescans", self.root, exc)
                stop.wait(self.opts.tick_s)
                self._tick()

    # --- internals ---------------------------------------------------------------------------
    def _follow(self, stop: threading.Event) -> None:
        import watchfiles

        for changes in watchfiles.watch(self.root, stop_event=stop, yield_on_timeout=True, debounce=200,
                                        rust_timeout=max(50, int(self.opts.tick_s * 1000)),
                                        force_polling=self.opts.poll or None, raise_interrupt=True):
            if changes:
                self.notice(changes)
            self._tick()
            if not os.path.isdir(self.root):
                return

    def _tick(self) -> None:
        self.step()
        if self.opts.rescan_s and time.monotonic() - self.last_rescan >= self.opts.rescan_s:
            self.need_rescan = True
            if not self.pending:
                self.rescan()

    def _queue(self, path: str) -> None:
        if path in self.pending:
            return
        if len(self.pending) >= self.opts.max_pending:
            self.need_rescan = True  # bounded: the rescan after the queue drains finds the rest
            return
        self.pending[path] = (_stat(path), time.monotonic())

    def _analyse(self, paths: list[str]) -> None:
        stats = {p: _stat(p) for p in paths}
        summary = analyse(self.store, Folder(self.root, paths=paths), self.backends, policy=self.policy,
                          executor=self.executor, batch_size=16)
        for p, st in stats.items():
            if st is not None:
                self.known[p] = st
        self.changed_since_refresh += summary.ingest.done if summary.ingest else 0
        log.info("analysed %d file(s): %s", len(paths), summary.as_json())
        self._emit(WatchEvent("analysed", paths, summary))

    def _recorded_under_root(self) -> set[str]:
        prefix = self.root.rstrip(os.sep) + os.sep
        return {p for ps in self.store.recorded_paths().values() for p in ps if p.startswith(prefix)}

    def _apply_deletions(self, *, force_now: bool = False) -> None:
        if not self.gone:
            return
        now = time.monotonic()
        # wait for the files that are settling (a move's new path is found first), at most 10 settle times
        if not force_now and self.pending and now - (self.gone_since or now) < 10 * max(self.opts.settle_s, 0.1):
            return
        gone = sorted(self.gone)
        self.gone, self.gone_since = set(), None
        if not os.path.isdir(self.root):
            self._refuse(f"library root {self.root} is missing (unmounted?): {len(gone)} file(s) not pruned")
            return
        n_known = max(len(self._recorded_under_root()), len(self.known))
        if len(gone) >= self.opts.min_vanish and len(gone) > self.opts.vanish_fraction * n_known:
            self._refuse(f"{len(gone)} of {n_known} files under {self.root} vanished at once (unmounted disk?): "
                         "nothing pruned; run `soundalike prune` if they were deleted on purpose")
            return
        summary = analyse(self.store, Folder(self.root, paths=[], removed=gone), self.backends, policy=self.policy,
                          executor=self.executor)
        for p in gone:
            self.known.pop(p, None)
        self.changed_since_refresh += summary.removed
        log.info("%d file(s) gone: %d track(s) forgotten", len(gone), summary.removed)
        self._emit(WatchEvent("removed", gone, summary))

    def _refuse(self, message: str) -> None:
        if message != self.refused:
            log.warning("%s", message)
            self._emit(WatchEvent("refused", message=message))
        self.refused = message

    def _maybe_refresh(self) -> None:
        if not self.changed_since_refresh or not self.backends:
            return
        n = len(self.store.tracks())
        if self.changed_since_refresh < max(self.opts.refresh_min, self.opts.refresh_fraction * n):
            return
        from .query import refresh_calibrators

        refresh_calibrators(self.store)
        log.info("default calibrations refreshed after %d changed tracks", self.changed_since_refresh)
        self.changed_since_refresh = 0
        self._emit(WatchEvent("calibrated"))

    def _emit(self, event: WatchEvent) -> None:
        if event.kind != "refused":
            self.refused = ""
        if self.on_change is not None:
            self.on_change(event)
