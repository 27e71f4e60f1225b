"""A learned linear metric: project track vectors so that tracks of one artist come together.

:class:`LinearMetric` learns the projection from artist labels (shrinkage LDA, or NCA), and
:func:`cross_validate_metric` measures it honestly: 5 folds **by artist** (seed 0), the
projection learned on the training artists only, same-artist retrieval measured for the
held-out artists' tracks (queries) against every track of the library. Use the metric only
where it beats the unprojected vectors on that validation (:func:`choose_metric`).

Saved like the calibrators: JSON + ``.npz`` (``allow_pickle=False``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._validation import check_embeddings, check_option
from .calibration import Centerer
from .errors import DimensionMismatchError, NotFittedError, ParameterError

__all__ = ["LinearMetric", "artist_folds", "cross_validate_metric", "choose_metric"]


class LinearMetric(TransformerMixin, BaseEstimator):
    """Linear projection learned from artist labels.

    Parameters
    ----------
    method : {"lda", "nca"}
        ``lda``: shrinkage linear discriminant analysis (eigen solver, Ledoit-Wolf shrinkage);
        ``nca``: neighbourhood components analysis (slower, iterative).
    n_components : int, optional   default: min(n_artists - 1, d) for LDA, min(32, d) for NCA

    Attributes
    ----------
    mean_ : np.ndarray [shape=(d,)]
    components_ : np.ndarray [shape=(d, n_components)]   ``transform(X) = (l2(X) - mean_) @ components_``
    """

    def __init__(self, *, method: str = "lda", n_components: int | None = None) -> None:
        self.method = method
        self.n_components = n_components

    def fit(self, X: Any, y: Any) -> "LinearMetric":
        check_option("method", self.method, ("lda", "nca"))
        X = check_embeddings(X, name="X").astype(np.float64)
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ParameterError(f"y has {y.shape[0]} labels for {X.shape[0]} rows.")
        classes = np.unique(y)
        if classes.size < 2:
            raise ParameterError("a learned metric needs tracks of at least 2 artists.")
        c = Centerer().fit(X)
        Z = c.transform(X)
        if self.method == "lda":
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            k = self.n_components or min(classes.size - 1, X.shape[1])
            k = min(k, classes.size - 1, X.shape[1])
            lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=k).fit(Z, y)
            W = lda.scalings_[:, :k]
        else:
            from sklearn.neighbors import NeighborhoodComponentsAnalysis

            k = min(self.n_components or 32, X.shape[1])
            W = NeighborhoodComponentsAnalysis(n_components=k, random_state=0, max_iter=100).fit(Z, y).components_.T
        self.mean_ = c.mean_
        self.components_ = np.asarray(W, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise NotFittedError("This LinearMetric is not fitted yet; call fit(X, artist_labels) first.")
        X = check_embeddings(X, name="X").astype(np.float64)
        if X.shape[1] != self.n_features_in_:
            raise DimensionMismatchError(f"X has {X.shape[1]} features, but this LinearMetric was fitted on "
                                         f"{self.n_features_in_}; use the same backend and layer.")
        n = np.linalg.norm(X, axis=1, keepdims=True)
        return (X / np.where(n > 0, n, 1.0) - self.mean_) @ self.components_

    def save(self, path: str | Path, *, model_key: str | None = None) -> Path:
        base = Path(path).with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        np.savez(base.with_suffix(".npz"), mean_=self.mean_, components_=self.components_)
        js = base.with_suffix(".json")
        js.write_text(json.dumps({"format": "soundalike-linear-metric", "version": 1, "params": self.get_params(),
                                  "model_key": model_key, "n_features_in_": self.n_features_in_}, indent=2))
        return js

    @classmethod
    def load(cls, path: str | Path) -> "LinearMetric":
        base = Path(path).with_suffix("")
        meta = json.loads(base.with_suffix(".json").read_text())
        if meta.get("format") != "soundalike-linear-metric":
            raise ParameterError(f"{base}.json is not a soundalike linear-metric file.")
        est = cls(**meta["params"])
        with np.load(base.with_suffix(".npz"), allow_pickle=False) as d:
            est.mean_, est.components_ = d["mean_"], d["components_"]
        est.n_features_in_ = int(meta["n_features_in_"])
        return est


def artist_folds(labels: Any, *, n_splits: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Boolean test masks of a K-fold split **by artist** (CONTRACTS.md: 5 folds, seed 0)."""
    labels = np.asarray(labels)
    uniq = np.unique(labels)
    if uniq.size < n_splits:
        raise ParameterError(f"{uniq.size} artists cannot be split into {n_splits} artist folds.")
    perm = np.random.default_rng(seed).permutation(uniq)
    return [np.isin(labels, part) for part in np.array_split(perm, n_splits)]


def _fold_ap(Z: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    from .metrics import same_artist_map
    from .similarity import cosine_matrix

    r = same_artist_map(cosine_matrix(Z), labels)
    q = np.asarray(r["query"], dtype=int)
    keep = test[q]
    return np.asarray(r["ap"])[keep], q[keep]


def cross_validate_metric(X: Any, labels: Any, *, method: str = "lda", n_splits: int = 5, seed: int = 0,
                          n_components: int | None = None) -> dict:
    """Artist-disjoint CV of the learned metric against centred cosine on the same folds.

    Returns
    -------
    dict: ``folds`` (per fold ``{"metric", "baseline"}`` mAP over that fold's queries),
    ``mean_metric``, ``mean_baseline``, and per query ``ap_metric``, ``ap_baseline``, ``query``.
    """
    X = check_embeddings(X).astype(np.float64)
    labels = np.asarray(labels)
    folds, ap_m, ap_b, qs = [], [], [], []
    for test in artist_folds(labels, n_splits=n_splits, seed=seed):
        train = ~test
        est = LinearMetric(method=method, n_components=n_components).fit(X[train], labels[train])
        am, q = _fold_ap(est.transform(X), labels, test)
        base = Centerer().fit(X[train]).transform(X)
        ab, _ = _fold_ap(base, labels, test)
        folds.append({"metric": float(am.mean()), "baseline": float(ab.mean()), "n_queries": int(len(q))})
        ap_m.append(am)
        ap_b.append(ab)
        qs.append(q)
    return {"method": method, "folds": folds, "mean_metric": float(np.mean([f["metric"] for f in folds])),
            "mean_baseline": float(np.mean([f["baseline"] for f in folds])),
            "ap_metric": np.concatenate(ap_m), "ap_baseline": np.concatenate(ap_b), "query": np.concatenate(qs)}


def choose_metric(X: Any, labels: Any, **kw: Any) -> tuple[LinearMetric | None, dict]:
    """Fit the metric on the whole library only if it wins on artist-fold validation."""
    cv = cross_validate_metric(X, labels, **kw)
    if cv["mean_metric"] > cv["mean_baseline"]:
        return LinearMetric(method=kw.get("method", "lda"), n_components=kw.get("n_components")).fit(X, labels), cv
    return None, cv
