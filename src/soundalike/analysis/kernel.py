"""The analysis kernel: decode a track, embed decoded tracks, commit results (one transaction).

The three steps of ``docs/analysis-kernel.md``, with the values they pass: :class:`EmbedPlan`
(the backends of a run and the model keys each writes), :class:`TrackResult` (one track's
vectors or failure) and :class:`RunSummary` (done / cached / failed by kind). Only the analysis
package calls :func:`decode_track`, :func:`embed_decoded` and :func:`commit`: executors run the
first two (in this process, worker processes or Ray actors), the one commit loop of
:mod:`soundalike.analysis.run` the third.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..audio import WindowPolicy, Windows, load_windows
from ..backends.base import Backend
from ..errors import AudioError, SoundalikeError
from ..store import Store

__all__ = [
    "Cost", "Failure", "DecodedTrack", "Progress", "FileOutcome", "RunSummary", "EmbedPlan", "TrackResult",
    "model_key", "register", "decode_track", "embed_decoded", "commit", "record_cost", "unreadable", "new_cost",
    "add_cost", "log_partial",
]

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)
Failure = tuple[str, str]  # (kind, message)
DecodedTrack = dict[int, Windows]  # sample rate -> that track's windows at that rate
Cost = list[list[float]]  # per backend [clips, audio s, wall s, cpu s]


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


def unreadable(exc: OSError) -> Failure:
    """``(kind, message)`` of a file that vanished or cannot be opened between scan and read."""
    return "unreadable", f"the file cannot be read ({exc.strerror or exc})"

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
    failure: Failure | None = None  # (kind, message) of a file that could not be decoded
    backend_failures: list[str] = field(default_factory=list)
    truncated: str = ""  # why the file decodes only in part: embedded from what decodes, and reported
    duration_s: float | None = None  # of the whole file, as decoding found it

def decode_track(path: str, policy: WindowPolicy, rates: tuple[int, ...]) -> DecodedTrack | Failure:
    """Decode a file's windows and resample them to every rate asked for (a worker function).

    Returns ``{rate: Windows}``, or ``(kind, message)`` for a file that cannot be used. With no
    rate asked for (validation only: an ingest without backends) the windows come at the file's
    own rate, so that duration and truncation are still known.
    """
    try:
        win = load_windows(path, policy=policy)
        return {sr: win.resampled(sr) for sr in rates} if rates else {win.sample_rate: win}
    except AudioError as exc:
        return exc.kind, str(exc)
    except OSError as exc:
        return unreadable(exc)

def embed_decoded(
    plan: EmbedPlan,
    tracks: Sequence[tuple[str, str, DecodedTrack | Failure]],
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

def record_cost(store: Store, plan: EmbedPlan, cost: list[list[float]], run_id: int | None) -> None:
    """Store each backend's ``[clips, audio s, wall s, cpu s]`` of a run (``timings``)."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    for keys, (clips, audio_s, wall, cpu) in zip(plan.keys, cost):
        if clips:
            store.record_timing(run_id=run_id, model_key=keys[0], n_clips=clips, audio_s=audio_s, seconds=wall,
                                cpu_s=cpu, peak_rss_mb=peak_mb)

def log_partial(plan: EmbedPlan, have: dict[str, set[str]], need: Sequence[str]) -> None:
    """Say so when tracks analysed before get a new output (e.g. musicnn's taggram): the
    forward pass runs again for them, which costs what analysing them did."""
    for units, keys in zip(plan.units, plan.keys):
        own = have[keys[0]]
        for u, k in zip(units[1:], keys[1:]):
            n = sum(1 for t in need if t in own and t not in have[k])
            if n:
                log.warning("%d track(s) already analysed by %s get its %s output now (one more pass each)",
                            n, units[0].name, getattr(u, "output", u.name))

def new_cost(plan: "EmbedPlan") -> Cost:
    """An empty per-backend cost table of `plan`."""
    return [[0, 0.0, 0.0, 0.0] for _ in plan.backends]

def add_cost(acc: Cost, part: Cost) -> None:
    """Add `part` (a worker's cost of one track) to `acc` in place."""
    for a, p in zip(acc, part):
        for i, x in enumerate(p):
            a[i] += x
