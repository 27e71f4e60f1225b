"""Artist and track similarity from cached track vectors: profiles, calibration, top-k, metrics.

A calibrated score is in [0, 1] and means the same for every backend (CONTRACTS.md): for
mutual proximity its probability, for every other calibration the pair's percentile among
all pairs of the library. Raw cosine is always kept beside it (``raw_cosine``).

Calibrations (estimators in :mod:`soundalike.calibration`):

``none``          raw cosine (the seeds' method)
``center``        subtract the library mean of the L2-normalised track vectors (anisotropy)
``zscore``        standardise each feature (descriptors mix BPM, LUFS, ...)
``whiten``        z-score, then shrunk ZCA whitening
``mp-empirical``  mutual proximity (counted), on centred cosine
``mp-gaussian``   mutual proximity (Gaussian model), on centred cosine
``nicdm``         local scaling by the k-NN radii, on centred cosine
``csls``          cross-domain similarity local scaling, on centred cosine

Metrics (mAP, genre P@k, hubness, bootstrap) live in :mod:`soundalike.metrics`.

Profiles: ``centroid`` (mean of the artist's normalised track vectors) and ``set`` (the
artist as a set of tracks: symmetric soft-Chamfer, the mean best-match similarity in both
directions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_embeddings, check_option, check_positive_int
from .calibration import CSLS, Centerer, LocalScaling, MutualProximity, PercentileScaler, Whitener, ZScorer
from .errors import ParameterError

__all__ = [
    "CALIBRATIONS",
    "PROFILES",
    "VECTOR_CALIBRATIONS",
    "ArtistSimilarity",
    "TrackSimilarity",
    "Neighbour",
    "cosine_matrix",
    "l2_normalize",
    "artist_profiles",
    "set_similarity",
    "vector_calibrator",
    "calibrate_matrix",
    "percentile_scores",
    "artist_similarity",
    "track_similarity",
    "top_k",
    "pair_stats",
]

CALIBRATIONS = ("none", "center", "zscore", "whiten", "mp-empirical", "mp-gaussian", "nicdm", "csls")
VECTOR_CALIBRATIONS = ("none", "center", "zscore", "whiten")
PROFILES = ("centroid", "set")
#: neighbourhood size of nicdm / csls
LOCAL_K = 5


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
    raw_cosine : np.ndarray [shape=(n_artists, n_artists)]   cosine of the raw profiles
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


@dataclass
class TrackSimilarity:
    """Track × track scores: ``score`` calibrated in [0, 1], ``raw_cosine`` beside it."""

    score: np.ndarray
    raw_cosine: np.ndarray
    calibration: str


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
    check_option("profile", kind, ("centroid",))
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


def vector_calibrator(calibration: str):
    """The (unfitted) vector calibrator applied before cosine for `calibration`, or None.

    Neighbourhood calibrations (mp-*, nicdm, csls) work on centred cosine.
    """
    check_option("calibration", calibration, CALIBRATIONS)
    if calibration == "none":
        return None
    if calibration == "zscore":
        return ZScorer()
    if calibration == "whiten":
        return Whitener()
    return Centerer()


def _matrix_calibrator(calibration: str, k: int):
    return {
        "mp-empirical": lambda: MutualProximity(method="empirical"),
        "mp-gaussian": lambda: MutualProximity(method="gaussian"),
        "nicdm": lambda: LocalScaling(k=k),
        "csls": lambda: CSLS(k=k),
    }.get(calibration, lambda: None)()


def calibrate_matrix(S: np.ndarray, calibration: str, *, k: int = LOCAL_K) -> np.ndarray:
    """Map a library similarity matrix (after the vector step) to the [0, 1] score.

    Mutual proximity returns its probability; every other calibration the pair's percentile
    among all off-diagonal pairs. The diagonal is 1.

    Parameters
    ----------
    S : np.ndarray [shape=(n, n)]   symmetric similarities
    calibration : str   one of CALIBRATIONS
    """
    check_option("calibration", calibration, CALIBRATIONS)
    n = S.shape[0]
    if n < 2:
        return np.ones_like(S, dtype=np.float64)
    est = _matrix_calibrator(calibration, min(k, max(n - 2, 1)))
    if est is None or n < 3:
        C = S
    else:
        C = est.fit_transform(S)
        C = 0.5 * (C + C.T)  # exact symmetry (gaussian MP is symmetric only up to rounding)
        if calibration.startswith("mp-"):
            np.fill_diagonal(C, 1.0)
            return np.clip(C, 0.0, 1.0)
    return percentile_scores(C)


def percentile_scores(S: np.ndarray) -> np.ndarray:
    """Map a symmetric score matrix to each pair's percentile among all off-diagonal pairs.

    The diagonal is set to 1. Ties share their mid rank.
    """
    n = S.shape[0]
    out = np.ones_like(S, dtype=np.float64)
    if n < 2:
        return out
    scaler = PercentileScaler.from_matrix(S, max_quantiles=max(10001, n * (n - 1) // 2))
    iu = np.triu_indices(n, k=1)
    pct = scaler.transform(S[iu])
    out[iu] = pct
    out[(iu[1], iu[0])] = pct
    return out


def _check_xy(X: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    X = check_embeddings(X)
    if labels is not None and len(labels) != X.shape[0]:
        raise ParameterError(f"labels has {len(labels)} entries but X has {X.shape[0]} rows.")
    return X


def _vectors(X: np.ndarray, calibration: str, fit_on: np.ndarray | None = None) -> np.ndarray:
    est = vector_calibrator(calibration)
    if est is None:
        return np.asarray(X, dtype=np.float64)
    est.fit(X if fit_on is None else X[fit_on])
    return est.transform(X)


def artist_similarity(
    X: np.ndarray, labels: np.ndarray, *, calibration: str = "center", profile: str = "centroid",
    k: int = LOCAL_K,
) -> ArtistSimilarity:
    """Calibrated artist × artist similarity from track vectors.

    Parameters
    ----------
    X : np.ndarray [shape=(n_tracks, d)]
    labels : np.ndarray [shape=(n_tracks,)]   artist of each track
    calibration : str   one of CALIBRATIONS (module docstring)
    profile : {"centroid", "set"}
    k : int   neighbourhood size of nicdm / csls

    Returns
    -------
    ArtistSimilarity   ``score`` in [0, 1] (diagonal 1), ``raw_cosine`` of the raw profiles

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(12, 8)); labels = np.repeat([1, 2, 3, 4], 3)
    >>> sim = artist_similarity(X, labels, calibration="center")
    >>> sim.score.shape, float(sim.score.min()) >= 0.0
    ((4, 4), True)
    """
    X = _check_xy(X, labels)
    check_option("calibration", calibration, CALIBRATIONS)
    check_option("profile", profile, PROFILES)
    labels = np.asarray(labels)
    Z = _vectors(X, calibration)
    if profile == "centroid":
        uniq, P_raw = artist_profiles(X, labels)
        raw = cosine_matrix(P_raw)
        _, P = artist_profiles(Z, labels)
        S = cosine_matrix(P)
    else:
        uniq, raw = set_similarity(cosine_matrix(X), labels)
        _, S = set_similarity(cosine_matrix(Z), labels)
    return ArtistSimilarity(uniq, calibrate_matrix(S, calibration, k=k), raw, calibration, profile)


def track_similarity(X: np.ndarray, *, calibration: str = "center", k: int = LOCAL_K) -> TrackSimilarity:
    """Calibrated track × track similarity (the percentile is among all track pairs).

    Parameters
    ----------
    X : np.ndarray [shape=(n_tracks, d)]
    calibration : str   one of CALIBRATIONS
    """
    X = _check_xy(X, None)
    check_option("calibration", calibration, CALIBRATIONS)
    S = cosine_matrix(_vectors(X, calibration))
    return TrackSimilarity(calibrate_matrix(S, calibration, k=k), cosine_matrix(X), calibration)


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
