"""The one 2-D layout of artists (the CLI ``map`` and ``/api/map`` both draw it).

PCA of the calibrated artist profiles (the first two principal axes), scaled to [0, 1]. Linear in
the number of artists and deterministic (axis signs fixed), so a 10,000-artist map costs well under
a second; classical MDS needs the n x n matrix and an eigendecomposition (cubic), and t-SNE costs
seconds of CPU even at 100 artists and depends on its random state and library version.
"""

from __future__ import annotations

import numpy as np

__all__ = ["layout_2d", "layout_method", "LAYOUT_METHOD"]

LAYOUT_METHOD = "PCA of calibrated artist profiles"


def layout_method(n: int) -> str:
    """How the map of `n` artists is drawn (one method at every size)."""
    return LAYOUT_METHOD


def layout_2d(P: np.ndarray) -> np.ndarray:
    """2-D coordinates ``(n, 2)`` in [0, 1] for profile vectors ``(n, d)``."""
    n = P.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    if n <= 2:
        Y = np.array([[0.0, 0.0], [1.0, 1.0]])[:n]
    else:
        Pc = np.asarray(P, np.float64) - np.asarray(P, np.float64).mean(axis=0)
        U, S, _ = np.linalg.svd(Pc, full_matrices=False)
        Y = U[:, :2] * S[:2] if U.shape[1] >= 2 else np.c_[U[:, 0] * S[0], np.zeros(n)]
        Y = Y * np.where(Y[np.abs(Y).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)  # reproducible signs
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return (Y - lo) / span
