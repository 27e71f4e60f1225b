"""Ingest and embed: library → store → backends → store, extracting once and caching.

Decoding and resampling run in a worker pool one batch ahead of the models (so a GPU never
waits for audio); windows of many files are batched per backend; each batch of
tracks is committed in one transaction together with its failures, so an interrupted run
loses at most the batch in flight and a rerun computes only what is missing.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._lifecycle import process_pool
from .audio import WindowPolicy, Windows, load_windows
from .backends.base import Backend, model_key_for
from .errors import AudioError, SoundalikeError
from .library import TrackRecord, file_sha256, scan
from .store import Store

__all__ = ["FileOutcome", "RunSummary", "ingest", "embed", "model_key", "register"]

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
        return None, None, "unreadable", f"the file cannot be read ({exc.strerror or exc})"


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
    result = scan(root, manifest=manifest)
    summary = RunSummary("ingest")
    for path, kind, message in result.failures:
        summary.add_failure(FileOutcome(str(path), "failed", kind, message))
    records = result.tracks
    known_paths = store.track_ids_by_path()
    todo: list[TrackRecord] = []
    quick: list[tuple[TrackRecord, str]] = []
    for rec in records:
        tid = known_paths.get(str(rec.path))
        # Path already stored and bytes unchanged: no need to decode again (hash still checked).
        if tid is not None and rec.path.is_file():
            quick.append((rec, tid))
        else:
            todo.append(rec)
    total = len(records)
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
            store.add_track(track_id=tid, path=str(rec.path), artist=rec.artist, title=rec.title, album=rec.album,
                            external_id=rec.external_id, genres=rec.genres, artist_mbid=rec.artist_mbid, db=db)
            summary.cached += 1
            n += 1
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
                    status = store.add_track(
                        track_id=tid, path=str(rec.path), artist=rec.artist, title=rec.title, album=rec.album,
                        duration_s=duration, external_id=rec.external_id, genres=rec.genres,
                        artist_mbid=rec.artist_mbid, db=db,
                    )
                    if kind:  # truncated: stored, and reported
                        summary.add_report(FileOutcome(str(rec.path), status, kind, message, tid))
                        store.record_failure(run_id, str(rec.path), kind, message, db=db)
                    if status == "new":
                        summary.done += 1
                    else:
                        summary.cached += 1
            n += len(chunk)
            if progress:
                progress("ingest", n, total)
    finally:
        if pool is not None:
            pool.shutdown()
    # scan-level failures (unsupported files, unreadable folders) are recorded too
    if result.failures:
        with store.transaction() as db:
            for path, kind, message in result.failures:
                store.record_failure(run_id, str(path), kind, message, db=db)
    return summary


# --- embed -------------------------------------------------------------------------------
def model_key(backend: Backend, policy: WindowPolicy) -> tuple[str, dict]:
    """The model key and stored config of `backend` analysing windows chosen by `policy`."""
    config = {**backend.config(), "window": policy.key()}
    return model_key_for(backend.name, config, backend.weights_sha256), config


def register(store: Store, backend: Backend, policy: WindowPolicy) -> str:
    key, config = model_key(backend, policy)
    stored = {**config, "default_layer": backend.default_layer}
    store.register_model(
        model_key=key, backend=backend.name, config=stored, weights_sha256=backend.weights_sha256,
        weights_kind=backend.weights_kind, dim=backend.embedding_size, n_layers=backend.n_layers,
    )
    return key


def _decode(args: tuple[str, WindowPolicy, tuple[int, ...]]) -> dict[int, Windows] | tuple[str, str]:
    """Decode a file's windows and resample them to every rate asked for (worker function)."""
    path, policy, rates = args
    try:
        win = load_windows(path, policy=policy)
        return {sr: win.resampled(sr) for sr in rates}
    except AudioError as exc:
        return exc.kind, str(exc)
    except OSError as exc:
        return "unreadable", f"the file cannot be read ({exc.strerror or exc})"


def _decoded_batches(pool: Executor | None, batches: list[list[TrackRecord]], policy: WindowPolicy,
                     rates: tuple[int, ...]) -> Iterator[tuple[list[TrackRecord], list]]:
    """Yield each batch with its decoded windows while the next batch is already decoding.

    Decoding and resampling run in `pool` (or one background thread when there is no pool),
    so the model never waits for the next batch's audio; at most two batches are in memory.
    """
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundalike-decode") if pool is None else None
    ex = pool if pool is not None else own
    assert ex is not None

    def submit(batch: list[TrackRecord]) -> list[Future]:
        return [ex.submit(_decode, (t.path, policy, rates)) for t in batch]

    try:
        pending = submit(batches[0]) if batches else []
        for i, batch in enumerate(batches):
            current, pending = pending, (submit(batches[i + 1]) if i + 1 < len(batches) else [])
            yield batch, [f.result() for f in current]
    finally:
        for f in pending if batches else []:
            f.cancel()
        if own is not None:
            own.shutdown(wait=True, cancel_futures=True)


