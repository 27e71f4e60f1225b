"""Calibrators: make similarity scores mean the same thing for every backend.

Two kinds, both scikit-learn-shaped estimators (``__init__`` stores options, ``fit`` learns
attributes ending in ``_`` and returns ``self``, other methods raise :class:`NotFittedError`
before ``fit``):

* **vector calibrators** change the space before cosine — :class:`Centerer` (remove the common
  direction: anisotropy), :class:`ZScorer` (per-feature standardisation: descriptors mix BPM,
  LUFS, ...), :class:`Whitener` (z-score, then shrunk ZCA whitening);
* **matrix calibrators** rescale a library similarity matrix against each item's neighbourhood
  (the hubness fixes) — :class:`MutualProximity` (empirical or Gaussian; Schnitzer et al.,
  JMLR 2012), :class:`LocalScaling` (NICDM), :class:`CSLS` (Conneau et al., 2018).

:func:`percentile_of` maps any score to its percentile among the library's pairs
(CONTRACTS.md: a calibrated score in [0, 1]). The query engine keeps fitted states in the store
(JSON + ``.npz`` bytes, never pickled; :mod:`soundalike.query.vectors`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr
from sklearn.base import BaseEstimator, TransformerMixin

from ._validation import check_embeddings, check_option, check_positive_int
from .errors import DimensionMismatchError, NotFittedError, ParameterError

__all__ = [
    "Centerer",
    "ZScorer",
    "Whitener",
    "MutualProximity",
    "LocalScaling",
    "CSLS",
    "percentile_of",
]

def _l2(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


def _check_fitted(est: BaseEstimator, attr: str) -> None:
    if not hasattr(est, attr):
        raise NotFittedError(
            f"This {type(est).__name__} is not fitted yet; call fit(...) on the library first."
        )


def _check_dim(est: BaseEstimator, X: np.ndarray) -> np.ndarray:
    X = check_embeddings(X, name="X")
    if X.shape[1] != est.n_features_in_:
        raise DimensionMismatchError(
            f"X has {X.shape[1]} features, but this {type(est).__name__} was fitted on "
            f"{est.n_features_in_}; use a calibrator fitted on the same backend and layer."
        )
    return X


# --------------------------------------------------------------------------------------------
# vector calibrators
# --------------------------------------------------------------------------------------------
class Centerer(TransformerMixin, BaseEstimator):
    """L2-normalise rows, then subtract the library mean (removes the shared direction).

    Attributes
    ----------
    mean_ : np.ndarray [shape=(d,)]   mean of the L2-normalised library vectors
    n_features_in_ : int

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(20, 4)) + 5.0
    >>> Xc = Centerer().fit(X).transform(X)
    >>> bool(np.allclose(Xc.mean(axis=0), 0.0))
    True
    """


    def fit(self, X: np.ndarray, y: Any = None) -> "Centerer":
        X = check_embeddings(X, name="X").astype(np.float64)
        self.mean_ = _l2(X).mean(axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        _check_fitted(self, "mean_")
        X = _check_dim(self, X).astype(np.float64)
        return _l2(X) - self.mean_


class ZScorer(TransformerMixin, BaseEstimator):
    """Standardise every feature to zero mean and unit variance over the library.

    Parameters
    ----------
    min_scale : float > 0
        Features whose standard deviation is below this are left unscaled (constant features).

    Attributes
    ----------
    mean_, scale_ : np.ndarray [shape=(d,)]
    """


    def __init__(self, *, min_scale: float = 1e-8) -> None:
        self.min_scale = min_scale

    def fit(self, X: np.ndarray, y: Any = None) -> "ZScorer":
        X = check_embeddings(X, name="X").astype(np.float64)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > self.min_scale, sd, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        _check_fitted(self, "mean_")
        X = _check_dim(self, X).astype(np.float64)
        return (X - self.mean_) / self.scale_


class Whitener(TransformerMixin, BaseEstimator):
    """Z-score, then ZCA-whiten with a covariance shrunk towards the identity.

    Shrinkage keeps the few-tracks-many-dims case (93 tracks, 200 dims) stable: the covariance
    used is ``(1 - shrinkage) * C + shrinkage * I`` (of the z-scored data, so ``I`` has the
    right scale).

    Parameters
    ----------
    shrinkage : float in [0, 1]

    Attributes
    ----------
    mean_, scale_ : np.ndarray [shape=(d,)]
    components_ : np.ndarray [shape=(d, d)]   the symmetric whitening matrix
    """


    def __init__(self, *, shrinkage: float = 0.5) -> None:
        self.shrinkage = shrinkage

    def fit(self, X: np.ndarray, y: Any = None) -> "Whitener":
        if not 0.0 <= float(self.shrinkage) <= 1.0:
            raise ParameterError(f"shrinkage must be in [0, 1], got {self.shrinkage!r}.")
        z = ZScorer().fit(X)
        Z = z.transform(X)
        C = np.cov(Z, rowvar=False) if Z.shape[0] > 1 else np.eye(Z.shape[1])
        C = np.atleast_2d(C)
        C = (1.0 - self.shrinkage) * C + self.shrinkage * np.eye(C.shape[0])
        w, V = np.linalg.eigh(C)
        w = np.maximum(w, 1e-10)
        self.mean_, self.scale_ = z.mean_, z.scale_
        self.components_ = (V / np.sqrt(w)) @ V.T
        self.n_features_in_ = Z.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        _check_fitted(self, "components_")
        X = _check_dim(self, X).astype(np.float64)
        return ((X - self.mean_) / self.scale_) @ self.components_


# --------------------------------------------------------------------------------------------
# matrix calibrators: fitted on the library's (n, n) similarity matrix; transform rows of
# similarities of m items to those n library items
# --------------------------------------------------------------------------------------------
def _check_square(S: Any) -> np.ndarray:
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ParameterError(f"fit expects a square (n, n) similarity matrix of the library, got shape {S.shape}.")
    if S.shape[0] < 3:
        raise ParameterError(f"a neighbourhood calibration needs at least 3 library items, got {S.shape[0]}.")
    if not np.isfinite(S).all():
        raise ParameterError("the similarity matrix contains NaN or infinite values.")
    return S


class _MatrixCalibrator(BaseEstimator):
    """Shared plumbing of the neighbourhood calibrators."""

    def _rows(self, S: Any, index: Any) -> tuple[np.ndarray, np.ndarray | None]:
        S = np.asarray(S, dtype=np.float64)
        if S.ndim == 1:
            S = S[None, :]
        if S.ndim != 2 or S.shape[1] != self.n_items_:
            raise DimensionMismatchError(
                f"similarity rows have {S.shape[-1] if S.ndim else 0} columns, but this {type(self).__name__} "
                f"was fitted on {self.n_items_} library items; score queries against the same library."
            )
        if not np.isfinite(S).all():
            raise ParameterError("the similarity rows contain NaN or infinite values.")
        idx = None if index is None else np.asarray(index, dtype=int).reshape(-1)
        if idx is not None and idx.shape[0] != S.shape[0]:
            raise ParameterError(f"index has {idx.shape[0]} entries for {S.shape[0]} rows.")
        return S, idx

    @staticmethod
    def _mask_self(S: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        """Boolean (m, n): True where the column is a *different* item than the row."""
        m = np.ones(S.shape, dtype=bool)
        if idx is not None:
            ok = idx >= 0
            m[np.flatnonzero(ok), idx[ok]] = False
        return m

    @staticmethod
    def _knn_mean(S: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
        """Mean similarity of each row to its k most similar other items."""
        X = np.where(mask, S, -np.inf)
        k = min(k, int(mask.sum(axis=1).min()))
        part = -np.partition(-X, k - 1, axis=1)[:, :k]
        return part.mean(axis=1)

    def fit_transform(self, S: Any, y: Any = None) -> np.ndarray:
        """Fit on the library matrix and return its calibrated version (diagonal = 1)."""
        self.fit(S)
        n = self.n_items_
        out = self.transform(S, index=np.arange(n))
        np.fill_diagonal(out, 1.0)
        return out


class MutualProximity(_MatrixCalibrator):
    """Mutual proximity: the probability that x and y are each other's close neighbours.

    With distances ``d = 1 - similarity``, ``MP(x, y) = P(D_x > d_xy and D_y > d_xy)``:
    ``empirical`` counts the library items farther from both than they are from each other;
    ``gaussian`` models each item's distances as a normal ``N(mu_x, sd_x)`` and assumes the two
    are independent. The result is already a probability in [0, 1].

    Parameters
    ----------
    method : {"empirical", "gaussian"}

    Attributes
    ----------
    n_items_ : int
    D_ : np.ndarray [shape=(n, n)]        library distances (empirical)
    mu_, sd_ : np.ndarray [shape=(n,)]   per-item distance mean and std (gaussian)
    """


    def __init__(self, *, method: str = "empirical") -> None:
        self.method = method

    def fit(self, S: Any, y: Any = None) -> "MutualProximity":
        check_option("method", self.method, ("empirical", "gaussian"))
        S = _check_square(S)
        n = S.shape[0]
        D = 1.0 - S
        off = ~np.eye(n, dtype=bool)
        vals = np.where(off, D, np.nan)
        self.mu_ = np.nanmean(vals, axis=1)
        self.sd_ = np.maximum(np.nanstd(vals, axis=1), 1e-9)
        self.D_ = D if self.method == "empirical" else np.zeros((0, 0))
        self.n_items_ = n
        return self

    def transform(self, S: Any, *, index: Any = None) -> np.ndarray:
        """Mutual proximity of m items to the n library items.

        Parameters
        ----------
        S : np.ndarray [shape=(m, n)]   similarities of each item to the library items
        index : array of int [shape=(m,)], optional
            The library position of each row's item (-1 for an item outside the library), so
            the item itself is left out of its own neighbourhood.

        Returns
        -------
        np.ndarray [shape=(m, n)] in [0, 1]
        """
        _check_fitted(self, "n_items_")
        S, idx = self._rows(S, index)
        D = 1.0 - S
        other = self._mask_self(S, idx)
        if self.method == "gaussian":
            # the row item's own distance distribution, from its row
            cnt = other.sum(axis=1)
            mu_q = np.where(other, D, 0.0).sum(axis=1) / np.maximum(cnt, 1)
            sd_q = np.sqrt(np.where(other, (D - mu_q[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(cnt, 1))
            sd_q = np.maximum(sd_q, 1e-9)
            p_q = 1.0 - ndtr((D - mu_q[:, None]) / sd_q[:, None])
            p_y = 1.0 - ndtr((D - self.mu_[None, :]) / self.sd_[None, :])
            return np.clip(p_q * p_y, 0.0, 1.0)
        n = self.n_items_
        out = np.empty_like(D)
        for r in range(D.shape[0]):  # one row at a time keeps memory at O(n^2), not O(m n^2)
            d = D[r]
            # item j: count k (k != row item, k != j) with d_rk > d_rj and D_jk > d_rj
            farther_q = (d[None, :] > d[:, None])  # [j, k]: d_rk > d_rj
            farther_y = self.D_ > d[:, None]       # [j, k]: D_jk > d_rj
            both = farther_q & farther_y
            valid = np.ones((n, n), dtype=bool)
            np.fill_diagonal(valid, False)
            if idx is not None and idx[r] >= 0:
                valid[:, idx[r]] = False
            denom = valid.sum(axis=1)
            out[r] = (both & valid).sum(axis=1) / np.maximum(denom, 1)
        if idx is not None:
            ok = idx >= 0
            out[np.flatnonzero(ok), idx[ok]] = 1.0
        return out


class _KNNScaling(_MatrixCalibrator):
    """Shared fit/transform of the k-NN local scalings: a radius per item from the mean similarity
    to its k nearest library neighbours, then a pair formula of the cosine and the two radii.
    ``radius_from_mean`` and ``combine`` are the only definitions of these formulas (the query
    engine's row scoring calls them too)."""


    def __init__(self, *, k: int = 5) -> None:
        self.k = k

    @staticmethod
    def radius_from_mean(mean_sim: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def combine(S: np.ndarray, r_q: Any, r_j: Any) -> np.ndarray:
        raise NotImplementedError

    def fit(self, S: Any, y: Any = None) -> "_KNNScaling":
        k = check_positive_int("k", self.k)
        S = _check_square(S)
        n = S.shape[0]
        self.radius_ = self.radius_from_mean(self._knn_mean(S, ~np.eye(n, dtype=bool), k))
        self.n_items_ = n
        return self

    def transform(self, S: Any, *, index: Any = None) -> np.ndarray:
        _check_fitted(self, "radius_")
        S, idx = self._rows(S, index)
        r_q = self.radius_from_mean(self._knn_mean(S, self._mask_self(S, idx), int(self.k)))
        return self.combine(S, r_q[:, None], self.radius_[None, :])


class LocalScaling(_KNNScaling):
    """NICDM / local scaling: distances divided by the geometric mean of the two items' k-NN radii.

    ``d'(x, y) = d(x, y) / sqrt(r_x r_y)`` with ``r_x`` the mean distance of x to its k nearest
    library neighbours; returned as a similarity ``-d'`` (rank it, or map it to a percentile).

    Attributes
    ----------
    radius_ : np.ndarray [shape=(n,)]
    """

    @staticmethod
    def radius_from_mean(mean_sim: np.ndarray) -> np.ndarray:
        return np.maximum(1.0 - mean_sim, 1e-9)

    @staticmethod
    def combine(S: np.ndarray, r_q: Any, r_j: Any) -> np.ndarray:
        return -(1.0 - S) / np.sqrt(r_q * r_j)


class CSLS(_KNNScaling):
    """Cross-domain similarity local scaling: ``2 cos(x, y) - r_x - r_y``.

    ``r_x`` is the mean similarity of x to its k nearest library neighbours, so items that are
    close to everything (hubs) are penalised.

    Attributes
    ----------
    radius_ : np.ndarray [shape=(n,)]
    """

    @staticmethod
    def radius_from_mean(mean_sim: np.ndarray) -> np.ndarray:
        return mean_sim

    @staticmethod
    def combine(S: np.ndarray, r_q: Any, r_j: Any) -> np.ndarray:
        return 2.0 * S - r_q - r_j


# --------------------------------------------------------------------------------------------
def percentile_of(table: np.ndarray, values: Any) -> np.ndarray:
    """Mid-rank percentile of each value among the sorted reference scores `table`, in [0, 1].

    ``(lo + hi) / (2 n)`` with ``lo``/``hi`` the left/right insertion points: ties share their
    mid rank. An empty table gives 0.5. The one percentile table of the project.
    """
    v = np.asarray(values, dtype=np.float64)
    n = table.size
    if n == 0:
        return np.full(v.shape, 0.5)
    if v.size < _SORTED_LOOKUP_FROM:
        lo = np.searchsorted(table, v, side="left")
        hi = np.searchsorted(table, v, side="right")
        return np.clip((lo + hi) / (2.0 * n), 0.0, 1.0)
    # Many values (a whole score matrix): looked up in sorted order, each binary search starts
    # where the last one ended in cache (3x less CPU for 1M values in a 2M table); same ranks.
    flat = v.ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.shape, dtype=np.float64)
    ranks[order] = np.searchsorted(table, flat[order], side="left") + np.searchsorted(table, flat[order], side="right")
    return np.clip(ranks.reshape(v.shape) / (2.0 * n), 0.0, 1.0)


#: value count from which :func:`percentile_of` sorts the values before the lookups
_SORTED_LOOKUP_FROM = 4096
