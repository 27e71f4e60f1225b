"""Per-track analysis workers: each process decodes a whole track and runs every backend on it.

The CPU executor of the analysis. Handing whole tracks to ``jobs`` processes keeps every core
busy by construction: no stage waits for another (a pool that only decodes, with the models in
the parent, left the parent's core saturated and the decoding core mostly idle). Each worker
builds the same backends once (``load_backend`` with the parent's arguments, see
:attr:`Backend.load_spec`), with ``cpu_count // jobs`` threads, and returns
:class:`~soundalike.analysis.kernel.TrackResult` objects; the parent stays the store's only writer.

Heavy imports (torch, librosa's numba-compiled beat tracker) are paid once, in the forkserver
(its preload list, set before the first pool of the process starts), and every worker inherits
them through ``fork``; each worker then only loads its models.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from .._lifecycle import process_pool, start_forkserver
from .._machine import threads_per_worker
from ..audio import WindowPolicy
from ..backends.base import Backend
from .executors import Item
from .kernel import Cost, EmbedPlan, TrackResult, add_cost, decode_track, embed_decoded, new_cost

__all__ = ["TrackWorkers", "LocalWorkers", "can_use_workers", "start_workers"]

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

    from ..backends.registry import load_backend

    threadpool_limits(threads)  # BLAS / OpenMP pools of numpy and scipy: one per worker's share
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - backends without torch
        pass
    _PLAN = EmbedPlan([load_backend(**spec) for spec in specs], policy)


def _analyse(item: Item) -> tuple[TrackResult, Cost]:
    track_id, path, missing = item
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    plan = _PLAN
    assert plan is not None, "worker initialiser did not run"
    cost = new_cost(plan)
    decoded = decode_track(path, plan.policy, plan.rates)
    result = embed_decoded(plan, [(track_id, path, decoded)], lambda _t, k: k in missing, cost=cost)[0]
    return result, cost


def _ready() -> None:
    """A no-op task: submitting one per worker starts the workers (they start on demand)."""


class TrackWorkers:
    """A pool of ``jobs`` processes analysing whole tracks, each with the backends of `specs`.

    The workers start (import, load their models) as soon as the pool is made, so that it can be
    made before this process loads its own copy of the models; :meth:`results` checks that the
    plan it gets was built from the same specs, and starts workers for that plan otherwise (or,
    made by :meth:`lazy`, at the first call).

    Parameters
    ----------
    specs : list of dict
        ``load_backend`` keyword arguments of each backend (``Backend.load_spec``).
    policy : WindowPolicy
    jobs : int > 1
    """

    def __init__(self, specs: Sequence[dict[str, Any]] | None, policy: WindowPolicy | None, jobs: int) -> None:
        self.jobs = jobs
        self.specs: list[dict[str, Any]] | None = None
        self.policy = policy
        self.pool = None
        self._starter: threading.Thread | None = None
        if specs is not None and policy is not None:
            self._start_pool([dict(s) for s in specs], policy)

    @classmethod
    def lazy(cls, jobs: int) -> "TrackWorkers":
        """Workers that start at the first :meth:`results`, for that call's plan."""
        return cls(None, None, jobs)

    @classmethod
    def for_plan(cls, plan: EmbedPlan, jobs: int) -> "TrackWorkers":
        return cls([b.load_spec or {} for b in plan.backends], plan.policy, jobs)

    def _start_pool(self, specs: list[dict[str, Any]], policy: WindowPolicy) -> None:
        from ..backends.registry import worker_preload_modules

        self.specs, self.policy = specs, policy
        # the forkserver starts here, in this thread: it dies with the thread that started it
        # (parent-death signal), so never in the short-lived starter thread below
        start_forkserver(worker_preload_modules([str(s["name"]) for s in specs]))
        threads = threads_per_worker(self.jobs)
        self.pool = process_pool(self.jobs, initializer=_init, initargs=(specs, policy, threads))
        # Starting a worker waits until the forkserver has imported its preload modules (seconds):
        # a thread waits instead of this process, which goes on loading its models meanwhile.
        self._starter = threading.Thread(target=self._start, args=(self.pool,), name="soundalike-workers-start",
                                         daemon=True)
        self._starter.start()

    def _start(self, pool: Any) -> None:
        try:
            for _ in range(self.jobs):
                pool.submit(_ready)
        except RuntimeError:  # shut down before they started: nothing to start
            pass

    def serves(self, plan: EmbedPlan) -> bool:
        """Whether these workers build exactly the backends and windows of `plan`."""
        return self.pool is not None and plan.policy == self.policy and [b.load_spec for b in plan.backends] == self.specs

    def results(self, plan: EmbedPlan, items: Iterable[Item], cost: Cost) -> Iterator[TrackResult]:
        """Yield a result per ``(track_id, path, missing keys)`` item, in order, with ``2 * jobs``
        tracks in flight; each worker's cost is added to `cost`."""
        if not can_use_workers(plan.backends, self.jobs):
            raise ValueError("worker processes need more than one job and backends built by load_backend on the CPU")
        if not self.serves(plan):  # started for other backends or windows (or not yet)
            self.close()
            self._start_pool([b.load_spec or {} for b in plan.backends], plan.policy)
        pool = self.pool
        assert pool is not None
        pending: deque[Future] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(pool.submit(_analyse, item))
                if len(pending) >= 2 * self.jobs:
                    break
            while pending:
                result, c = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(_analyse, nxt))
                unknown = set(result.vectors) - set(plan.all_keys)
                if unknown:  # a worker built another model (other weights on its path): never store it
                    raise RuntimeError(f"a worker produced model keys {sorted(unknown)} that this run did not register")
                add_cost(cost, c)
                yield result
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join()
            self._starter = None
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> "TrackWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LocalWorkers = TrackWorkers


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
    from ..errors import SoundalikeError

    specs = [{"name": n, "weights": weights, "device": device, "dtype": dtype, **options} for n in names]
    try:
        return TrackWorkers(specs, policy, jobs)
    except SoundalikeError:
        return None
