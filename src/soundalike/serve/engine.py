"""The service's in-memory models: artist scorers, a track index, sonic paths, the map layout.

What is cached here are *models* (calibrated profile vectors, score matrices, quantile tables),
built once per (backend, calibration) — never responses. Every query recomputes its answer
from them, which keeps a similar-artist query at one row lookup or one mat-vec.

Scores follow CONTRACTS.md: a calibrated score is the pair's percentile among all artist
(or track) pairs of the library, in [0, 1]; ``raw_cosine`` is kept beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..neighbours import FAISS_MIN_ITEMS, NeighbourIndex, faiss_available
from ..similarity import artist_profiles, artist_similarity, l2_normalize

log = logging.getLogger(__name__)

__all__ = [
    "FULL_MATRIX_MAX_ARTISTS",
    "ArtistScorer",
    "TrackIndex",
    "build_artist_scorer",
    "layout_2d",
    "percentile_from_table",
]

#: Up to this many artists the scorer holds the exact artist × artist matrix computed by
#: ``similarity.artist_similarity`` (every calibration it knows). Above it, the full matrix
#: costs minutes and gigabytes (10,000 artists: ~2 min, 6 GB), so rows are computed on demand
#: from calibrated profile vectors, k-NN radii and a quantile table (none, center, nicdm, csls).
FULL_MATRIX_MAX_ARTISTS = 2000
#: Pair cosines sampled for the quantile table of a large library (percentile error ~1e-3).
QUANTILE_SAMPLE_PAIRS = 2_000_000
#: Track libraries up to this size use every track pair for the percentile table.
EXACT_TRACK_PAIRS_MAX = 2000
ON_DEMAND_CALIBRATIONS = ("none", "center", "nicdm", "csls")
#: Neighbourhood size of nicdm / csls (``similarity.LOCAL_K``).
LOCAL_K = 5


def percentile_from_table(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile of each value among the sorted pair scores in `table` (ties: mean rank).

    Matches ``similarity.percentile_scores``: ``(rank - 0.5) / n`` with average ranks, which
    for a value found in the table equals ``(lo + hi) / (2 n)``.
    """
    n = table.size
    if n == 0:
        return np.full(np.shape(values), 0.5, dtype=np.float32)
    values = np.asarray(values, dtype=table.dtype)  # else numpy converts the whole table per call
    lo = np.searchsorted(table, values, side="left")
    hi = np.searchsorted(table, values, side="right")
    return np.clip((lo + hi) / (2.0 * n), 0.0, 1.0).astype(np.float32)


def _pair_table(V: np.ndarray, *, max_pairs: int, seed: int = 0, radius: np.ndarray | None = None,
                calibration: str = "center") -> np.ndarray:
    """Sorted (calibrated) cosines of all row pairs of unit-norm `V`, or of a seeded sample."""
    n = V.shape[0]
    total = n * (n - 1) // 2
    if total == 0:
        return np.zeros(0, np.float32)
    if total <= max_pairs:
        S = np.clip(V @ V.T, -1.0, 1.0)
        iu = np.triu_indices(n, k=1)
        vals = _local_scale(S[iu], iu[0], radius, calibration, iu[1])
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, size=max_pairs)
        j = rng.integers(0, n - 1, size=max_pairs)
        j = np.where(j >= i, j + 1, j)  # distinct pairs, uniform over ordered pairs
        vals = np.empty(max_pairs, np.float32)
        for s in range(0, max_pairs, 200_000):
            e = s + 200_000
            c = np.clip(np.einsum("ij,ij->i", V[i[s:e]], V[j[s:e]]), -1.0, 1.0)
            vals[s:e] = _local_scale(c, i[s:e], radius, calibration, j[s:e])
    return np.sort(vals.astype(np.float32))


# --- artists ---------------------------------------------------------------------------------
def _knn_radius(P: np.ndarray, calibration: str, k: int) -> np.ndarray | None:
    """Per-row k-NN radius for nicdm (mean distance) / csls (mean similarity), else None.

    Same definitions as ``calibration.LocalScaling`` / ``CSLS``, computed in row blocks so a
    10,000-artist library never holds its full matrix.
    """
    if calibration not in ("nicdm", "csls"):
        return None
    n = P.shape[0]
    k = min(k, max(n - 2, 1))
    out = np.empty(n)
    for s in range(0, n, 1024):
        S = np.clip(P[s:s + 1024] @ P.T, -1.0, 1.0)
        S[np.arange(S.shape[0]), np.arange(s, s + S.shape[0])] = -np.inf
        out[s:s + S.shape[0]] = -np.partition(-S, k - 1, axis=1)[:, :k].mean(axis=1)
    return (np.maximum(1.0 - out, 1e-9) if calibration == "nicdm" else out).astype(np.float32)


