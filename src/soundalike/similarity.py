"""Artist and track similarity from cached track vectors: profiles, calibration, top-k.

A calibrated score is in [0, 1] and means the same for every backend (CONTRACTS.md): for
mutual proximity its probability, for every other calibration the pair's percentile among
all pairs of the library. Raw cosine is always kept beside it (``raw_cosine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_embeddings, check_option, check_positive_int
from .errors import ParameterError

__all__ = [
    "CALIBRATIONS",
    "PROFILES",
    "ArtistSimilarity",
    "Neighbour",
    "cosine_matrix",
    "l2_normalize",
    "artist_profiles",
    "percentile_scores",
    "artist_similarity",
    "top_k",
    "pair_stats",
]

CALIBRATIONS = ("none", "center")
PROFILES = ("centroid",)


@dataclass(frozen=True)
class Neighbour:
    index: int
    score: float
    raw_cosine: float
    contributions: dict[str, float] = field(default_factory=dict)


@dataclass
class ArtistSimilarity:
    """Artist × artist scores of one representation.

    Attributes
    ----------
    labels : np.ndarray [shape=(n_artists,)]     artist ids, in matrix order
    score : np.ndarray [shape=(n_artists, n_artists)]   calibrated, in [0, 1]
    raw_cosine : np.ndarray [shape=(n_artists, n_artists)]
    calibration, profile : str
    """

    labels: np.ndarray
    score: np.ndarray
    raw_cosine: np.ndarray
    calibration: str
    profile: str

    def index_of(self, label) -> int:
        hits = np.flatnonzero(self.labels == label)
        if hits.size == 0:
            raise ParameterError(f"{label!r} has no embeddings in this similarity matrix; embed its tracks first.")
        return int(hits[0])


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
    """One vector per artist from its track vectors.

    Parameters
    ----------
    X : np.ndarray [shape=(n_tracks, d)]
    labels : np.ndarray [shape=(n_tracks,)]   artist of each track
    kind : {"centroid"}   mean of the artist's L2-normalised track vectors

    Returns
    -------
    uniq : np.ndarray [shape=(n_artists,)]
    P : np.ndarray [shape=(n_artists, d)]
    """
    check_option("profile", kind, PROFILES)
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    Xn = l2_normalize(np.asarray(X, dtype=np.float64))
    P = np.zeros((len(uniq), Xn.shape[1]))
    np.add.at(P, inv, Xn)
    P /= np.bincount(inv)[:, None]
    return uniq, P


def percentile_scores(S: np.ndarray) -> np.ndarray:
    """Map a symmetric score matrix to each pair's percentile among all off-diagonal pairs.

    The diagonal is set to 1. Ties share their mean rank.
    """
    n = S.shape[0]
    iu = np.triu_indices(n, k=1)
    vals = S[iu]
    out = np.ones_like(S, dtype=np.float64)
    if vals.size == 0:
        return out
    from scipy.stats import rankdata

    pct = (rankdata(vals) - 0.5) / vals.size if vals.size > 1 else np.array([0.5])
    out[iu] = pct
    out[(iu[1], iu[0])] = pct
    return out


def artist_similarity(
    X: np.ndarray, labels: np.ndarray, *, calibration: str = "center", profile: str = "centroid"
) -> ArtistSimilarity:
    """Calibrated artist × artist similarity from track vectors.

    Parameters
    ----------
    X : np.ndarray [shape=(n_tracks, d)]
    labels : np.ndarray [shape=(n_tracks,)]
    calibration : {"none", "center"}
        ``none`` is raw cosine (the seeds' method); ``center`` subtracts the library mean of
        the track vectors before cosine, which removes the common direction (anisotropy).
    profile : {"centroid"}
    """
    X = check_embeddings(X)
    check_option("calibration", calibration, CALIBRATIONS)
    if len(labels) != X.shape[0]:
        raise ParameterError(f"labels has {len(labels)} entries but X has {X.shape[0]} rows.")
    uniq, P_raw = artist_profiles(X, labels, kind=profile)
    raw = cosine_matrix(P_raw)
    if calibration == "none":
        S = raw
    else:
        Xc = l2_normalize(np.asarray(X, np.float64))
        Xc = Xc - Xc.mean(axis=0, keepdims=True)
        _, P = artist_profiles(Xc, labels, kind=profile)
        S = cosine_matrix(P)
    return ArtistSimilarity(uniq, percentile_scores(S), raw, calibration, profile)


def top_k(sim: ArtistSimilarity, label, *, k: int = 10) -> list[Neighbour]:
    """The `k` artists most similar to `label`, best first, the query itself excluded."""
    k = check_positive_int("k", k)
    i = sim.index_of(label)
    order = [j for j in np.argsort(-sim.score[i], kind="stable") if j != i][:k]
    return [Neighbour(int(j), float(sim.score[i, j]), float(sim.raw_cosine[i, j])) for j in order]


def pair_stats(S: np.ndarray) -> dict[str, float]:
    """min / max / mean / std / range over the off-diagonal pairs of a symmetric matrix."""
    iu = np.triu_indices(S.shape[0], k=1)
    v = S[iu]
    if v.size == 0:
        return {"min": float("nan"), "max": float("nan"), "mean": float("nan"), "std": float("nan"), "range": float("nan")}
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "std": float(v.std()),
            "range": float(v.max() - v.min())}
