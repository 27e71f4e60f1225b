"""Per-track analysis workers: each process decodes a whole track and runs every backend on it.

The CPU executor of the embed loop. Handing whole tracks to ``jobs`` processes keeps every core
busy by construction: no stage waits for another (a pool that only decodes, with the models in
the parent, left the parent's core saturated and the decoding core mostly idle). Each worker
builds the same backends once (``load_backend`` with the parent's arguments, see
:attr:`Backend.load_spec`), with ``cpu_count // jobs`` threads, and returns
:class:`~soundalike.pipeline.TrackResult` objects; the parent stays the store's only writer.

Heavy imports (torch, librosa's numba-compiled beat tracker) are paid once, in the forkserver
(its preload list, set before the first pool of the process starts), and every worker inherits
them through ``fork``; each worker then only loads its models.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from ._lifecycle import process_pool, start_forkserver
from .audio import WindowPolicy
from .backends.base import Backend
from .library import TrackRecord, file_sha256
from .pipeline import (
    EmbedPlan, FileOutcome, Progress, RunSummary, TrackResult, add_record, commit, decode_track, embed,
    embed_decoded, ingest, record_cost, record_scan_failures, scan_into, unreadable,
)
from .store import Store

__all__ = ["TrackWorkers", "can_use_workers", "ingest_and_embed", "start_workers"]

Cost = list[list[float]]
_PLAN: EmbedPlan | None = None
_INIT_ERROR: BaseException | None = None  # why this worker could not build its backends


def can_use_workers(backends: Sequence[Backend], jobs: int) -> bool:
    """Whether the workers can run these backends: more than one job, every backend on the CPU
    and built by ``load_backend`` (so a worker can build the same one)."""
    return jobs > 1 and all(
        str(b.device).split(":")[0] == "cpu" and getattr(b, "load_spec", None) is not None for b in backends
    )


def _init(specs: list[dict], policy: WindowPolicy, threads: int) -> None:
    # An initialiser that raises breaks the whole pool with a bare "terminated abruptly": the
    # error is kept and raised by each task instead, so the parent reports the real reason.
    global _INIT_ERROR
    try:
        _build(specs, policy, threads)
    except Exception as exc:  # noqa: BLE001 - handed to the parent by _analyse
        _INIT_ERROR = exc


def _build(specs: list[dict], policy: WindowPolicy, threads: int) -> None:
    global _PLAN
    from threadpoolctl import threadpool_limits

    from .backends.registry import load_backend

    threadpool_limits(threads)  # BLAS / OpenMP pools of numpy and scipy: one per worker's share
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - backends without torch
        pass
    _PLAN = EmbedPlan([load_backend(**spec) for spec in specs], policy)


def _analyse(item: tuple[str, str, frozenset[str]]) -> tuple[TrackResult, Cost]:
    track_id, path, missing = item
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    plan = _PLAN
    assert plan is not None, "worker initialiser did not run"
    cost: Cost = [[0, 0.0, 0.0, 0.0] for _ in plan.backends]
    decoded = decode_track(path, plan.policy, plan.rates)
    result = embed_decoded(plan, [(track_id, path, decoded)], lambda _t, k: k in missing, cost=cost)[0]
    return result, cost


def _ready() -> None:
    """A no-op task: submitting one per worker starts the workers (they start on demand)."""


class TrackWorkers:
    """A pool of ``jobs`` processes analysing whole tracks, each with the backends of `specs`.

    The workers start (import, load their models) as soon as the pool is made, so that it can be
    made before this process loads its own copy of the models; :meth:`analyse` then checks that
    the parent's plan was built from the same specs.

    Parameters
    ----------
    specs : list of dict
        ``load_backend`` keyword arguments of each backend (``Backend.load_spec``).
    policy : WindowPolicy
    jobs : int > 1
    """

    def __init__(self, specs: Sequence[dict[str, Any]], policy: WindowPolicy, jobs: int) -> None:
        from .backends.registry import worker_preload_modules

        self.specs = [dict(s) for s in specs]
        self.policy = policy
        self.jobs = jobs
        # the forkserver starts here, in this thread: it dies with the thread that started it
        # (parent-death signal), so never in the short-lived starter thread below
        start_forkserver(worker_preload_modules([str(s["name"]) for s in self.specs]))
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool = process_pool(jobs, initializer=_init, initargs=(self.specs, policy, threads))
        # Starting a worker waits until the forkserver has imported its preload modules (seconds):
        # a thread waits instead of this process, which goes on loading its models meanwhile.
        self._starter = threading.Thread(target=self._start, name="soundalike-workers-start", daemon=True)
        self._starter.start()

    def _start(self) -> None:
        try:
            for _ in range(self.jobs):
                self.pool.submit(_ready)
        except RuntimeError:  # shut down before they started: nothing to start
            pass

    @classmethod
    def for_plan(cls, plan: EmbedPlan, jobs: int) -> "TrackWorkers":
        return cls([b.load_spec or {} for b in plan.backends], plan.policy, jobs)

    def serves(self, plan: EmbedPlan) -> bool:
        """Whether these workers build exactly the backends and windows of `plan`."""
        return plan.policy == self.policy and [b.load_spec for b in plan.backends] == self.specs

    def analyse(self, plan: EmbedPlan, items: Iterable[tuple[str, str, frozenset[str]]]
                ) -> Iterator[tuple[TrackResult, Cost]]:
        """Yield ``(TrackResult, cost)`` per ``(track_id, path, missing keys)`` item, in order,
        with ``2 * jobs`` tracks in flight."""
        if not self.serves(plan):
            raise ValueError("these workers were started for other backends or windows than this plan's")
        pending: deque[Future] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(self.pool.submit(_analyse, item))
                if len(pending) >= 2 * self.jobs:
                    break
            while pending:
                result, cost = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(self.pool.submit(_analyse, nxt))
                unknown = set(result.vectors) - set(plan.all_keys)
                if unknown:  # a worker built another model (other weights on its path): never store it
                    raise RuntimeError(f"a worker produced model keys {sorted(unknown)} that this run did not register")
                yield result, cost
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        self._starter.join()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "TrackWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_workers(names: Sequence[str], policy: WindowPolicy, jobs: int, *, weights: Any = None,
                  device: str = "cpu", dtype: str = "float32", **options: Any) -> TrackWorkers | None:
    """Start the workers of a run before this process loads the models (same arguments as
    ``load_backend`` for each name), so that their start-up (seconds of torch, librosa and
    numba imports, in the forkserver, then the models) overlaps that loading.

    Returns ``None`` where workers will not be used (one job, an accelerator) or a name is
    unknown (loading the models reports it).
    """
    if jobs <= 1 or str(device).split(":")[0] not in ("cpu", "auto"):
        return None
    from .errors import SoundalikeError

    specs = [{"name": n, "weights": weights, "device": device, "dtype": dtype, **options} for n in names]
    try:
        return TrackWorkers(specs, policy, jobs)
    except SoundalikeError:
        return None


def ingest_and_embed(
    store: Store,
    root: str | os.PathLike,
    backends: Sequence[Backend],
    *,
    manifest: str | os.PathLike | None = None,
    policy: WindowPolicy | None = None,
    run_id: int | None = None,
    jobs: int = 1,
    batch_size: int = 16,
    progress: Progress | None = None,
    workers: TrackWorkers | None = None,
) -> tuple[RunSummary, RunSummary]:
    """The main job's analysis in one pass: each new file is decoded once, validated and analysed
    by the same worker (``ingest`` then ``embed`` decode it twice).

    Same outcome as :func:`~soundalike.pipeline.ingest` followed by
    :func:`~soundalike.pipeline.embed`: a bad file is an ingest failure and gets no track row;
    a file whose bytes are stored already with every vector is not analysed again (moved or
    duplicated files cost a hash). Without workers (one job, an accelerator) it runs those two.

    workers : TrackWorkers, optional
        Started already (:func:`start_workers`); closed here. Else started here.

    Returns
    -------
    (ingest summary, embed summary)
    """
    policy = policy or WindowPolicy()
    plan = EmbedPlan(backends, policy)
    if workers is not None and not workers.serves(plan):
        workers.close()
        workers = None
    if workers is None and not can_use_workers(backends, jobs):
        s1 = ingest(store, root, manifest=manifest, policy=policy, run_id=run_id, jobs=jobs, progress=progress)
        return s1, embed(store, backends, policy=policy, run_id=run_id, jobs=jobs, batch_size=batch_size,
                         progress=progress)
    plan.register(store)
    s1, s2 = RunSummary("ingest"), RunSummary("embed")
    with workers or TrackWorkers.for_plan(plan, jobs) as workers:  # they start up while this process scans
        todo, result, n = scan_into(store, root, s1, manifest=manifest)
        if progress:
            progress("ingest", n, len(result.tracks))
        have = {k: store.embedded_track_ids(k) for k in plan.all_keys}
        records: dict[str, TrackRecord] = {}
        hashed_only = 0  # files of `todo` that need no analysis (unreadable, or analysed before)

        def items() -> Iterator[tuple[str, str, frozenset[str]]]:
            # hashed as the workers ask for more, so the first tracks start without waiting for all
            nonlocal hashed_only
            for rec in todo:
                try:
                    tid = file_sha256(rec.path)
                except OSError as exc:
                    out = FileOutcome(str(rec.path), "failed", *unreadable(exc))
                    s1.add_failure(out)
                    store.record_failure(run_id, out.path, out.kind, out.message)
                    hashed_only += 1
                    continue
                missing = frozenset(k for k in plan.all_keys if tid not in have[k])
                if not missing:  # same bytes analysed before (a moved or duplicated file)
                    s1.add_stored(add_record(store, rec, tid))
                    hashed_only += 1
                    continue
                records[str(rec.path)] = rec
                yield tid, str(rec.path), missing

        cost: Cost = [[0, 0.0, 0.0, 0.0] for _ in plan.backends]
        batch: list[TrackResult] = []
        if progress:
            progress("embed", 0, len(todo))
        for i, (res, c) in enumerate(workers.analyse(plan, items()), start=1):
            _add_cost(cost, c)
            batch.append(res)
            if len(batch) >= batch_size:
                _store_batch(store, batch, records, s1, s2, run_id)
                batch = []
            if progress:
                progress("ingest", n + hashed_only + i, len(result.tracks))
                progress("embed", i, len(todo) - hashed_only)
        if batch:
            _store_batch(store, batch, records, s1, s2, run_id)
        if progress:
            progress("ingest", len(result.tracks), len(result.tracks))
    record_scan_failures(store, result, run_id)
    record_cost(store, plan, cost, run_id)
    # tracks stored before without every vector (an earlier ingest, an interrupted run)
    rest = embed(store, backends, policy=policy, run_id=run_id, jobs=jobs, batch_size=batch_size)
    fresh = s2.done
    s2.done, s2.cached = fresh + rest.done, rest.cached - fresh
    for f in rest.failures:
        s2.add_failure(f)
    for f in rest.reports:
        s2.add_report(f)
    return s1, s2


def embed_in_workers(store: Store, plan: EmbedPlan, need: Sequence[Any], have: dict[str, set[str]],
                     summary: RunSummary, cost: Cost, *, jobs: int, batch_size: int, run_id: int | None,
                     progress: Progress | None) -> None:
    """``embed``'s loop with whole tracks analysed by `jobs` workers; this process only commits."""
    items = [(t.track_id, t.path, frozenset(k for k in plan.all_keys if t.track_id not in have[k])) for t in need]
    done: list[TrackResult] = []
    with TrackWorkers.for_plan(plan, jobs) as workers:
        for n, (result, c) in enumerate(workers.analyse(plan, items), start=1):
            _add_cost(cost, c)
            done.append(result)
            if len(done) >= batch_size or n == len(items):
                commit(store, done, summary, run_id=run_id)
                done = []
            if progress:
                progress("embed", n, len(need))


def _store_batch(store: Store, batch: list[TrackResult], records: dict[str, TrackRecord], s1: RunSummary,
                 s2: RunSummary, run_id: int | None) -> None:
    """Track rows of the files that decoded (and their ingest reports), then their vectors."""
    ok = [r for r in batch if r.failure is None]
    with store.transaction() as db:
        for r in batch:
            if r.failure is not None:  # not a track: an ingest failure, as `ingest` reports it
                out = FileOutcome(r.path, "failed", r.failure[0], r.failure[1])
                s1.add_failure(out)
                store.record_failure(run_id, r.path, out.kind, out.message, db=db)
                continue
            status = add_record(store, records[r.path], r.track_id, duration_s=r.duration_s, db=db)
            s1.add_stored(status)
            if r.truncated:
                s1.add_report(FileOutcome(r.path, status, "truncated", r.truncated, r.track_id))
                store.record_failure(run_id, r.path, "truncated", r.truncated, db=db)
    commit(store, ok, s2, run_id=run_id)


def _add_cost(acc: Cost, part: Cost) -> None:
    for a, p in zip(acc, part):
        for i, x in enumerate(p):
            a[i] += x
