"""Hybrid signals: one module per signal, each giving an artist × artist score and its coverage.

Every signal returns a :class:`SignalScores` over the same artist ids: scores in [0, 1], NaN
where the pair lacks the signal (an artist with no tags, no reference list, no embeddings), and
``coverage`` = the share of artists that have it. :mod:`soundalike.hybrid` blends them with
weights renormalised over the signals present for each pair.

=============  ================================================================================
``audio``      calibrated similarity of one embedding backend (:mod:`.audio`)
``descriptors`` the DSP descriptor backend, standardised per feature (:mod:`.descriptors`)
``tags``       TF-IDF cosine of artist tags (file tags, CSV, enrichment) (:mod:`.tags`)
``refs``       direct reference-list scores, CSV ``artist,similar_artist,rank_or_score`` (:mod:`.refs`)
``graph``      personalised PageRank over refs ∪ collaborations (:mod:`.graph`)
=============  ================================================================================
"""

from __future__ import annotations

from ._base import SIGNALS, SignalContext, SignalScores, aligned_matrix, empty_scores

__all__ = ["SIGNALS", "SignalContext", "SignalScores", "aligned_matrix", "empty_scores", "compute_signal"]


def compute_signal(name: str, ctx: SignalContext) -> SignalScores:
    """Compute one signal by name (``audio``, ``descriptors``, ``tags``, ``refs``, ``graph``)."""
    from .._validation import check_option

    check_option("signal", name, SIGNALS)
    mod = __import__(f"{__name__}.{name}", fromlist=["compute"])
    return mod.compute(ctx)