def _local_scale(cos: np.ndarray, i, radius: np.ndarray | None, calibration: str, j=None) -> np.ndarray:
    """Calibrated similarity of rows `i` against all (or against `j`, pairwise)."""
    if radius is None:
        return cos
    r_j = radius if j is None else radius[j]
    if calibration == "nicdm":
        return -(1.0 - cos) / np.sqrt(radius[i] * r_j)
    return 2.0 * cos - radius[i] - r_j


@dataclass
class ArtistScorer:
    """Calibrated artist × artist scores of one (backend, calibration).

    Either holds the exact matrices (``score``/``raw``, float32) or computes rows on demand
    from unit-norm profiles ``P`` (calibrated) and ``P_raw`` with a quantile ``table``.

    Attributes
    ----------
    labels : np.ndarray [shape=(n_artists,)]   artist ids in row order
    calibration, profile : str
    exact : bool   True when rows come from the full matrix
    """

    labels: np.ndarray
    calibration: str
    profile: str
    score: np.ndarray | None = None
    raw: np.ndarray | None = None
    P: np.ndarray | None = None
    P_raw: np.ndarray | None = None
    table: np.ndarray | None = None
    radius: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._index = {int(a): i for i, a in enumerate(self.labels.tolist())}

    @property
    def exact(self) -> bool:
        return self.score is not None

    def __len__(self) -> int:
        return len(self.labels)

    def has(self, artist_id: int) -> bool:
        return int(artist_id) in self._index

    def index_of(self, artist_id: int) -> int:
        try:
            return self._index[int(artist_id)]
        except KeyError:
            raise ParameterError(
                f"Artist {artist_id} has no embeddings for this backend; run `soundalike embed` for its tracks."
            ) from None

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(score, raw_cosine)`` of row `i`, each ``(n_artists,)`` float32."""
        if self.score is not None:
            return self.score[i], self.raw[i]
        cal, raw = self._calibrated_row(i)
        return percentile_from_table(self.table, cal), raw

    def _calibrated_row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        cos = np.clip(self.P @ self.P[i], -1.0, 1.0)
        raw = np.clip(self.P_raw @ self.P_raw[i], -1.0, 1.0)
        return _local_scale(cos, i, self.radius, self.calibration).astype(np.float32, copy=False), raw

    def top(self, artist_id: int, *, k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float, float]]:
        """The `k` best ``(artist_id, score, raw_cosine)``, best first, the query excluded."""
        i = self.index_of(artist_id)
        skip = {i} | {self._index[a] for a in exclude if a in self._index}
        if self.score is not None:
            return self._top_of(self.score[i], self.raw[i], k=k, skip=skip)
        # The percentile is monotonic in the calibrated value: rank on it, map only the winners.
        cal, raw = self._calibrated_row(i)
        best = self._top_of(cal, raw, k=k, skip=skip)
        pct = percentile_from_table(self.table, np.array([s for _, s, _ in best], np.float32))
        return [(a, float(p), r) for (a, _, r), p in zip(best, pct)]

    def scores_for(self, artist_id: int, others: Sequence[int]) -> list[float | None]:
        """Scores of `artist_id` against each of `others` (None where an artist has no vectors)."""
        if not self.has(artist_id):
            return [None] * len(others)
        score, _ = self.row(self.index_of(artist_id))
        return [float(score[self._index[o]]) if o in self._index else None for o in others]

    def _top_of(self, score: np.ndarray, raw: np.ndarray, *, k: int, skip: set[int]) -> list[tuple[int, float, float]]:
        n = score.shape[0]
        want = min(k + len(skip), n)
        if want <= 0:
            return []
        if want < n:
            cand = np.argpartition(-score, want - 1)[:want]
        else:
            cand = np.arange(n)
        # Ties broken by raw cosine, then by row order, so answers are deterministic.
        order = cand[np.lexsort((cand, -raw[cand], -score[cand]))]
        out = []
        for j in order.tolist():
            if j in skip:
                continue
            out.append((int(self.labels[j]), float(score[j]), float(raw[j])))
            if len(out) == k:
                break
        return out


def build_artist_scorer(X: np.ndarray, labels: np.ndarray, *, calibration: str, profile: str = "centroid",
                        full_matrix_max: int = FULL_MATRIX_MAX_ARTISTS) -> ArtistScorer:
    """Build the scorer of track vectors `X` ``(n_tracks, d)`` labelled by artist ids ``(n_tracks,)``.

    Small libraries get the exact matrix of ``similarity.artist_similarity`` (any calibration it
    supports); large ones an on-demand scorer (none/center/nicdm/csls, centroid profiles).
    """
    n_artists = len(np.unique(labels))
    if n_artists <= full_matrix_max:
        sim = artist_similarity(X, labels, calibration=calibration, profile=profile)
        return ArtistScorer(np.asarray(sim.labels), calibration, profile,
                            score=np.ascontiguousarray(sim.score, np.float32),
                            raw=np.ascontiguousarray(sim.raw_cosine, np.float32))
    if calibration not in ON_DEMAND_CALIBRATIONS or profile != "centroid":
        raise ParameterError(
            f"calibration={calibration!r} with profile={profile!r} needs the full artist matrix, which the service "
            f"builds only up to {full_matrix_max} artists (this library has {n_artists}); "
            f"use calibration 'none' or 'center' with the centroid profile."
        )
    uniq, P_raw = artist_profiles(X, labels, kind="centroid")
    P_raw = l2_normalize(P_raw).astype(np.float32)
    if calibration != "none":  # centre (calibration.Centerer), then profile — as artist_similarity
        Xn = l2_normalize(np.asarray(X, np.float64))
        _, P = artist_profiles(Xn - Xn.mean(axis=0, keepdims=True), labels, kind="centroid")
        P = l2_normalize(P).astype(np.float32)
    else:
        P = P_raw
    radius = _knn_radius(P, calibration, LOCAL_K)
    table = _pair_table(P, max_pairs=QUANTILE_SAMPLE_PAIRS, radius=radius, calibration=calibration)
    return ArtistScorer(np.asarray(uniq), calibration, profile, P=np.ascontiguousarray(P),
                        P_raw=np.ascontiguousarray(P_raw), table=table, radius=radius)


# --- tracks ----------------------------------------------------------------------------------
class TrackIndex:
    """Track vectors of one backend, centred (the ``center`` calibration) and unit-norm.

    Parameters
    ----------
    track_ids : list of str [n_tracks]
    X : np.ndarray [shape=(n_tracks, d)]
    track_artist : np.ndarray [shape=(n_tracks,)]
    """

    def __init__(self, track_ids: Sequence[str], X: np.ndarray, track_artist: np.ndarray, *,
                 ann_path: str | Path | None = None, ann_min_items: int = FAISS_MIN_ITEMS) -> None:
        self.track_ids = list(track_ids)
        self.pos = {t: i for i, t in enumerate(self.track_ids)}
        Xn = l2_normalize(np.asarray(X, np.float64))
        self.mean = Xn.mean(axis=0) if len(Xn) else np.zeros(X.shape[1])
        self.V = l2_normalize(Xn - self.mean).astype(np.float32)
        self.artist = np.asarray(track_artist)
        self.table = _pair_table(self.V, max_pairs=EXACT_TRACK_PAIRS_MAX * (EXACT_TRACK_PAIRS_MAX - 1) // 2)
        #: Faiss index over ``V`` for large libraries (saved at `ann_path`, reused while the vectors match)
        self.ann: NeighbourIndex | None = None
        large = len(self.track_ids) >= ann_min_items
        if ann_path is not None and (large or Path(ann_path).is_file()) and faiss_available():
            self.ann = NeighbourIndex.cached(self.V, ann_path, ids=self.track_ids, metric="ip", ann="ivf")
            log.info("track index %s: %s (%d tracks)", ann_path, "reused" if self.ann.reused else "built", len(self))

    def __len__(self) -> int:
        return len(self.track_ids)

    def embed_query(self, x: np.ndarray) -> np.ndarray:
        """Map a raw vector ``(d,)`` (e.g. an uploaded clip's) into the centred unit space."""
        xn = l2_normalize(np.asarray(x, np.float64))
        return l2_normalize(xn - self.mean).astype(np.float32)

    def seeds_query(self, seed_positions: Sequence[int]) -> np.ndarray:
        """Unit-norm mean of several seeds' vectors (multi-seed queries)."""
        return l2_normalize(self.V[list(seed_positions)].mean(axis=0)).astype(np.float32)

    def scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(percentile score, cosine)`` of every track against unit vector `q`."""
        cos = np.clip(self.V @ q, -1.0, 1.0)
        return percentile_from_table(self.table, cos), cos

    def nearest(self, q: np.ndarray, *, k: int, exclude: Iterable[int] = (), exclude_artists: Iterable[int] = (),
                artist_gap: int = 0) -> list[tuple[int, float, float]]:
        """The `k` tracks nearest to `q` as ``(position, score, cosine)``, best first.

        Parameters
        ----------
        exclude : positions never returned (the seeds)
        exclude_artists : artist ids never returned
        artist_gap : int >= 0
            No artist repeats within this many consecutive results; when the library runs
            out of other artists, the skipped tracks fill the remaining places.
        """
        skip = set(exclude)
        banned = set(int(a) for a in exclude_artists)
        n = len(self.track_ids)
        want = k + len(skip) + 4 * k  # candidates asked of the ANN index; doubled while filters eat them
        while True:
            if self.ann is not None and want < n:
                _, cand = self.ann.search(q[None, :], want)
                order = cand[0][cand[0] >= 0]
                cos = np.clip(self.V[order] @ q, -1.0, 1.0)
                order = order[np.argsort(-cos, kind="stable")]
            else:
                cos_all = np.clip(self.V @ q, -1.0, 1.0)
                order = np.argsort(-cos_all, kind="stable")
            picked = self._pick(order.tolist(), k=k, skip=skip, banned=banned, artist_gap=artist_gap)
            if len(picked) == k or self.ann is None or want >= n:
                break
            want *= 4
        cos_p = np.clip(self.V[picked] @ q, -1.0, 1.0) if picked else np.zeros(0)
        score_p = percentile_from_table(self.table, cos_p)
        return [(j, float(s), float(c)) for j, s, c in zip(picked, score_p, cos_p)]

    def _pick(self, order: list[int], *, k: int, skip: set[int], banned: set[int], artist_gap: int) -> list[int]:
        picked: list[int] = []
        deferred: list[int] = []
        for j in order:
            if j in skip or int(self.artist[j]) in banned:
                continue
            if artist_gap > 0 and int(self.artist[j]) in {int(self.artist[p]) for p in picked[-artist_gap:]}:
                deferred.append(j)
                continue
            picked.append(j)
            if len(picked) == k:
                break
        if len(picked) < k:
            picked.extend(deferred[: k - len(picked)])
        return picked

    def artist_scores(self, q: np.ndarray) -> list[tuple[int, float, float]]:
        """Every artist as ``(artist_id, score, cosine)`` against unit vector `q`, best first.

        Artists are the unit-norm centroids of their centred tracks; the score is the cosine's
        percentile among all artist-pair cosines of those centroids.
        """
        if not hasattr(self, "_artist_P"):
            uniq, P = artist_profiles(self.V, self.artist, kind="centroid")
            self._artist_ids = np.asarray(uniq)
            self._artist_P = l2_normalize(P).astype(np.float32)
            self._artist_table = _pair_table(self._artist_P, max_pairs=QUANTILE_SAMPLE_PAIRS)
        cos = np.clip(self._artist_P @ q, -1.0, 1.0)
        score = percentile_from_table(self._artist_table, cos)
        order = np.argsort(-cos, kind="stable")
        return [(int(self._artist_ids[j]), float(score[j]), float(cos[j])) for j in order.tolist()]

    def path(self, start: int, end: int, *, count: int) -> list[tuple[int, float, float]]:
        """A sonic path of `count` tracks from `start` to `end` (both included).

        Intermediate steps walk the straight line between the two vectors; each step takes
        the nearest unused track to its point. Each entry's score is relative to the start.
        """
        if count < 2:
            raise ParameterError(f"count must be >= 2 for a path (start and end), got {count}.")
        count = min(count, len(self))
        a, b = self.V[start].astype(np.float64), self.V[end].astype(np.float64)
        used = {start, end}
        steps = [start]
        for s in range(1, count - 1):
            t = s / (count - 1)
            p = l2_normalize((1 - t) * a + t * b)
            cos = self.V @ p.astype(np.float32)
            for j in np.argsort(-cos, kind="stable").tolist():
                if j not in used:
                    used.add(j)
                    steps.append(j)
                    break
        steps.append(end)
        score, cos = self.scores(self.V[start])
        out = [(j, float(score[j]), float(cos[j])) for j in steps]
        out[0] = (start, 1.0, 1.0)
        return out


# --- map -------------------------------------------------------------------------------------
def layout_2d(P: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D coordinates ``(n, 2)`` in [0, 1] for profile vectors ``(n, d)``.

    t-SNE (cosine metric) for 50..1,000 points; PCA below (t-SNE says little about a handful of
    points) and above (its cost grows with n).
    """
    n = P.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    if n <= 2:
        Y = np.array([[0.0, 0.0], [1.0, 1.0]])[:n]
    else:
        Pc = np.asarray(P, np.float64) - np.asarray(P, np.float64).mean(axis=0)
        if 50 <= n <= 1000:
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
            Y = TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine",
                     random_state=seed).fit_transform(Pc)
        else:
            U, S, _ = np.linalg.svd(Pc, full_matrices=False)
            Y = U[:, :2] * S[:2] if U.shape[1] >= 2 else np.c_[U[:, 0] * S[0], np.zeros(n)]
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return (Y - lo) / span


class Lazy:
    """A value built once on first use, thread-safe (models shared by request threads)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # builders nest (a scorer needs its view)
        self._values: dict = {}

    def get(self, key, build):
        v = self._values.get(key)
        if v is not None:
            return v
        with self._lock:
            v = self._values.get(key)
            if v is None:
                v = build()
                self._values[key] = v
            return v
