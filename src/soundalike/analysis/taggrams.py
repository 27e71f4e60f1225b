"""Taggram back-fill: musicnn's MSD taggram for stored tracks that lack it (an older store).

The taggram (50 tag probabilities) is a companion output of ``musicnn-msd``: a run with that
backend stores it from the same forward pass. Tracks analysed before it existed get it here,
through :func:`~soundalike.analysis.analyse` like every other analysis; the query layer only
reads it (:mod:`soundalike.query.traits`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..audio import WindowPolicy
from ..store import ModelInfo, Store
from .executors import Executor
from .kernel import Progress, RunSummary

__all__ = ["TAGGRAM_BACKEND", "fill_taggrams", "most_tracks", "taggram_model"]

TAGGRAM_BACKEND = "musicnn-msd"


def _tag_names() -> tuple[str, ...]:
    from ..backends.musicnn import MSD_TAGS  # imports NumPy only; torch is imported when a model is built

    return MSD_TAGS


def most_tracks(store: Store, models: Sequence[ModelInfo]) -> ModelInfo | None:
    """The model of `models` with vectors for the most tracks (ties: the larger key), or None."""
    if not models:
        return None
    counts = dict(store.execute("SELECT model_key, COUNT(DISTINCT track_id) FROM embeddings GROUP BY model_key").fetchall())
    return max(models, key=lambda m: (counts.get(m.model_key, 0), m.model_key))


def taggram_model(store: Store) -> ModelInfo | None:
    """The stored musicnn MSD taggram model with the most tracks, or None."""
    models = [m for m in store.models() if m.backend == TAGGRAM_BACKEND and isinstance(m.config, dict)
              and m.config.get("output") == "taggram" and m.dim == len(_tag_names())]
    return most_tracks(store, models)


def fill_taggrams(store: Store, *, policy: WindowPolicy | None = None, jobs: int = 1, device: str = "cpu",
                  progress: Progress | None = None, executor: Executor | None = None,
                  run_id: int | None = None) -> RunSummary | None:
    """Compute musicnn's MSD taggram for the stored tracks that lack it.

    Parameters
    ----------
    policy : WindowPolicy, optional
        Which windows are analysed. Default: the windows of the stored ``musicnn-msd`` vectors,
        else of the model with the most vectors, else ``middle`` — so the tags describe the
        same audio as the embeddings.
    jobs, device, executor, run_id, progress
        As for :func:`~soundalike.analysis.analyse`.

    Needs the musicnn weights (``pip install --no-deps musicnn==0.1.0``); tracks that already
    have a taggram are skipped.

    Returns
    -------
    RunSummary or None
        The embed summary, or None when every track already has a taggram.
    """
    from ..backends import load_backend
    from .run import embed

    tm = taggram_model(store)
    if tm is not None and len(store.embedded_track_ids(tm.model_key)) >= store.counts()["tracks"]:
        return None
    if policy is None:
        policy = WindowPolicy()
        for m in store.models_for_backend(TAGGRAM_BACKEND) or [most_tracks(store, store.models())]:
            if m is not None and isinstance(m.config, dict) and m.config.get("window"):
                policy = WindowPolicy.parse(str(m.config["window"]))
                break
    model = load_backend(TAGGRAM_BACKEND, output="taggram", device=device)
    return embed(store, [model], policy=policy, jobs=jobs, progress=progress, executor=executor, run_id=run_id)
