"""The one 2-D layout of artists (the CLI ``map`` and ``/api/map`` both draw it).

t-SNE (cosine metric) for 50..1,000 points; PCA below (t-SNE says little about a handful of
points) and above (its cost grows with n; PCA is linear in n). Classical MDS is not used: it
needs the n x n matrix and an eigendecomposition, cubic in n.
"""

from __future__ import annotations

import numpy as np

__all__ = ["layout_2d", "layout_method", "TSNE_RANGE"]

TSNE_RANGE = (50, 1000)


def layout_method(n: int) -> str:
    lo, hi = TSNE_RANGE
    return "t-SNE of calibrated artist profiles" if lo <= n <= hi else "PCA of calibrated artist profiles"


def layout_2d(P: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D coordinates ``(n, 2)`` in [0, 1] for profile vectors ``(n, d)``."""
    n = P.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    if n <= 2:
        Y = np.array([[0.0, 0.0], [1.0, 1.0]])[:n]
    else:
        Pc = np.asarray(P, np.float64) - np.asarray(P, np.float64).mean(axis=0)
        lo, hi = TSNE_RANGE
        if lo <= n <= hi:
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
            Y = TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine",
                     random_state=seed).fit_transform(Pc)
        else:
            U, S, _ = np.linalg.svd(Pc, full_matrices=False)
            Y = U[:, :2] * S[:2] if U.shape[1] >= 2 else np.c_[U[:, 0] * S[0], np.zeros(n)]
            Y = Y * np.where(Y[np.abs(Y).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)  # reproducible signs
    lo_, hi_ = Y.min(axis=0), Y.max(axis=0)
    span = np.where(hi_ - lo_ > 0, hi_ - lo_, 1.0)
    return (Y - lo_) / span
