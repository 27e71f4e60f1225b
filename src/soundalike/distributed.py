"""Ray scale-out of decoding and embedding (the ``[distributed]`` extra).

Every Ray worker is an actor holding ONE model (built by ``load_backend(name)`` inside the
actor); it decodes, resamples and embeds whole batches of tracks and sends the vectors back.
The driver is the store's only writer: each finished batch is committed in one transaction
(vectors and failures together, through :meth:`Store.put_embeddings` under the same model key as
the local :func:`soundalike.pipeline.embed`). A worker that dies mid-run therefore loses only its
batches in flight: they are handed to the surviving workers (``retry_lost=True``), and when no
worker is left the run stops with :class:`WorkerLostError`, everything finished already being
committed, so a rerun computes only what is missing.

Paths are read by the workers: on a multi-machine cluster the library must be mounted at the same
path on every node, and every node needs the same soundalike install and weights (the driver
checks that each worker's model key equals its own).

Example
-------
>>> from soundalike.distributed import embed_ray                           # doctest: +SKIP
>>> with Store("lib.db") as store:                                         # doctest: +SKIP
...     summary = embed_ray(store, "musicnn-msd", workers=2)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._lifecycle import DescendantReaper
from .audio import WindowPolicy
from .errors import BackendUnavailable, ParameterError, SoundalikeError
from .pipeline import EmbedPlan, Progress, RunSummary, TrackResult, commit, decode_track, embed_decoded
from .store import Store

__all__ = ["RayEmbedder", "WorkerLostError", "embed_ray", "ray_available"]

log = logging.getLogger(__name__)


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
    """Body of the Ray actor: one backend; runs the pipeline's own decode and embed steps."""

    def __init__(self, backend: str, options: dict, policy: WindowPolicy, max_batch: int) -> None:
        from .backends.registry import load_backend

        self.plan = EmbedPlan([load_backend(backend, **options)], policy)
        self.max_batch = max_batch

    def model_keys(self) -> list[str]:
        return self.plan.all_keys

    def embed(self, items: list[tuple[str, str, list[str]]]) -> list[TrackResult]:
        """Decode and embed ``[(track_id, path, missing model keys), ...]`` with the pipeline's steps."""
        decoded = [(tid, path, decode_track(path, self.plan.policy, self.plan.rates)) for tid, path, _ in items]
        missing = {tid: set(keys) for tid, _, keys in items}
        return embed_decoded(self.plan, decoded, lambda tid, key: key in missing[tid], max_windows=self.max_batch)


@dataclass
class _Slot:
    handle: Any
    alive: bool = True
    in_flight: set = field(default_factory=set)


