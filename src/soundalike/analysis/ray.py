"""The Ray executor: decoding and embedding in Ray actors (the ``[distributed]`` extra).

Every actor builds the run's backends once (``load_backend`` with the driver's arguments, as a
local worker does) and decodes and embeds whole batches of tracks with the kernel; the driver is
the store's only writer (the commit loop of :func:`soundalike.analysis.analyse`), so every
finished batch is committed in one transaction. A worker that dies mid-run loses only its batches
in flight: they are handed to the surviving workers (``retry_lost=True``), and when no worker is
left the run stops with :class:`WorkerLostError`, everything finished being committed, so a
rerun computes only what is missing.

Paths are read by the workers: on a multi-machine cluster the library must be mounted at the same
path on every node, and every node needs the same soundalike install and weights (the driver
checks that each worker's model keys equal its own).

Example
-------
>>> from soundalike.analysis import Stored, analyse                         # doctest: +SKIP
>>> from soundalike.analysis.ray import RayCluster                         # doctest: +SKIP
>>> with Store("lib.db") as store, RayCluster(workers=2) as ray:           # doctest: +SKIP
...     analyse(store, Stored(), [load_backend("musicnn-msd")], executor=ray)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._lifecycle import DescendantReaper
from ..audio import WindowPolicy
from ..errors import BackendUnavailable, ParameterError, SoundalikeError
from .executors import Item
from .kernel import Cost, EmbedPlan, TrackResult, add_cost, decode_track, embed_decoded, new_cost

__all__ = ["RayCluster", "WorkerLostError", "ray_available", "RAY_BATCH_SIZE"]

log = logging.getLogger(__name__)

#: tracks per Ray task (and per committed transaction) unless asked otherwise
RAY_BATCH_SIZE = 8


class WorkerLostError(SoundalikeError):
    """Every Ray worker died before the run finished (finished batches are committed)."""


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailable("Ray scale-out needs the ray package: pip install 'soundalike[distributed]'.") from exc
    return ray


class _EmbedWorker:
    """Body of the Ray actor: the run's backends; runs the kernel's decode and embed steps."""

    def __init__(self, specs: list[dict], policy: WindowPolicy, max_batch: int) -> None:
        from ..backends.registry import load_backend

        self.plan = EmbedPlan([load_backend(**spec) for spec in specs], policy)
        self.max_batch = max_batch

    def model_keys(self) -> list[str]:
        return self.plan.all_keys

    def embed(self, items: list[Item]) -> tuple[list[TrackResult], Cost]:
        """Decode and embed ``[(track_id, path, missing model keys), ...]``."""
        decoded = [(tid, path, decode_track(path, self.plan.policy, self.plan.rates)) for tid, path, _ in items]
        missing = {tid: keys for tid, _, keys in items}
        cost = new_cost(self.plan)
        out = embed_decoded(self.plan, decoded, lambda tid, key: key in missing[tid], max_windows=self.max_batch,
                            cost=cost)
        return out, cost


@dataclass
class _Slot:
    handle: Any
    alive: bool = True
    in_flight: set = field(default_factory=set)


class RayCluster:
    """A pool of Ray actors, each holding the run's backends.

    Parameters
    ----------
    workers : int > 0
        Number of actors.
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); default: start a local
        cluster with ``workers * cpus_per_worker`` CPUs (shut down again by :meth:`close`).
    batch_size : int > 0
        Tracks per task.
    cpus_per_worker : float > 0
        Ray CPUs reserved by each actor.
    max_in_flight : int > 0
        Batches queued per actor (2 keeps a worker busy while the driver writes).
    retry_lost : bool
        Hand the batches of a dead worker to the surviving ones.

    Attributes
    ----------
    actors : list
        The Ray actor handles (e.g. for ``ray.kill`` in a fault test); started by :meth:`start`
        or the first :meth:`results`.
    """

    def __init__(self, *, workers: int = 2, address: str | None = None, batch_size: int = RAY_BATCH_SIZE,
                 cpus_per_worker: float = 1.0, max_in_flight: int = 2, retry_lost: bool = True) -> None:
        for name, value in (("workers", workers), ("batch_size", batch_size), ("max_in_flight", max_in_flight)):
            if not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
        if not cpus_per_worker > 0:
            raise ParameterError(f"cpus_per_worker must be > 0, got {cpus_per_worker!r}.")
        self.workers = workers
        self.address = address
        self.batch_size = batch_size
        self.cpus_per_worker = cpus_per_worker
        self.max_in_flight = max_in_flight
        self.retry_lost = retry_lost
        self.actors: list[Any] = []
        self._plan_id: tuple | None = None
        self._started = False
        self._reaper: DescendantReaper | None = None

    @staticmethod
    def _plan_id_of(plan: EmbedPlan) -> tuple:
        return (plan.policy, tuple(plan.all_keys))

    def start(self, plan: EmbedPlan) -> None:
        """Start Ray (a local cluster unless an address was given) and the actors for `plan`."""
        if self.actors and self._plan_id == self._plan_id_of(plan):
            return
        self._kill_actors()
        specs = [b.load_spec for b in plan.backends]
        if any(s is None for s in specs):
            raise ParameterError("Ray workers build their backends with load_backend; pass backends built by it.")
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, int(np.ceil(self.workers * self.cpus_per_worker))), include_dashboard=False,
                         log_to_driver=False)
            self._started = True
            self._reaper = DescendantReaper()  # a killed driver leaves no Ray process
        actor_cls = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0)(_EmbedWorker)
        self.actors = [actor_cls.remote(specs, plan.policy, self.batch_size) for _ in range(self.workers)]
        keys = ray.get([a.model_keys.remote() for a in self.actors])
        if self._reaper is not None:
            self._reaper.watch()
        if any(k != plan.all_keys for k in keys):
            raise ParameterError(
                f"Ray workers built model key(s) {sorted({x for k in keys for x in k})}, but the driver has "
                f"{plan.all_keys}; install the same soundalike version and weights on every node."
            )
        self._plan_id = self._plan_id_of(plan)

    def results(self, plan: EmbedPlan, items: Iterable[Item], cost: Cost) -> Iterator[TrackResult]:
        """Yield results batch by batch as the actors finish them (any order).

        Raises
        ------
        WorkerLostError
            When every worker died with work left (what was yielded before stays valid).
        """
        ray = _import_ray()
        from ray.exceptions import RayActorError

        self.start(plan)
        it = iter(items)
        pending: deque[list[Item]] = deque()
        slots = [_Slot(a) for a in self.actors]
        owner: dict[Any, tuple[_Slot, list[Item]]] = {}
        n_done = lost = 0

        def next_batch() -> list[Item] | None:
            if pending:
                return pending.popleft()
            batch = [x for _, x in zip(range(self.batch_size), it)]
            return batch or None

        while True:
            for slot in slots:  # keep every live worker fed
                while slot.alive and len(slot.in_flight) < self.max_in_flight:
                    batch = next_batch()
                    if batch is None:
                        break
                    ref = slot.handle.embed.remote(batch)
                    slot.in_flight.add(ref)
                    owner[ref] = (slot, batch)
            if not owner:
                break
            ready, _ = ray.wait(list(owner), num_returns=1)
            ref = ready[0]
            slot, batch = owner.pop(ref)
            slot.in_flight.discard(ref)
            try:
                results, c = ray.get(ref)
            except RayActorError:
                slot.alive = False
                log.warning("a Ray worker died; %d track(s) of its batch are %s", len(batch),
                            "handed to another worker" if self.retry_lost else "left for a rerun")
                if self.retry_lost:
                    pending.appendleft(batch)
                else:
                    lost += len(batch)
                if not any(s.alive for s in slots):
                    break
                continue
            add_cost(cost, c)
            if self._reaper is not None:
                self._reaper.watch()  # Ray starts agents and workers lazily: keep the record current
            n_done += len(results)
            yield from results
        left = sum(len(b) for b in pending) + sum(len(b) for _, b in owner.values()) + lost
        more = not any(s.alive for s in slots) and next(it, None) is not None  # never sent (not counted)
        if left or more:
            raise WorkerLostError(
                f"Ray worker(s) died with {left}{'+' if more else ''} track(s) not embedded ({sum(s.alive for s in slots)} of "
                f"{len(slots)} still alive); the {n_done} finished track(s) are committed: rerun to "
                "compute only what is missing."
            )

    def _kill_actors(self) -> None:
        if not self.actors:
            return
        ray = _import_ray()
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self.actors = []
        self._plan_id = None

    def close(self) -> None:
        """Kill the actors, and shut Ray down when this object started it."""
        self._kill_actors()
        if self._started:
            ray = _import_ray()
            if ray.is_initialized():
                ray.shutdown()
            self._started = False
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
