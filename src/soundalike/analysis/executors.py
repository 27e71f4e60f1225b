"""Where the kernel runs: this process, a pool of worker processes, or a Ray cluster.

An executor turns work items ``(track_id, path, missing model keys)`` into
:class:`~soundalike.analysis.kernel.TrackResult` objects by calling :func:`decode_track` and
:func:`embed_decoded`; it never writes the store (the one commit loop of
:func:`soundalike.analysis.analyse` does). Every executor gives the same vectors within the
CONTRACTS tolerance; they differ only in where the work happens:

* :class:`InProcess`: the models run here; decoding and resampling run a few tracks ahead in a
  thread (or, with ``jobs > 1``, in a process pool, which keeps an accelerator fed);
* :class:`~soundalike.analysis.workers.TrackWorkers` (``LocalWorkers``): whole tracks in
  ``jobs`` processes, each with its own copy of the backends (the CPU default above one job);
* :class:`~soundalike.analysis.ray.RayCluster`: whole batches in Ray actors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor as _PoolExecutor, Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from .._lifecycle import process_pool
from ..audio import WindowPolicy
from ..backends.base import Backend
from .kernel import Cost, DecodedTrack, EmbedPlan, Failure, TrackResult, decode_track, embed_decoded

__all__ = ["Item", "Executor", "InProcess", "auto_executor", "on_cpu"]

Item = tuple[str, str, frozenset]  # (track_id, path, model keys still missing for that track)


@runtime_checkable
class Executor(Protocol):
    """Runs the kernel on work items; yields one result per item (any order)."""

    def results(self, plan: EmbedPlan, items: Iterable[Item], cost: Cost) -> Iterator[TrackResult]:
        """Decode and embed each item with `plan`; add each backend's cost to `cost` in place."""
        ...

    def close(self) -> None:
        ...


def on_cpu(backends: Sequence[Backend]) -> bool:
    """Whether every backend runs on the CPU."""
    return all(str(b.device).split(":")[0] == "cpu" for b in backends)


def _decode_item(args: tuple[str, WindowPolicy, tuple[int, ...]]) -> DecodedTrack | Failure:
    return decode_track(*args)


class InProcess:
    """The models run in this process; decoding runs ahead of them.

    Parameters
    ----------
    jobs : int
        Above 1, decoding and resampling run in that many processes (an accelerator's feed);
        else in one background thread.
    batch_size : int
        Tracks whose windows share a forward pass on an accelerator (on the CPU one track's
        windows are batch enough, so results come track by track), and windows per call.
    """

    def __init__(self, *, jobs: int = 1, batch_size: int = 16) -> None:
        self.jobs = max(1, int(jobs))
        self.batch_size = max(1, int(batch_size))

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is held between runs."""

    def results(self, plan: EmbedPlan, items: Iterable[Item], cost: Cost) -> Iterator[TrackResult]:
        missing_of: dict[str, frozenset] = {}
        missing = lambda tid, key: key in missing_of[tid]  # noqa: E731
        group_size = 1 if on_cpu(plan.backends) else self.batch_size
        group: list[tuple[str, str, DecodedTrack | Failure]] = []
        pool = process_pool(self.jobs) if self.jobs > 1 else None
        try:
            ahead = max(2, 2 * self.jobs, group_size)
            for (tid, path, keys), decoded in _decoded_stream(pool, items, plan, ahead):
                missing_of[tid] = keys
                group.append((tid, path, decoded))
                if len(group) >= group_size:
                    yield from embed_decoded(plan, group, missing, max_windows=self.batch_size, cost=cost)
                    group = []
            if group:
                yield from embed_decoded(plan, group, missing, max_windows=self.batch_size, cost=cost)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _decoded_stream(pool: _PoolExecutor | None, items: Iterable[Item], plan: EmbedPlan, ahead: int
                    ) -> Iterator[tuple[Item, DecodedTrack | Failure]]:
    """Yield each item with its decoded windows while the next `ahead` items decode.

    Decoding and resampling run in `pool` (or one background thread when there is no pool), so
    the models never wait for audio; at most ``ahead + 1`` tracks are in memory.
    """
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundalike-decode") if pool is None else None
    ex = pool if pool is not None else own
    assert ex is not None
    pending: deque[tuple[Item, Future]] = deque()
    it = iter(items)

    def submit(item: Item) -> None:
        pending.append((item, ex.submit(_decode_item, (item[1], plan.policy, plan.rates))))

    try:
        for item in it:
            submit(item)
            if len(pending) > ahead:
                break
        while pending:
            item, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
            yield item, fut.result()
    finally:
        for _, f in pending:
            f.cancel()
        if own is not None:
            own.shutdown(wait=True, cancel_futures=True)


def auto_executor(backends: Sequence[Backend], jobs: int, *, batch_size: int = 16) -> Executor:
    """The executor ``--jobs`` asks for: worker processes when every backend can run in one
    (more than one job, on the CPU, built by ``load_backend``), else this process."""
    from .workers import TrackWorkers, can_use_workers

    if can_use_workers(backends, jobs):
        return TrackWorkers.lazy(jobs)
    return InProcess(jobs=jobs, batch_size=batch_size)
