"""Ingest and embed: library → store → backends → store, extracting once and caching.

On the CPU, whole tracks go to worker processes (:mod:`soundalike.track_workers`, built on the
steps below), so every core stays busy; with an accelerator, decoding and resampling run in a
worker pool a few tracks ahead of the models, which run here. Each track's windows go through a
backend in one batch, and a backend's companions (musicnn's taggram) come from the same forward
pass. Each batch of tracks is committed in one transaction together with its failures, so an
interrupted run loses at most the batch in flight and a rerun computes only what is missing.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ._lifecycle import process_pool
from .audio import WindowPolicy, Windows, load_windows
from .backends.base import Backend
from .errors import AudioError, SoundalikeError
from .library import ScanResult, TrackRecord, file_sha256, scan
from .store import Store

__all__ = [
    "FileOutcome", "RunSummary", "EmbedPlan", "TrackResult", "ingest", "embed", "model_key", "register",
    "decode_track", "embed_decoded", "commit", "record_cost", "scan_into", "add_record", "record_scan_failures",
    "unreadable",
]

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class FileOutcome:
    """What happened to one file: ``status`` is new / known / moved / done / cached / failed."""

    path: str
    status: str
    kind: str = ""
    message: str = ""
    track_id: str | None = None


@dataclass
class RunSummary:
    """Counts of a stage: done / cached / failed by kind, plus every failure line.

    ``reported`` counts files that were processed but carry a warning by kind (``truncated``:
    embedded from the part that decodes), ``reports`` lists them; they count as done, not failed.
    """

    stage: str
    done: int = 0
    cached: int = 0
    failed: Counter = field(default_factory=Counter)
    failures: list[FileOutcome] = field(default_factory=list)
    reported: Counter = field(default_factory=Counter)
    reports: list[FileOutcome] = field(default_factory=list)

    def add_failure(self, outcome: FileOutcome) -> None:
        self.failed[outcome.kind] += 1
        self.failures.append(outcome)

    def add_stored(self, status: str) -> None:
        """Count a file stored by ingest: ``new`` is done, ``known`` / ``moved`` were there already."""
        if status == "new":
            self.done += 1
        else:
            self.cached += 1

    def add_report(self, outcome: FileOutcome) -> None:
        self.reported[outcome.kind] += 1
        self.reports.append(outcome)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def as_json(self) -> dict:
        return {
            "stage": self.stage,
            "done": self.done,
            "cached": self.cached,
            "failed": dict(self.failed),
            "failures": [{"path": f.path, "kind": f.kind, "message": f.message} for f in self.failures],
            "reported": dict(self.reported),
            "reports": [{"path": f.path, "kind": f.kind, "message": f.message} for f in self.reports],
        }


def _pool(jobs: int) -> Executor | None:
    if jobs <= 1:
        return None
    # forkserver: children do not inherit torch's thread pools from a parent that loaded a model;
    # process_pool makes every process of the pool die with this one (even after kill -9).
    return process_pool(jobs)


def _map(pool: Executor | None, fn: Callable, items: Sequence) -> Iterator:
    if pool is None:
        return map(fn, items)
    return pool.map(fn, items, chunksize=max(1, min(8, len(items) // (4 * (os.cpu_count() or 1)) or 1)))


# --- ingest ------------------------------------------------------------------------------
def unreadable(exc: OSError) -> tuple[str, str]:
    """``(kind, message)`` of a file that vanished or cannot be opened between scan and read."""
    return "unreadable", f"the file cannot be read ({exc.strerror or exc})"


def _probe(args: tuple[str, WindowPolicy]) -> tuple[str | None, float | None, str, str]:
    """Hash the file and decode its analysis windows once to validate it (worker function).

    A good file gives ``(track_id, duration, "", "")``, a truncated one ``(track_id, duration,
    "truncated", reason)``, a bad one ``(None, None, kind, reason)``.
    """
    path, policy = args
    try:
        win = load_windows(path, policy=policy)
        return file_sha256(path), win.duration_s, "truncated" if win.truncated else "", win.truncated
    except AudioError as exc:
        return None, None, exc.kind, str(exc)
    except OSError as exc:  # vanished between scan and read
        return None, None, *unreadable(exc)


def ingest(
    store: Store,
    root: str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    policy: WindowPolicy | None = None,
    run_id: int | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> RunSummary:
    """Scan a library into the store, validating every file's audio.

    Each bad file becomes one failure (path, kind, plain reason) and the run goes on.
    Files whose bytes are already stored are recognised by hash (``known`` / ``moved``).
    """
    policy = policy or WindowPolicy()
    summary = RunSummary("ingest")
    todo, result, n = scan_into(store, root, summary, manifest=manifest)
    total = len(result.tracks)
    if progress:
        progress("ingest", n, total)
    pool = _pool(jobs)
    try:
        batch = 64
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            probed = list(_map(pool, _probe, [(str(r.path), policy) for r in chunk]))
            with store.transaction() as db:
                for rec, (tid, duration, kind, message) in zip(chunk, probed):
                    if tid is None:
                        out = FileOutcome(str(rec.path), "failed", kind, message)
                        summary.add_failure(out)
                        store.record_failure(run_id, out.path, kind, message, db=db)
                        continue
                    status = add_record(store, rec, tid, duration_s=duration, db=db)
                    if kind:  # truncated: stored, and reported
                        summary.add_report(FileOutcome(str(rec.path), status, kind, message, tid))
                        store.record_failure(run_id, str(rec.path), kind, message, db=db)
                    summary.add_stored(status)
            n += len(chunk)
            if progress:
                progress("ingest", n, total)
    finally:
        if pool is not None:
            pool.shutdown()
    record_scan_failures(store, result, run_id)
    return summary


def scan_into(store: Store, root: str | os.PathLike, summary: RunSummary, *,
              manifest: str | os.PathLike | None = None) -> tuple[list[TrackRecord], ScanResult, int]:
    """Scan `root`; store the files already known by path whose bytes are unchanged.

    Returns the records still to validate, the scan, and how many were stored here (counted as
    ``cached`` in `summary`, which also gets the scan's failures).
    """
    result = scan(root, manifest=manifest)
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


# --- embed -------------------------------------------------------------------------------
# The embed loop is built from three public steps that the local run and Ray share:
# ``EmbedPlan`` (which model keys each backend writes), ``decode_track`` (a worker function) +
# ``embed_decoded`` (the models), and ``commit`` (the single writer). ``embed`` below runs them
# locally; ``soundalike.distributed`` runs the first two in Ray actors and ``commit`` on the driver.
def model_key(backend: Backend, policy: WindowPolicy) -> tuple[str, dict]:
    """The model key and stored config of `backend` analysing windows chosen by `policy`."""
    return backend.key_for(policy.key()), backend.stored_config(policy.key())


def register(store: Store, backend: Backend, policy: WindowPolicy, *, companion_of: str | None = None) -> str:
    """Record the model in the store; a companion's row names its primary's key (not hashed)."""
    key, config = model_key(backend, policy)
    stored = {**config, "default_layer": backend.default_layer}
    if companion_of is not None:
        stored["companion_of"] = companion_of
    store.register_model(
        model_key=key, backend=backend.name, config=stored, weights_sha256=backend.weights_sha256,
        weights_kind=backend.weights_kind, dim=backend.embedding_size, n_layers=backend.n_layers,
    )
    return key


class EmbedPlan:
    """The backends of a run and the model keys each one writes (its own, then its companions').

    Parameters
    ----------
    backends : sequence of Backend
    policy : WindowPolicy
    """

    def __init__(self, backends: Sequence[Backend], policy: WindowPolicy) -> None:
        self.backends = list(backends)
        self.policy = policy
        self.units: list[list[Backend]] = [[b, *b.companions()] for b in self.backends]
        self.keys: list[list[str]] = [[model_key(u, policy)[0] for u in us] for us in self.units]
        self.rates: tuple[int, ...] = tuple(sorted({int(b.sample_rate) for b in self.backends}))

    @property
    def all_keys(self) -> list[str]:
        return [k for ks in self.keys for k in ks]

    def register(self, store: Store) -> None:
        for us, ks in zip(self.units, self.keys):
            register(store, us[0], self.policy)
            for u in us[1:]:
                register(store, u, self.policy, companion_of=ks[0])


@dataclass
class TrackResult:
    """One track's outcome: vectors per model key with their windows, or a failure."""

    track_id: str
    path: str
    vectors: dict[str, tuple[np.ndarray, list[float], list[float]]] = field(default_factory=dict)
    failure: tuple[str, str] | None = None  # (kind, message) of a file that could not be decoded
    backend_failures: list[str] = field(default_factory=list)
    truncated: str = ""  # why the file decodes only in part: embedded from what decodes, and reported
    duration_s: float | None = None  # of the whole file, as decoding found it


def decode_track(path: str, policy: WindowPolicy, rates: tuple[int, ...]) -> dict[int, Windows] | tuple[str, str]:
    """Decode a file's windows and resample them to every rate asked for (a worker function).

    Returns ``{rate: Windows}``, or ``(kind, message)`` for a file that cannot be used.
    """
    try:
        win = load_windows(path, policy=policy)
        return {sr: win.resampled(sr) for sr in rates}
    except AudioError as exc:
        return exc.kind, str(exc)
    except OSError as exc:
        return unreadable(exc)


def _decode_item(args: tuple[str, WindowPolicy, tuple[int, ...]]) -> dict[int, Windows] | tuple[str, str]:
    return decode_track(*args)


def embed_decoded(
    plan: EmbedPlan,
    tracks: Sequence[tuple[str, str, dict[int, Windows] | tuple[str, str]]],
    missing: Callable[[str, str], bool] = lambda tid, key: True,
    *,
    max_windows: int = 64,
    cost: list[list[float]] | None = None,
) -> list[TrackResult]:
    """Run every backend of `plan` on decoded tracks, windows of all `tracks` batched together.

    A backend runs only for tracks where one of its keys is `missing`; a track the backend
    rejects is isolated and reported (the others keep their vectors).

    Parameters
    ----------
    tracks : sequence of (track_id, path, decode_track(...) result)
    missing : callable (track_id, model_key) -> bool
    max_windows : int
        Windows per ``embed_with_companions`` call.
    cost : list, optional
        Per backend ``[clips, audio seconds, wall s, cpu s]``, accumulated in place.
    """
    results = [TrackResult(tid, path) for tid, path, _ in tracks]
    ok = []
    for res, (_, _, decoded) in zip(results, tracks):
        if isinstance(decoded, dict):
            ok.append((res, decoded))
            first = next(iter(decoded.values()), None)
            res.truncated = first.truncated if first is not None else ""
            res.duration_s = first.duration_s if first is not None else None
        else:
            res.failure = decoded
    for bi, (units, keys) in enumerate(zip(plan.units, plan.keys)):
        backend = units[0]
        todo = [(res, d[int(backend.sample_rate)]) for res, d in ok if any(missing(res.track_id, k) for k in keys)]
        if not todo:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            per_track = _embed_windows(backend, [w.clips for _, w in todo], max_windows)
        except SoundalikeError:
            per_track = []
            for res, w in todo:  # isolate the file the backend rejects
                try:
                    per_track.extend(_embed_windows(backend, [w.clips], max_windows))
                except SoundalikeError as exc:
                    per_track.append(None)  # type: ignore[arg-type]
                    res.backend_failures.append(f"{backend.name}: {exc}")
        if cost is not None:
            c = cost[bi]
            c[0] += sum(len(w.clips) for _, w in todo)
            c[1] += sum(x.shape[0] for _, w in todo for x in w.clips) / backend.sample_rate
            c[2] += time.perf_counter() - t0
            c[3] += time.process_time() - c0
        for (res, w), per_unit in zip(todo, per_track):
            if per_unit is None:
                continue
            lengths = [x.shape[0] / w.sample_rate for x in w.clips]
            for k, v in zip(keys, per_unit):
                if missing(res.track_id, k):
                    res.vectors[k] = (v, list(w.starts_s), lengths)
    return results


def _embed_windows(backend: Backend, per_track: list[list[np.ndarray]], max_windows: int) -> list[list[np.ndarray]]:
    """Windows of several tracks, equal lengths batched together -> for each track, for each
    unit (backend, companions...), an ``(n_windows, n_layers, d)`` array."""
    by_len: dict[int, list[tuple[int, int]]] = {}
    for i, clips in enumerate(per_track):
        for j, c in enumerate(clips):
            by_len.setdefault(c.shape[0], []).append((i, j))
    out: list[list[list[np.ndarray | None]]] = [[] for _ in per_track]
    for idx in by_len.values():
        for s in range(0, len(idx), max_windows):
            group = idx[s:s + max_windows]
            vecs = backend.embed_with_companions(np.stack([per_track[i][j] for i, j in group]).astype(np.float32, copy=False))
            for u, v in enumerate(vecs):
                for (i, j), row in zip(group, v):
                    while len(out[i]) <= u:
                        out[i].append([None] * len(per_track[i]))
                    out[i][u][j] = row
    return [[np.stack(ws) for ws in units] for units in out]  # type: ignore[arg-type]


def commit(store: Store, results: Sequence[TrackResult], summary: RunSummary, *, run_id: int | None = None) -> None:
    """Write a batch of results (vectors and failures) in one transaction."""
    with store.transaction() as db:
        for r in results:
            if r.failure is not None:
                out = FileOutcome(r.path, "failed", r.failure[0], r.failure[1], r.track_id)
                summary.add_failure(out)
                store.record_failure(run_id, r.path, out.kind, out.message, db=db)
                continue
            for message in r.backend_failures:
                out = FileOutcome(r.path, "failed", "backend", message, r.track_id)
                summary.add_failure(out)
                store.record_failure(run_id, r.path, "backend", message, db=db)
            for key, (v, starts, lengths) in r.vectors.items():
                store.put_embeddings(db, track_id=r.track_id, model_key=key, vectors=v, starts_s=starts, lengths_s=lengths)
            if r.vectors:
                summary.done += 1
                if r.truncated:
                    summary.add_report(FileOutcome(r.path, "done", "truncated", r.truncated, r.track_id))
                    store.record_failure(run_id, r.path, "truncated", r.truncated, db=db)


def _decoded_stream(pool: Executor | None, items: list[TrackRecord], policy: WindowPolicy, rates: tuple[int, ...],
                    ahead: int) -> Iterator[tuple[TrackRecord, dict[int, Windows] | tuple[str, str]]]:
    """Yield each track with its decoded windows while the next `ahead` tracks decode.

    Decoding and resampling run in `pool` (or one background thread when there is no pool),
    so the models never wait for audio; at most ``ahead + 1`` tracks are in memory.
    """
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundalike-decode") if pool is None else None
    ex = pool if pool is not None else own
    assert ex is not None
    pending: deque[tuple[TrackRecord, Future]] = deque()
    it = iter(items)
    try:
        for t in it:
            pending.append((t, ex.submit(_decode_item, (t.path, policy, rates))))
            if len(pending) > ahead:
                break
        while pending:
            t, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, ex.submit(_decode_item, (nxt.path, policy, rates))))
            yield t, fut.result()
    finally:
        for _, f in pending:
            f.cancel()
        if own is not None:
            own.shutdown(wait=True, cancel_futures=True)


