"""A calibrated space: the one place where vectors become calibrated [0, 1] scores.

One :class:`CalibratedSpace` holds the items of one level (artists or tracks) of one stored
model, layer, calibration and profile:

* ``V``: the items' unit vectors after the calibration's vector step (``none``: raw;
  ``center``/``mp-*``/``nicdm``/``csls``: centred; ``zscore``; ``whiten``), or — for the ``set``
  profile, which has no vector per artist — the item × item similarity matrix ``S``;
* ``radius``: the k-NN radii of ``nicdm``/``csls`` (:data:`LOCAL_K` neighbours, computed in row
  blocks so 100,000 items never hold an n × n matrix);
* ``mp``: the fitted mutual-proximity estimator (its n × n state, small libraries only);
* ``table``: the sorted calibrated scores of all item pairs (or of a seeded sample of
  :data:`TABLE_SAMPLE_PAIRS` pairs above :data:`EXACT_TABLE_MAX_ITEMS` items): the percentile
  table that turns a calibrated value into the CONTRACTS score.

A query is one row: the cosine of a unit query vector with every item (or with the candidates a
saved Faiss index proposes, re-ranked exactly), locally scaled, mapped through the table.
The same row gives the same score whichever surface asks and whatever the library size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..calibration import CSLS, LocalScaling, MutualProximity, percentile_of
from ..errors import ParameterError

__all__ = [
    "LOCAL_K",
    "EXACT_TABLE_MAX_ITEMS",
    "TABLE_SAMPLE_PAIRS",
    "MATRIX_CALIBRATION_MAX_ITEMS",
    "CalibratedSpace",
    "Hit",
    "knn_radius",
    "local_k",
]

#: Neighbourhood size of nicdm / csls (the only definition).
LOCAL_K = 5
#: Up to this many items the percentile table holds every pair (exact); above it a seeded sample.
EXACT_TABLE_MAX_ITEMS = 2000
#: Pairs sampled for the table of a larger space (percentile error about 1e-3).
TABLE_SAMPLE_PAIRS = 2_000_000
#: mutual proximity keeps an n x n state: allowed up to this many items.
MATRIX_CALIBRATION_MAX_ITEMS = 5000
#: Rows per block when a space scans all its items (bounds memory at ~block x n floats).
_BLOCK_BYTES = 1 << 27


@dataclass(frozen=True)
class Hit:
    """One neighbour: its row position, calibrated score in [0, 1] and raw cosine."""

    pos: int
    score: float
    raw_cosine: float


def local_k(n: int) -> int:
    """The neighbourhood size used for `n` items (LOCAL_K, smaller for tiny spaces)."""
    return min(LOCAL_K, max(n - 2, 1))


def _block_rows(n: int) -> int:
    return max(1, min(n, _BLOCK_BYTES // (8 * max(n, 1))))


def _scaler(calibration: str):
    return LocalScaling if calibration == "nicdm" else CSLS


def knn_radius(V: np.ndarray, calibration: str, k: int) -> np.ndarray:
    """Per-item k-NN radius of unit rows `V` for nicdm / csls (:class:`calibration.LocalScaling`,
    :class:`calibration.CSLS` define it), computed in row blocks."""
    n = V.shape[0]
    sims = np.empty(n)
    step = _block_rows(n)
    if n > EXACT_TABLE_MAX_ITEMS:  # large spaces: float32 products (twice as fast; radii agree to ~1e-7)
        V = V.astype(np.float32)
    for s in range(0, n, step):
        S = np.clip(V[s:s + step] @ V.T, -1.0, 1.0)
        S[np.arange(S.shape[0]), np.arange(s, s + S.shape[0])] = -np.inf
        sims[s:s + S.shape[0]] = LocalScaling._knn_mean(S, np.isfinite(S), k)
    return _scaler(calibration).radius_from_mean(sims)


def _query_radius(cos: np.ndarray, self_pos: int, calibration: str, k: int) -> float:
    mask = np.ones(cos.shape[0], bool)
    if self_pos >= 0:
        mask[self_pos] = False
    return float(_scaler(calibration).radius_from_mean(LocalScaling._knn_mean(cos[None, :], mask[None, :], k))[0])


def _tie_guard(vals: np.ndarray) -> np.ndarray:
    """Round calibrated values to 12 decimals before ranking: a last-bit difference between two
    BLAS paths must not move a pair across a tie in the percentile table."""
    return np.round(vals, 12)


def _scale(cos: np.ndarray, r_q, r_j: np.ndarray, calibration: str) -> np.ndarray:
    """Locally scaled value of cosines `cos` between items with radii `r_q` and `r_j`."""
    return _scaler(calibration).combine(cos, r_q, r_j)


@dataclass
class CalibratedSpace:
    """Items of one level with their calibrated state (see the module docstring).

    Attributes
    ----------
    ids : np.ndarray [shape=(n,)]   artist ids or track ids, in row order
    calibration : str
    V : np.ndarray [shape=(n, d)] or None   calibrated unit vectors
    R : np.ndarray [shape=(n, d)] or None   raw unit vectors (raw cosine)
    S, S_raw : np.ndarray [shape=(n, n)] or None   similarity matrices (``set`` profile)
    radius : np.ndarray [shape=(n,)] or None
    table : np.ndarray   sorted calibrated pair values (empty for mutual proximity)
    table_exact : bool   every pair (True) or a sample
    """

    ids: np.ndarray
    calibration: str
    V: np.ndarray | None = None
    R: np.ndarray | None = None
    S: np.ndarray | None = None
    S_raw: np.ndarray | None = None
    radius: np.ndarray | None = None
    table: np.ndarray = field(default_factory=lambda: np.zeros(0))
    table_exact: bool = True
    mp: MutualProximity | None = None
    #: a Faiss index over ``V`` proposing candidates (large libraries, or forced); None: exact scan
    index: object | None = None
    #: the fitted vector calibrator (Centerer, ZScorer, Whitener) or None
    vector_step: object | None = None

    def __post_init__(self) -> None:
        self.pos = {(x.item() if hasattr(x, "item") else x): i for i, x in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    # --- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, ids: Sequence, calibration: str, *, V: np.ndarray | None = None, R: np.ndarray | None = None,
            S: np.ndarray | None = None, S_raw: np.ndarray | None = None, seed: int = 0) -> "CalibratedSpace":
        """Fit radii, mutual proximity and the percentile table over the given items."""
        space = cls(np.asarray(ids), calibration, V=V, R=R, S=S, S_raw=S_raw)
        n = len(space)
        if calibration.startswith("mp-"):
            if n > MATRIX_CALIBRATION_MAX_ITEMS:
                raise ParameterError(
                    f"calibration {calibration!r} keeps an n x n state and is allowed up to "
                    f"{MATRIX_CALIBRATION_MAX_ITEMS} items (this level has {n}); use nicdm, csls or center.")
            if n >= 3:
                space.mp = MutualProximity(method=calibration[3:]).fit(space.full_cosine())
            return space
        if calibration in ("nicdm", "csls") and n >= 3:
            if S is not None:
                est = (LocalScaling if calibration == "nicdm" else CSLS)(k=local_k(n)).fit(S)
                space.radius = est.radius_
            else:
                space.radius = knn_radius(V, calibration, local_k(n))
        space.table, space.table_exact = space._pair_table(seed)
        return space

    def full_cosine(self) -> np.ndarray:
        """The n x n calibrated cosine (small spaces only), row by row as queries compute it.

        Built from the same row products a query computes, so a pair's value in the
        percentile table is bit-identical to the value its query finds (no off-by-one ranks).
        """
        if self.S is not None:
            return self.S
        return np.vstack([self._cosines(self.V[i], i, None) for i in range(len(self))]) if len(self) else np.zeros((0, 0))

    def _pair_table(self, seed: int) -> tuple[np.ndarray, bool]:
        n = len(self)
        if n < 2:
            return np.zeros(0), True
        if n <= EXACT_TABLE_MAX_ITEMS:
            i, j = np.triu_indices(n, k=1)
            cos = self.full_cosine()[i, j]
            exact = True
        else:
            rng = np.random.default_rng(seed)
            i = rng.integers(0, n, size=TABLE_SAMPLE_PAIRS)
            j = rng.integers(0, n - 1, size=TABLE_SAMPLE_PAIRS)
            j = np.where(j >= i, j + 1, j)  # distinct pairs, uniform over ordered pairs
            cos = np.empty(TABLE_SAMPLE_PAIRS)
            for s in range(0, TABLE_SAMPLE_PAIRS, 200_000):
                e = s + 200_000
                cos[s:e] = np.clip(np.einsum("ij,ij->i", self.V[i[s:e]], self.V[j[s:e]]), -1.0, 1.0)
            exact = False
        vals = cos if self.radius is None else _scale(cos, self.radius[i], self.radius[j], self.calibration)
        return np.sort(_tie_guard(vals)), exact

    # --- rows ------------------------------------------------------------------------------
    def position(self, item) -> int:
        try:
            return self.pos[item]
        except KeyError:
            raise ParameterError(f"{item!r} has no vectors at this level; run `soundalike embed` for it.") from None

    def unit_query(self, positions: Sequence[int]) -> np.ndarray:
        """Unit mean of the calibrated vectors at `positions` (one seed: its own vector)."""
        if self.V is None:
            raise ParameterError("the set profile has no vector per artist; query one artist, or use profile centroid.")
        q = self.V[list(positions)].mean(axis=0)
        return q / max(float(np.linalg.norm(q)), 1e-12)

    def _cosines(self, q: np.ndarray | None, self_pos: int, cand: np.ndarray | None) -> np.ndarray:
        if q is None:
            row = self.S[self_pos]
            return row if cand is None else row[cand]
        V = self.V if cand is None else self.V[cand]
        return np.clip(V @ q, -1.0, 1.0)

    def _raw(self, positions: np.ndarray, raw_q: np.ndarray | None, self_pos: int) -> np.ndarray:
        if self.S_raw is not None:
            return self.S_raw[self_pos, positions]
        if raw_q is None or self.R is None:
            return np.full(len(positions), np.nan)
        return np.clip(self.R[positions] @ raw_q, -1.0, 1.0)

    def values(self, cos: np.ndarray, positions: np.ndarray, r_q: float | None, self_pos: int,
               full_cos: np.ndarray | None) -> np.ndarray:
        """Calibrated values (monotonic in the score) of the items at `positions` for one query.

        Local scaling for nicdm/csls, the cosine otherwise, the probability for mutual proximity;
        rounded to 12 decimals (:func:`_tie_guard`).
        """
        if self.calibration.startswith("mp-"):
            if self.mp is None:
                return np.full(len(positions), 0.5)
            row = self.mp.transform(full_cos[None, :], index=[self_pos])[0]
            return _tie_guard(np.clip(row[positions], 0.0, 1.0))
        vals = cos if self.radius is None or r_q is None else _scale(cos, r_q, self.radius[positions], self.calibration)
        return _tie_guard(vals)

    def to_score(self, vals: np.ndarray) -> np.ndarray:
        """The CONTRACTS score in [0, 1]: the percentile among all pairs (mutual proximity: itself)."""
        return vals if self.calibration.startswith("mp-") else percentile_of(self.table, vals)

    def calibrated(self, cos: np.ndarray, positions: np.ndarray, r_q: float | None, self_pos: int,
                   full_cos: np.ndarray | None) -> np.ndarray:
        """Score in [0, 1] of the items at `positions` (their cosines `cos`) for one query."""
        return self.to_score(self.values(cos, positions, r_q, self_pos, full_cos))

    def top(self, q: np.ndarray | None, *, k: int, self_pos: int = -1, raw_q: np.ndarray | None = None,
            allowed: np.ndarray | None = None, item_group: np.ndarray | None = None, group_gap: int = 0,
            use_index: bool = False) -> list[Hit]:
        """The `k` best items for unit query `q` (or, ``q=None``, for the item at `self_pos`).

        Parameters
        ----------
        self_pos : the query's own row (-1 for a query outside the items): left out of its
            own neighbourhood
        allowed : bool [shape=(n,)]   items that may be returned (filters); default every item
            but the query's own row
        item_group, group_gap : no group (artist) repeats within `group_gap` consecutive hits;
            when the library runs out of other groups, the skipped items fill the remaining places
        use_index : ask the Faiss index for candidates, then re-rank them exactly
        """
        n = len(self)
        if n == 0 or k <= 0:
            return []
        if allowed is None:
            allowed = np.ones(n, bool)
            if self_pos >= 0:
                allowed[self_pos] = False
        want = min(n, max(10 * (k + int((~allowed).sum() if n < 10_000 else 0)), 200))
        while True:
            cand = None
            if use_index and self.index is not None and q is not None:
                _, found = self.index.search(q[None, :].astype(np.float32), want)
                cand = found[0][found[0] >= 0]
            hits = self._rank(q, cand, self_pos, raw_q, allowed, k, item_group, group_gap)
            if cand is None or len(hits) == k or want >= n:
                return hits
            want = min(n, want * 4)

    def _rank(self, q, cand, self_pos, raw_q, allowed, k, item_group, group_gap) -> list[Hit]:
        full_cos = None
        positions = np.arange(len(self)) if cand is None else np.asarray(cand)
        cos = self._cosines(q, self_pos, cand)
        r_q = None
        if self.radius is not None and self_pos >= 0:
            r_q = float(self.radius[self_pos])
        elif self.radius is not None:
            # with candidates from the index, its best cosines are the query's neighbourhood
            r_q = _query_radius(cos, -1, self.calibration, local_k(len(self)))
        if self.calibration.startswith("mp-"):
            full_cos = self._cosines(q, self_pos, None)
        vals = self.values(cos, positions, r_q, self_pos, full_cos)
        keep = allowed[positions]
        positions, vals, cos = positions[keep], vals[keep], cos[keep]
        if group_gap <= 0 and len(vals) > k:
            # the percentile is monotonic in the value: keep everything tied with the k-th best, map only those
            kth = np.partition(vals, len(vals) - k)[len(vals) - k]
            top = np.flatnonzero(vals >= kth)
            positions, vals, cos = positions[top], vals[top], cos[top]
        # best first; ties by cosine, then by row order, so every surface gets the same order
        order = np.lexsort((positions, -cos, -vals))
        picked = _pick(order.tolist(), positions, item_group, group_gap, k)
        score = self.to_score(vals[picked])
        raw = self._raw(positions[picked], raw_q, self_pos)
        return [Hit(int(positions[o]), float(sc), float(r)) for o, sc, r in zip(picked, score, raw)]

    def pair_scores(self, a: int, others: Iterable[int]) -> np.ndarray:
        """Scores of item `a` against the items at positions `others`."""
        others = np.asarray(list(others), int)
        q = None if self.V is None else self.V[a]
        full = self._cosines(q, a, None)
        r_q = None if self.radius is None else float(self.radius[a])
        return self.calibrated(full[others], others, r_q, a, full)

    def score_matrix(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(score, raw_cosine)`` of every item pair (small spaces; diagonal 1).

        `rows`, when given, are item positions: the matrices then cover the pairs among those
        items only (``m x m``, a sample of a large space), each value the one a query of the
        whole space finds for that pair.
        """
        sel = None if rows is None else np.asarray(rows, dtype=int)
        if sel is None:
            C_rows = self.full_cosine()
            C = C_rows
        elif self.calibration.startswith("mp-") and self.mp is not None:  # needs each row against all items
            C_rows = self.S[sel] if self.S is not None else (
                np.vstack([self._cosines(self.V[i], int(i), None) for i in sel]) if sel.size else np.zeros((0, len(self))))
            C = C_rows[:, sel]
        else:  # each row against the sample only, as a query re-ranking candidates computes it
            C = np.vstack([self._cosines(None if self.S is not None else self.V[i], int(i), sel) for i in sel]) \
                if sel.size else np.zeros((0, 0))
            C_rows = C
        m = C.shape[0]
        if self.calibration.startswith("mp-") and self.mp is not None:
            index = np.arange(m) if sel is None else sel
            score = self.mp.transform(C_rows, index=index)
            score = np.clip(score if sel is None else score[:, sel], 0.0, 1.0)
        elif self.calibration.startswith("mp-"):
            score = np.full((m, m), 0.5)
        else:
            r = None if self.radius is None else (self.radius if sel is None else self.radius[sel])
            vals = C if r is None else _scale(C, r[:, None], r[None, :], self.calibration)
            score = percentile_of(self.table, _tie_guard(vals))
        np.fill_diagonal(score, 1.0)
        if self.S_raw is not None:
            raw = self.S_raw if sel is None else self.S_raw[np.ix_(sel, sel)]
        else:
            R = self.R if sel is None else self.R[sel]
            raw = np.clip(R @ R.T, -1.0, 1.0)
        return score, raw


def _pick(order: list[int], positions: np.ndarray, group: np.ndarray | None, gap: int, k: int) -> list[int]:
    if group is None or gap <= 0:
        return order[:k]
    picked: list[int] = []
    deferred: list[int] = []
    for o in order:
        g = group[positions[o]]
        if any(group[positions[p]] == g for p in picked[-gap:]):
            deferred.append(o)
            continue
        picked.append(o)
        if len(picked) == k:
            return picked
    return picked + deferred[: k - len(picked)]