class RayEmbedder:
    """A pool of Ray actors, each holding one model of `backend`.

    Parameters
    ----------
    backend : str
        Backend name (as for ``load_backend``); built once in each worker.
    workers : int > 0
        Number of actors.
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); default: start a local
        cluster with ``workers * cpus_per_worker`` CPUs (shut down again by :meth:`close`).
    backend_options : mapping, optional
        Keyword arguments of ``load_backend`` (``weights``, ``device``, ``tiny``, ...).
    policy : WindowPolicy
        Which windows are analysed (part of the model key).
    batch_size : int > 0
        Tracks per task, and per committed transaction.
    cpus_per_worker : float > 0
        Ray CPUs reserved by each actor.
    max_in_flight : int > 0
        Batches queued per actor (2 keeps a worker busy while the driver writes).

    Attributes
    ----------
    actors : list
        The Ray actor handles (e.g. for ``ray.kill`` in a fault test).
    """

    def __init__(self, backend: str, *, workers: int = 1, address: str | None = None,
                 backend_options: Mapping[str, Any] | None = None, policy: WindowPolicy | None = None,
                 batch_size: int = 8, cpus_per_worker: float = 1.0, max_in_flight: int = 2) -> None:
        for name, value in (("workers", workers), ("batch_size", batch_size), ("max_in_flight", max_in_flight)):
            if not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
        if not cpus_per_worker > 0:
            raise ParameterError(f"cpus_per_worker must be > 0, got {cpus_per_worker!r}.")
        from .backends.registry import load_backend

        ray = _import_ray()
        self.backend_name = backend
        self.options = dict(backend_options or {})
        self.policy = policy or WindowPolicy()
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        # The driver builds the model too: it registers the model key exactly as the local pipeline does.
        self.backend = load_backend(backend, **self.options)
        self.plan = EmbedPlan([self.backend], self.policy)
        self.model_key = self.plan.keys[0][0]
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, int(np.ceil(workers * cpus_per_worker))), include_dashboard=False,
                         log_to_driver=False)
            self._started = True
        self._reaper = DescendantReaper() if self._started else None  # a killed driver leaves no Ray process
        actor_cls = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(_EmbedWorker)
        self.actors = [actor_cls.remote(backend, self.options, self.policy, batch_size) for _ in range(workers)]
        keys = ray.get([a.model_keys.remote() for a in self.actors])
        if self._reaper is not None:
            self._reaper.watch()
        if any(k != self.plan.all_keys for k in keys):
            raise ParameterError(
                f"Ray workers built {backend!r} with model key(s) {sorted({x for k in keys for x in k})}, but the "
                f"driver has {self.plan.all_keys}; install the same soundalike version and weights on every node."
            )

    def close(self) -> None:
        """Kill the actors, and shut Ray down when this object started it."""
        ray = _import_ray()
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # already dead
                pass
        self.actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()
        if getattr(self, "_reaper", None) is not None:
            self._reaper.close()
            self._reaper = None

    def __enter__(self) -> "RayEmbedder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, store: Store, *, run_id: int | None = None, track_ids: Iterable[str] | None = None,
            retry_lost: bool = True, progress: Progress | None = None) -> RunSummary:
        """Embed every stored track lacking vectors for this model; commit each batch as it arrives.

        Parameters
        ----------
        store : Store
            Written by this process only (the single writer).
        track_ids : iterable of str, optional
            Restrict to these tracks.
        retry_lost : bool
            Hand the batches of a dead worker to the surviving ones.
        progress : callable ``(stage, done, total)``, optional
            Called after each committed batch.

        Returns
        -------
        RunSummary
            ``done`` tracks that got vectors, ``cached`` tracks that had them.

        Raises
        ------
        WorkerLostError
            When every worker died with batches left (finished batches stay committed).
        """
        ray = _import_ray()
        from ray.exceptions import RayActorError

        summary = RunSummary("embed")
        self.plan.register(store)
        tracks = store.tracks()
        if track_ids is not None:
            wanted = set(track_ids)
            tracks = [t for t in tracks if t.track_id in wanted]
        have = [store.embedded_track_ids(k) for k in self.plan.all_keys]
        need = [(t.track_id, t.path, [k for k, h in zip(self.plan.all_keys, have) if t.track_id not in h])
                for t in tracks if any(t.track_id not in h for h in have)]
        summary.cached = len(tracks) - len(need)
        pending = deque(need[s:s + self.batch_size] for s in range(0, len(need), self.batch_size))
        slots = [_Slot(a) for a in self.actors]
        owner: dict[Any, tuple[_Slot, list]] = {}
        n_done = lost = 0
        if progress:
            progress("embed", 0, len(need))
        while pending or owner:
            for slot in slots:  # keep every live worker fed
                while slot.alive and pending and len(slot.in_flight) < self.max_in_flight:
                    batch = pending.popleft()
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
                results = ray.get(ref)
            except RayActorError:
                slot.alive = False
                log.warning("a Ray worker died; %d track(s) of its batch are %s", len(batch),
                            "handed to another worker" if retry_lost else "left for a rerun")
                if retry_lost:
                    pending.appendleft(batch)
                else:
                    lost += len(batch)
                continue
            commit(store, results, summary, run_id=run_id)
            n_done += len(batch)
            if getattr(self, "_reaper", None) is not None:
                self._reaper.watch()  # Ray starts agents and workers lazily: keep the record current
            if progress:
                progress("embed", n_done, len(need))
            if not any(s.alive for s in slots) and (pending or owner):
                break
        left = sum(len(b) for b in pending) + sum(len(b) for _, b in owner.values()) + lost
        if left:
            raise WorkerLostError(
                f"Ray worker(s) died with {left} track(s) not embedded ({sum(s.alive for s in slots)} of "
                f"{len(slots)} still alive); the {summary.done} finished track(s) are committed: rerun to "
                "compute only what is missing."
            )
        return summary


def embed_ray(store: Store, backend: str, *, workers: int = 1, address: str | None = None,
              backend_options: Mapping[str, Any] | None = None, policy: WindowPolicy | None = None,
              batch_size: int = 8, run_id: int | None = None, track_ids: Iterable[str] | None = None,
              progress: Progress | None = None) -> RunSummary:
    """Embed the store's tracks lacking vectors of `backend` with `workers` Ray actors.

    The Ray counterpart of :func:`soundalike.pipeline.embed` for one backend: same model key,
    same stored vectors (within ``rtol=1e-5, atol=1e-6``), one writer, per-batch commits.
    See :class:`RayEmbedder` for the parameters.
    """
    with RayEmbedder(backend, workers=workers, address=address, backend_options=backend_options, policy=policy,
                     batch_size=batch_size) as pool:
        return pool.run(store, run_id=run_id, track_ids=track_ids, progress=progress)