def embed(
    store: Store,
    backends: Sequence[Backend],
    *,
    policy: WindowPolicy | None = None,
    run_id: int | None = None,
    jobs: int = 1,
    batch_size: int = 16,
    track_ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Embed every stored track that lacks vectors for each backend (and its companions).

    Parameters
    ----------
    store : Store
    backends : sequence of Backend
    policy : WindowPolicy
        Which windows are analysed (part of each model key).
    jobs : int
        Worker processes. Above 1, with every backend on the CPU and built by ``load_backend``,
        whole tracks are analysed in the workers (:mod:`soundalike.track_workers`); else they
        decode ahead of the models, which run in this process.
    batch_size : int
        Tracks per committed transaction.
    track_ids : iterable of str, optional
        Restrict to these tracks.
    progress : callable ``(stage, done, total)``, optional
        Called after every track.

    Returns
    -------
    RunSummary
        ``done`` counts tracks that got new vectors, ``cached`` tracks that had them all.
    """
    policy = policy or WindowPolicy()
    plan = EmbedPlan(backends, policy)
    summary = RunSummary("embed")
    tracks = store.tracks()
    if track_ids is not None:
        wanted = set(track_ids)
        tracks = [t for t in tracks if t.track_id in wanted]
    plan.register(store)
    have = {k: store.embedded_track_ids(k) for k in plan.all_keys}
    need = [t for t in tracks if any(t.track_id not in h for h in have.values())]
    summary.cached = len(tracks) - len(need)
    _log_partial(plan, have, need)
    if progress:
        progress("embed", 0, len(need))
    cost = [[0, 0.0, 0.0, 0.0] for _ in plan.backends]
    from .track_workers import can_use_workers, embed_in_workers  # imported here: built on this module

    if need and can_use_workers(plan.backends, jobs):
        embed_in_workers(store, plan, need, have, summary, cost, jobs=jobs, batch_size=batch_size, run_id=run_id,
                          progress=progress)
    else:
        _embed_here(store, plan, need, have, summary, cost, jobs=jobs, batch_size=batch_size, run_id=run_id,
                    progress=progress)
    record_cost(store, plan, cost, run_id)
    return summary


def record_cost(store: Store, plan: EmbedPlan, cost: list[list[float]], run_id: int | None) -> None:
    """Store each backend's ``[clips, audio s, wall s, cpu s]`` of a run (``timings``)."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    for keys, (clips, audio_s, wall, cpu) in zip(plan.keys, cost):
        if clips:
            store.record_timing(run_id=run_id, model_key=keys[0], n_clips=clips, audio_s=audio_s, seconds=wall,
                                cpu_s=cpu, peak_rss_mb=peak_mb)


def _embed_here(store: Store, plan: EmbedPlan, need: list[TrackRecord], have: dict[str, set[str]],
                summary: RunSummary, cost: list[list[float]], *, jobs: int, batch_size: int,
                run_id: int | None, progress: Progress | None) -> None:
    """Decoding in a pool (or a thread) a few tracks ahead, the models in this process."""
    pool = _pool(jobs)
    missing = lambda tid, key: tid not in have[key]  # noqa: E731
    done: list[TrackResult] = []
    # On the CPU a track's windows are batch enough (progress moves per track); accelerators
    # get the windows of `batch_size` tracks at once.
    group_size = 1 if all(str(b.device).split(":")[0] == "cpu" for b in plan.backends) else batch_size
    group: list[tuple[str, str, dict[int, Windows] | tuple[str, str]]] = []
    n = 0
    try:
        ahead = max(2, 2 * max(jobs, 1), group_size)
        for t, decoded in _decoded_stream(pool, need, plan.policy, plan.rates, ahead):
            group.append((t.track_id, t.path, decoded))
            if len(group) < group_size:
                continue
            done.extend(embed_decoded(plan, group, missing, max_windows=max(batch_size, 1), cost=cost))
            n += len(group)
            group = []
            if len(done) >= batch_size:
                commit(store, done, summary, run_id=run_id)
                done = []
            if progress:
                progress("embed", n, len(need))
        if group:
            done.extend(embed_decoded(plan, group, missing, max_windows=max(batch_size, 1), cost=cost))
            n += len(group)
        if done:
            commit(store, done, summary, run_id=run_id)
        if progress and group:
            progress("embed", n, len(need))
    finally:
        if pool is not None:
            pool.shutdown()


def _log_partial(plan: EmbedPlan, have: dict[str, set[str]], need: list[TrackRecord]) -> None:
    """Say so when tracks analysed before get a new output (e.g. musicnn's taggram): the
    forward pass runs again for them, which costs what analysing them did."""
    for units, keys in zip(plan.units, plan.keys):
        own = have[keys[0]]
        for u, k in zip(units[1:], keys[1:]):
            n = sum(1 for t in need if t.track_id in own and t.track_id not in have[k])
            if n:
                log.warning("%d track(s) already analysed by %s get its %s output now (one more pass each)",
                            n, units[0].name, getattr(u, "output", u.name))
