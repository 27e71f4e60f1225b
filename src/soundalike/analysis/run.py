"""The one entry point: :func:`analyse` (scan → validate → decode → embed → commit).

Every way audio enters the store calls it: ``soundalike run``, ``ingest``, ``embed`` and
``embed --ray``, the service's rescan, ``beet soundalike``, the taggram back-fill and a watcher
(a :class:`~soundalike.analysis.sources.Folder` with ``paths`` and ``removed``). What differs is
only the source, the executor and the progress sink; the commit loop below is the only writer.

A new file is decoded once: the executor validates it and runs every backend on the same
windows; the commit loop then stores its track row (an ingest outcome: a file that cannot be
used gets a failure and no row) and its vectors (an embed outcome) batch by batch, so a kill -9
loses at most the batch in flight and a rerun computes only what is missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..audio import WindowPolicy
from ..backends.base import Backend
from ..library import TrackRecord, file_sha256
from ..store import Store
from .executors import Executor, Item, auto_executor
from .kernel import (
    EmbedPlan, FileOutcome, Progress, RunSummary, TrackResult, commit, log_partial, new_cost, record_cost, unreadable,
)
from .sources import Folder, Source, Stored, add_record, as_source, forget_paths, record_scan_failures, scan_into

__all__ = ["AnalysisSummary", "analyse", "executor_for", "ingest", "embed", "ingest_and_embed",
           "default_backend_names"]

log = logging.getLogger(__name__)


@dataclass
class AnalysisSummary:
    """What one analysis did: the ``ingest`` stage (files of a folder) and the ``embed`` stage
    (vectors), each ``None`` where it did not run; ``removed`` tracks forgotten (files gone)."""

    ingest: RunSummary | None = None
    embed: RunSummary | None = None
    removed: int = 0

    @property
    def summaries(self) -> list[RunSummary]:
        return [s for s in (self.ingest, self.embed) if s is not None]

    @property
    def n_failed(self) -> int:
        return sum(s.n_failed for s in self.summaries)

    def as_json(self) -> dict:
        return {"ingest": self.ingest.as_json() if self.ingest else None,
                "embed": self.embed.as_json() if self.embed else None, "removed": self.removed}


def default_backend_names(*, note: Callable[[str, str], None] | None = None) -> list[str]:
    """The main job's backends that are ready here (``DEFAULT_BACKENDS``); `note(name, why)` is
    told about each one left out (missing extra or weights)."""
    from ..backends import backend_class
    from ..backends.registry import DEFAULT_BACKENDS

    names = []
    for name in DEFAULT_BACKENDS:
        st = backend_class(name).status()
        if st.status == "ready":
            names.append(name)
        elif note is not None:
            note(name, f"{name} is not ready ({st.status}); {st.install_hint}")
    return names


def executor_for(backends: Sequence[Backend], jobs: int, *, batch_size: int = 16,
                 started: Executor | None = None) -> Executor:
    """The executor of a run: `started` (workers started before the models loaded) where it can
    run these backends, else :func:`auto_executor` (`started` is then closed)."""
    from .workers import TrackWorkers, can_use_workers

    if started is not None:
        if not isinstance(started, TrackWorkers) or can_use_workers(backends, started.jobs):
            return started
        started.close()  # the models ended up on an accelerator: they run in this process instead
    return auto_executor(backends, jobs, batch_size=batch_size)


def analyse(store: Store, source: Source | str | os.PathLike, backends: Sequence[Backend] = (), *,
            policy: WindowPolicy | None = None, executor: Executor | None = None, jobs: int = 1,
            batch_size: int = 16, run_id: int | None = None, progress: Progress | None = None) -> AnalysisSummary:
    """Analyse a source into the store: the one analysis path of every surface.

    Parameters
    ----------
    store : Store
        Written by this process only (the executor's workers never write).
    source : Folder, Stored or path-like
        A folder (a path is read as one), optionally restricted to some of its files and with
        files gone from it; or the store's own tracks.
    backends : sequence of Backend
        None: validate and store the files only (``ingest``).
    policy : WindowPolicy
        Which windows are analysed (part of each model key).
    executor : Executor, optional
        Where decoding and the models run (:class:`InProcess`, :class:`TrackWorkers`,
        :class:`RayCluster`); kept open for the caller. Default: ``auto_executor(backends,
        jobs)``, closed here.
    jobs : int
        Worker processes of the default executor.
    batch_size : int
        Tracks per committed transaction.
    run_id : int, optional
        Failures are recorded under this run.
    progress : callable ``(stage, done, total)``, optional
        Called after every track (stages ``ingest`` and ``embed``).

    Returns
    -------
    AnalysisSummary
        ``ingest`` (a folder's files: new / known / failed by kind) and ``embed`` (the source's
        tracks that got vectors / had them all / failed), each done / cached / failed by kind.
    """
    src = as_source(source)
    plan = EmbedPlan(backends, policy or WindowPolicy())
    ex = executor if executor is not None else auto_executor(plan.backends, jobs, batch_size=batch_size)
    try:
        if plan.backends:
            plan.register(store)
        if isinstance(src, Stored):
            s_emb = RunSummary("embed")
            _analyse_stored(store, src, plan, ex, s_emb, batch_size=batch_size, run_id=run_id, progress=progress)
            return AnalysisSummary(None, s_emb)
        return _analyse_folder(store, src, plan, ex, batch_size=batch_size, run_id=run_id, progress=progress)
    finally:
        if executor is None:
            ex.close()


def _analyse_folder(store: Store, src: Folder, plan: EmbedPlan, ex: Executor, *, batch_size: int,
                    run_id: int | None, progress: Progress | None) -> AnalysisSummary:
    s_ing = RunSummary("ingest")
    s_emb = RunSummary("embed") if plan.backends else None
    removed = forget_paths(store, src.removed) if src.removed else 0
    todo, result, n = scan_into(store, src, s_ing)
    total = len(result.tracks)
    if progress:
        progress("ingest", n, total)
    have = {k: store.embedded_track_ids(k) for k in plan.all_keys}
    records: dict[str, TrackRecord] = {}
    hashed_only = 0  # files of `todo` that need no decoding (unreadable, or stored before with every vector)

    def items() -> Iterator[Item]:
        # hashed as the executor asks for more, so the first tracks start without waiting for all
        nonlocal hashed_only
        for rec in todo:
            try:
                tid = file_sha256(rec.path)
            except OSError as exc:
                out = FileOutcome(str(rec.path), "failed", *unreadable(exc))
                s_ing.add_failure(out)
                store.record_failure(run_id, out.path, out.kind, out.message)
                hashed_only += 1
                continue
            missing = frozenset(k for k in plan.all_keys if tid not in have[k])
            if not missing and store.has_track(tid):  # same bytes validated (and analysed) before: moved or duplicated
                s_ing.add_stored(add_record(store, rec, tid))
                hashed_only += 1
                continue
            records[str(rec.path)] = rec
            yield tid, str(rec.path), missing

    cost = new_cost(plan)
    batch: list[TrackResult] = []
    if todo:
        if progress and s_emb is not None:
            progress("embed", 0, len(todo))
        i = 0
        try:
            for res in ex.results(plan, items(), cost):
                i += 1
                batch.append(res)
                if len(batch) >= batch_size:
                    _commit_files(store, batch, records, s_ing, s_emb, run_id)
                    batch = []
                if progress:
                    progress("ingest", n + hashed_only + i, total)
                    if s_emb is not None:
                        progress("embed", i, len(todo) - hashed_only)
        finally:  # what finished is stored even when the executor stops (a lost Ray cluster, Ctrl-C)
            if batch:
                _commit_files(store, batch, records, s_ing, s_emb, run_id)
    if progress:
        progress("ingest", total, total)
    record_scan_failures(store, result, run_id)
    record_cost(store, plan, cost, run_id)
    if s_emb is not None:
        # this folder's tracks stored before without every vector (an earlier ingest, an interrupted run)
        by_path = {p: tid for tid, paths in store.recorded_paths().items() for p in paths}
        only = sorted({by_path[str(r.path)] for r in result.tracks if str(r.path) in by_path})
        rest = RunSummary("embed")
        _analyse_stored(store, Stored(only), plan, ex, rest, batch_size=batch_size, run_id=run_id, progress=None)
        fresh = s_emb.done
        s_emb.done, s_emb.cached = fresh + rest.done, rest.cached - fresh
        for f in rest.failures:
            s_emb.add_failure(f)
        for f in rest.reports:
            s_emb.add_report(f)
    return AnalysisSummary(s_ing, s_emb, removed)


def _commit_files(store: Store, batch: list[TrackResult], records: dict[str, TrackRecord], s_ing: RunSummary,
                  s_emb: RunSummary | None, run_id: int | None) -> None:
    """Track rows of the files that decoded (and their ingest reports), then their vectors."""
    ok = [r for r in batch if r.failure is None]
    with store.transaction() as db:
        for r in batch:
            if r.failure is not None:  # not a track: an ingest failure
                out = FileOutcome(r.path, "failed", r.failure[0], r.failure[1])
                s_ing.add_failure(out)
                store.record_failure(run_id, r.path, out.kind, out.message, db=db)
                continue
            status = add_record(store, records[r.path], r.track_id, duration_s=r.duration_s, db=db)
            s_ing.add_stored(status)
            if r.truncated:
                s_ing.add_report(FileOutcome(r.path, status, "truncated", r.truncated, r.track_id))
                store.record_failure(run_id, r.path, "truncated", r.truncated, db=db)
    if s_emb is not None:
        commit(store, ok, s_emb, run_id=run_id)


def _analyse_stored(store: Store, src: Stored, plan: EmbedPlan, ex: Executor, summary: RunSummary, *,
                    batch_size: int, run_id: int | None, progress: Progress | None) -> None:
    """Embed the stored tracks of `src` that lack a vector of `plan`; commit batch by batch."""
    if not plan.backends:
        return
    tracks = store.tracks()
    if src.track_ids is not None:
        wanted = set(src.track_ids)
        tracks = [t for t in tracks if t.track_id in wanted]
    have = {k: store.embedded_track_ids(k) for k in plan.all_keys}
    items = [(t.track_id, t.path, frozenset(k for k in plan.all_keys if t.track_id not in have[k])) for t in tracks]
    items = [it for it in items if it[2]]
    summary.cached += len(tracks) - len(items)
    log_partial(plan, have, [tid for tid, _, _ in items])
    if progress:
        progress("embed", 0, len(items))
    if not items:
        return
    cost = new_cost(plan)
    batch: list[TrackResult] = []
    try:
        for i, res in enumerate(ex.results(plan, items, cost), start=1):
            batch.append(res)
            if len(batch) >= batch_size:
                commit(store, batch, summary, run_id=run_id)
                batch = []
            if progress:
                progress("embed", i, len(items))
    finally:  # what finished is stored even when the executor stops
        if batch:
            commit(store, batch, summary, run_id=run_id)
        record_cost(store, plan, cost, run_id)


# --- the stages as functions (the Python API since the first release) ---------------------------
def ingest(store: Store, root: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
           policy: WindowPolicy | None = None, run_id: int | None = None, jobs: int = 1,
           progress: Progress | None = None) -> RunSummary:
    """Scan a library into the store, validating every file's audio (:func:`analyse` without backends).

    Each bad file becomes one failure (path, kind, plain reason) and the run goes on. Files whose
    bytes are already stored are recognised by hash (``known`` / ``moved``).
    """
    out = analyse(store, Folder(root, manifest), (), policy=policy, jobs=jobs, batch_size=64, run_id=run_id,
                  progress=progress)
    assert out.ingest is not None
    return out.ingest


def embed(store: Store, backends: Sequence[Backend], *, policy: WindowPolicy | None = None,
          run_id: int | None = None, jobs: int = 1, batch_size: int = 16, track_ids: Sequence[str] | None = None,
          progress: Progress | None = None, executor: Executor | None = None) -> RunSummary:
    """Embed every stored track that lacks vectors for each backend (and its companions).

    :func:`analyse` of :class:`Stored` tracks: ``jobs`` above 1 with every backend on the CPU
    analyses whole tracks in worker processes, else decoding runs ahead of the models here.

    Returns
    -------
    RunSummary
        ``done`` counts tracks that got new vectors, ``cached`` tracks that had them all.
    """
    out = analyse(store, Stored(None if track_ids is None else list(track_ids)), backends, policy=policy,
                  executor=executor, jobs=jobs, batch_size=batch_size, run_id=run_id, progress=progress)
    assert out.embed is not None
    return out.embed


def ingest_and_embed(store: Store, root: str | os.PathLike, backends: Sequence[Backend], *,
                     manifest: str | os.PathLike | None = None, policy: WindowPolicy | None = None,
                     run_id: int | None = None, jobs: int = 1, batch_size: int = 16,
                     progress: Progress | None = None, workers: Executor | None = None) -> tuple[RunSummary, RunSummary]:
    """The main job's analysis in one pass (each new file decoded once): ``(ingest, embed)``
    summaries, the same as :func:`ingest` followed by :func:`embed`.

    workers : Executor, optional
        Started already (e.g. :func:`~soundalike.analysis.workers.start_workers`); closed here.
    """
    ex = executor_for(backends, jobs, batch_size=batch_size, started=workers)
    try:
        out = analyse(store, Folder(root, manifest), backends, policy=policy, executor=ex, batch_size=batch_size,
                      run_id=run_id, progress=progress)
    finally:
        ex.close()
    assert out.ingest is not None and out.embed is not None
    return out.ingest, out.embed
