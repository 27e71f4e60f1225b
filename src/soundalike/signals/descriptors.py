"""The ``descriptors`` signal: DSP descriptors (tempo, loudness, spectral shape...), standardised.

Descriptor features live on different scales (BPM, LUFS, Hz), so raw cosine would be dominated
by the largest; the signal z-scores every feature over the library (``zscore`` calibration)
unless the config names another calibration.
"""

from __future__ import annotations

from ._base import SignalContext, SignalScores
from .audio import backend_scores

__all__ = ["compute"]


def compute(ctx: SignalContext) -> SignalScores:
    return backend_scores(ctx, "descriptors", "descriptors", ctx.options.get("calibration", "zscore"))
