"""The ``audio`` signal: calibrated artist similarity of one stored embedding backend."""

from __future__ import annotations

import numpy as np

from ._base import SignalContext, SignalScores, aligned_matrix, empty_scores

__all__ = ["compute", "backend_scores"]


def backend_scores(ctx: SignalContext, name: str, backend: str | None, calibration: str) -> SignalScores:
    """Artist scores of one backend over ``ctx.artist_ids`` (NaN for artists without vectors).

    Read from the query engine's calibrated artist space, so a blend's audio part equals the
    audio-only answer.
    """
    from ..errors import ParameterError
    from ..query import Engine

    if ctx.store is None:
        return empty_scores(name, ctx.artist_ids, "no library")
    engine = ctx.engine if ctx.engine is not None else Engine(ctx.store)
    try:
        vec = engine.vectors(backend, ctx.layer if name == "audio" else None)
        ids, score, raw, cal = engine.artist_scores(backend=vec.model.backend, layer=vec.layer,
                                                    calibration=calibration, profile=ctx.profile)
    except ParameterError as exc:
        return empty_scores(name, ctx.artist_ids, str(exc))
    S = aligned_matrix(ctx.artist_ids, ids, score)
    has = np.isin(ctx.artist_ids, ids)
    note = f"{vec.model.backend} ({vec.model.weights_kind} weights), calibration {cal}, profile {ctx.profile}"
    return SignalScores(name, np.asarray(ctx.artist_ids), S, float(has.mean()) if has.size else 0.0, note,
                        details={"backend": vec.model.backend, "weights_kind": vec.model.weights_kind,
                                 "layer": vec.layer, "raw_cosine": aligned_matrix(ctx.artist_ids, ids, raw)})


def compute(ctx: SignalContext) -> SignalScores:
    """Scores of ``ctx.backend`` (default: the best stored learned backend, else descriptors)."""
    backend = ctx.options.get("backend", ctx.backend)
    if backend is None and ctx.store is not None:
        rank = {"real": 0, "random": 1}
        learned = sorted((m for m in ctx.store.models() if m.backend != "descriptors"),
                         key=lambda m: (rank.get(m.weights_kind, 2), m.backend))
        backend = learned[0].backend if learned else None
    return backend_scores(ctx, "audio", backend, ctx.options.get("calibration", ctx.calibration))
