"""Pairwise maths of vectors and artist profiles: normalisation, cosine, centroids, track sets.

Calibration, percentiles and neighbours live in the query engine (:mod:`soundalike.query`),
which builds on these. Profiles: ``centroid`` (mean of the artist's normalised track vectors)
and ``set`` (the artist as a set of tracks: symmetric soft-Chamfer, the mean best-match
similarity in both directions).
"""

from __future__ import annotations

import numpy as np

__all__ = ["l2_normalize", "cosine_matrix", "artist_profiles", "set_similarity", "pair_stats"]


def l2_normalize(X: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    n = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


def cosine_matrix(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every row of `A` with every row of `B` (default `A`).

    Returns
    -------
    np.ndarray [shape=(len(A), len(B))]
    """
    A = l2_normalize(np.asarray(A, dtype=np.float64))
    B = A if B is None else l2_normalize(np.asarray(B, dtype=np.float64))
    return np.clip(A @ B.T, -1.0, 1.0)


def artist_profiles(X: np.ndarray, labels: np.ndarray, *, kind: str = "centroid") -> tuple[np.ndarray, np.ndarray]:
    """One vector per artist: the mean of its L2-normalised track vectors.

    Parameters
    ----------
    X : np.ndarray [shape=(n_tracks, d)]
    labels : np.ndarray [shape=(n_tracks,)]   artist of each track
    kind : {"centroid"}   (the ``set`` profile has no single vector; see :func:`set_similarity`)

    Returns
    -------
    uniq : np.ndarray [shape=(n_artists,)]
    P : np.ndarray [shape=(n_artists, d)]
    """
    if kind != "centroid":
        raise ValueError(f"profile kind {kind!r}: only 'centroid' has one vector per artist")
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    Xn = l2_normalize(np.asarray(X, dtype=np.float64))
    P = np.zeros((len(uniq), Xn.shape[1]))
    np.add.at(P, inv, Xn)
    P /= np.bincount(inv)[:, None]
    return uniq, P


def set_similarity(T: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Artist × artist similarity of track *sets* from a track × track similarity matrix.

    ``s(A, B) = (mean_a max_b T[a, b] + mean_b max_a T[a, b]) / 2`` (symmetric soft Chamfer):
    every track of one artist looks for its best match among the other artist's tracks, so an
    artist with two styles is close to both.

    Parameters
    ----------
    T : np.ndarray [shape=(n_tracks, n_tracks)]
    labels : np.ndarray [shape=(n_tracks,)]

    Returns
    -------
    uniq : np.ndarray [shape=(n_artists,)]
    S : np.ndarray [shape=(n_artists, n_artists)]   diagonal 1
    """
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    n = len(uniq)
    # best match of every track within each artist: (n_tracks, n_artists)
    best = np.full((T.shape[0], n), -np.inf)
    for a in range(n):
        best[:, a] = T[:, inv == a].max(axis=1)
    # mean over the tracks of the row artist: M[A, B] = mean_{a in A} max_{b in B} T[a, b]
    M = np.zeros((n, n))
    np.add.at(M, inv, best)
    M /= np.bincount(inv)[:, None]
    S = 0.5 * (M + M.T)
    np.fill_diagonal(S, 1.0)
    return uniq, S


def pair_stats(S: np.ndarray) -> dict[str, float]:
    """min / max / mean / std / range over the off-diagonal pairs of a symmetric matrix."""
    iu = np.triu_indices(S.shape[0], k=1)
    v = S[iu]
    if v.size == 0:
        return {"min": float("nan"), "max": float("nan"), "mean": float("nan"), "std": float("nan"), "range": float("nan")}
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "std": float(v.std()),
            "range": float(v.max() - v.min())}
