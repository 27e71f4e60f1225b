"""Ray scale-out (the ``[distributed]`` extra): the Ray executor of :mod:`soundalike.analysis`.

:class:`RayEmbedder` and :func:`embed_ray` keep the interface of earlier releases (one backend
by name) over :func:`soundalike.analysis.analyse` with a
:class:`~soundalike.analysis.ray.RayCluster`: same model keys, same stored vectors as a local
run (within ``rtol=1e-5, atol=1e-6``), one writer, per-batch commits, lost workers' batches
handed to the survivors.

Example
-------
>>> from soundalike.distributed import embed_ray                           # doctest: +SKIP
>>> with Store("lib.db") as store:                                         # doctest: +SKIP
...     summary = embed_ray(store, "musicnn-msd", workers=2)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .analysis.kernel import Progress, RunSummary
from .analysis.ray import RAY_BATCH_SIZE, RayCluster, WorkerLostError, ray_available
from .audio import WindowPolicy
from .store import Store

__all__ = ["RayCluster", "RayEmbedder", "WorkerLostError", "embed_ray", "ray_available"]


class RayEmbedder:
    """A pool of Ray actors, each holding the model of `backend` (see :class:`RayCluster`).

    Parameters
    ----------
    backend : str
        Backend name (as for ``load_backend``); built once in each worker and here (to register
        its model key).
    backend_options : mapping, optional
        Keyword arguments of ``load_backend`` (``weights``, ``device``, ``tiny``, ...).
    workers, address, batch_size, cpus_per_worker, max_in_flight
        As for :class:`RayCluster`.
    """

    def __init__(self, backend: str, *, workers: int = 1, address: str | None = None,
                 backend_options: Mapping[str, Any] | None = None, policy: WindowPolicy | None = None,
                 batch_size: int = RAY_BATCH_SIZE, cpus_per_worker: float = 1.0, max_in_flight: int = 2) -> None:
        from .analysis.kernel import EmbedPlan
        from .backends.registry import load_backend

        self.cluster = RayCluster(workers=workers, address=address, batch_size=batch_size,
                                  cpus_per_worker=cpus_per_worker, max_in_flight=max_in_flight)
        self.backend = load_backend(backend, **dict(backend_options or {}))
        self.policy = policy or WindowPolicy()
        self.plan = EmbedPlan([self.backend], self.policy)
        self.model_key = self.plan.keys[0][0]
        self.batch_size = batch_size
        self.cluster.start(self.plan)

    @property
    def actors(self) -> list[Any]:
        return self.cluster.actors

    def close(self) -> None:
        self.cluster.close()

    def __enter__(self) -> "RayEmbedder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, store: Store, *, run_id: int | None = None, track_ids: Iterable[str] | None = None,
            retry_lost: bool = True, progress: Progress | None = None) -> RunSummary:
        """Embed every stored track lacking vectors for this model; commit each batch as it arrives.

        Raises
        ------
        WorkerLostError
            When every worker died with batches left (finished batches stay committed).
        """
        from .analysis import embed

        self.cluster.retry_lost = retry_lost
        return embed(store, [self.backend], policy=self.policy, run_id=run_id, batch_size=self.batch_size,
                     track_ids=None if track_ids is None else list(track_ids), progress=progress,
                     executor=self.cluster)


def embed_ray(store: Store, backend: str, *, workers: int = 1, address: str | None = None,
              backend_options: Mapping[str, Any] | None = None, policy: WindowPolicy | None = None,
              batch_size: int = RAY_BATCH_SIZE, run_id: int | None = None, track_ids: Iterable[str] | None = None,
              progress: Progress | None = None) -> RunSummary:
    """Embed the store's tracks lacking vectors of `backend` with `workers` Ray actors."""
    with RayEmbedder(backend, workers=workers, address=address, backend_options=backend_options, policy=policy,
                     batch_size=batch_size) as pool:
        return pool.run(store, run_id=run_id, track_ids=track_ids, progress=progress)
