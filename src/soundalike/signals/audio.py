"""The ``audio`` signal: calibrated artist similarity of one stored embedding backend."""

from __future__ import annotations

import numpy as np

from ._base import SignalContext, SignalScores, aligned_matrix, empty_scores

__all__ = ["compute", "backend_scores"]


def backend_scores(ctx: SignalContext, name: str, backend: str | None, calibration: str) -> SignalScores:
    """Artist scores of one backend over ``ctx.artist_ids`` (NaN for artists without vectors)."""
    from ..compare import load_view
    from ..errors import ParameterError

    if ctx.store is None:
        return empty_scores(name, ctx.artist_ids, "no library")
    try:
        view = load_view(ctx.store, backend=backend, layer=ctx.layer if name == "audio" else None)
    except ParameterError as exc:
        return empty_scores(name, ctx.artist_ids, str(exc))
    sim = view.artist_similarity(calibration=calibration, profile=ctx.profile)
    S = aligned_matrix(ctx.artist_ids, sim.labels, sim.score)
    has = np.isin(ctx.artist_ids, sim.labels)
    note = f"{view.model.backend} ({view.model.weights_kind} weights), calibration {calibration}, profile {ctx.profile}"
    return SignalScores(name, np.asarray(ctx.artist_ids), S, float(has.mean()) if has.size else 0.0, note,
                        details={"backend": view.model.backend, "weights_kind": view.model.weights_kind,
                                 "layer": view.layer, "raw_cosine": aligned_matrix(ctx.artist_ids, sim.labels, sim.raw_cosine)})


def compute(ctx: SignalContext) -> SignalScores:
    """Scores of ``ctx.backend`` (default: the best stored learned backend, else descriptors)."""
    backend = ctx.options.get("backend", ctx.backend)
    if backend is None and ctx.store is not None:
        rank = {"real": 0, "random": 1}
        learned = sorted((m for m in ctx.store.models() if m.backend != "descriptors"),
                         key=lambda m: (rank.get(m.weights_kind, 2), m.backend))
        backend = learned[0].backend if learned else None
    return backend_scores(ctx, "audio", backend, ctx.options.get("calibration", ctx.calibration))