def _embed_windows(backend: Backend, per_track: list[list[np.ndarray]], max_batch: int) -> list[np.ndarray]:
    """Embed the windows of several tracks, batching equal-length windows together.

    Returns one ``(n_windows, n_layers, d)`` array per track.
    """
    flat = [(i, j, w) for i, ws in enumerate(per_track) for j, w in enumerate(ws)]
    out: list[list[np.ndarray | None]] = [[None] * len(ws) for ws in per_track]
    by_len: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    for item in flat:
        by_len.setdefault(item[2].shape[0], []).append(item)
    for items in by_len.values():
        for s in range(0, len(items), max_batch):
            group = items[s:s + max_batch]
            vecs = backend.embed_layers(np.stack([g[2] for g in group]).astype(np.float32, copy=False))
            for (i, j, _), v in zip(group, vecs):
                out[i][j] = v
    return [np.stack(ws) for ws in out]  # type: ignore[arg-type]


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
    """Embed every stored track that lacks vectors for each backend.

    Parameters
    ----------
    store : Store
    backends : sequence of Backend
    policy : WindowPolicy
        Which windows are analysed (part of each model key).
    jobs : int
        Decoding worker processes.
    batch_size : int
        Tracks per batch (and committed transaction); windows are batched across tracks.
    track_ids : iterable of str, optional
        Restrict to these tracks.

    Returns
    -------
    RunSummary
        ``done`` counts tracks that got new vectors, ``cached`` tracks that had them all.
    """
    policy = policy or WindowPolicy()
    summary = RunSummary("embed")
    tracks = store.tracks()
    if track_ids is not None:
        wanted = set(track_ids)
        tracks = [t for t in tracks if t.track_id in wanted]
    keys = [register(store, b, policy) for b in backends]
    have = [store.embedded_track_ids(k) for k in keys]
    need = [t for t in tracks if any(t.track_id not in h for h in have)]
    summary.cached = len(tracks) - len(need)
    if progress:
        progress("embed", 0, len(need))
    pool = _pool(jobs)
    n = 0
    cost = [[0, 0.0, 0.0, 0.0] for _ in backends]  # clips, audio seconds, wall s, cpu s of model work
    rates = tuple(sorted({int(b.sample_rate) for b in backends}))
    batches = [need[s:s + batch_size] for s in range(0, len(need), batch_size)]
    try:
        for chunk, decoded in _decoded_batches(pool, batches, policy, rates):
            ok = [(t, w) for t, w in zip(chunk, decoded) if isinstance(w, dict)]
            bad = [(t, w) for t, w in zip(chunk, decoded) if not isinstance(w, dict)]
            results: dict[str, list[tuple[int, np.ndarray, Windows]]] = {}
            backend_failures: list[FileOutcome] = []
            for bi, (backend, key) in enumerate(zip(backends, keys)):
                todo = [(t, w[backend.sample_rate]) for t, w in ok if t.track_id not in have[bi]]
                if not todo:
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    vecs = _embed_windows(backend, [w.clips for _, w in todo], max_batch=max(batch_size, 1))
                except SoundalikeError:
                    vecs = []
                    for t, w in todo:  # isolate the file the backend rejects
                        try:
                            vecs.extend(_embed_windows(backend, [w.clips], max_batch=max(batch_size, 1)))
                        except SoundalikeError as exc:
                            vecs.append(None)  # type: ignore[arg-type]
                            backend_failures.append(FileOutcome(t.path, "failed", "backend", f"{backend.name}: {exc}", t.track_id))
                cost[bi][0] += sum(len(w.clips) for _, w in todo)
                cost[bi][1] += sum(c.shape[0] for _, w in todo for c in w.clips) / backend.sample_rate
                cost[bi][2] += time.perf_counter() - t0
                cost[bi][3] += time.process_time() - c0
                for (t, w), v in zip(todo, vecs):
                    if v is not None:
                        results.setdefault(t.track_id, []).append((bi, v, w))
            with store.transaction() as db:
                for t, (kind, message) in bad:
                    out = FileOutcome(t.path, "failed", kind, message, t.track_id)
                    summary.add_failure(out)
                    store.record_failure(run_id, t.path, kind, message, db=db)
                for out in backend_failures:
                    summary.add_failure(out)
                    store.record_failure(run_id, out.path, out.kind, out.message, db=db)
                for t, w in ok:
                        cut = next(iter(w.values())).truncated
                        if cut and t.track_id in results:  # embedded from what decodes, and reported
                            summary.add_report(FileOutcome(t.path, "done", "truncated", cut, t.track_id))
                            store.record_failure(run_id, t.path, "truncated", cut, db=db)
                for tid, items in results.items():
                    for bi, v, w in items:
                        lengths = [c.shape[0] / w.sample_rate for c in w.clips]
                        store.put_embeddings(db, track_id=tid, model_key=keys[bi], vectors=v,
                                             starts_s=w.starts_s, lengths_s=lengths)
                summary.done += len(results)
            n += len(chunk)
            if progress:
                progress("embed", n, len(need))
    finally:
        if pool is not None:
            pool.shutdown()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    for key, (clips, audio_s, wall, cpu) in zip(keys, cost):
        if clips:
            store.record_timing(run_id=run_id, model_key=key, n_clips=clips, audio_s=audio_s, seconds=wall,
                                cpu_s=cpu, peak_rss_mb=peak_mb)
    return summary


def resolve_path(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()
