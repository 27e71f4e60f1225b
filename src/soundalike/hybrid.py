"""The hybrid score: a weighted blend of signals, renormalised over the signals each pair has.

``score(i, j) = sum_s w_s S_s(i, j) / sum_{s present for (i, j)} w_s`` with every signal score
in [0, 1] (see :mod:`soundalike.signals`), so the blend is in [0, 1] too, and each neighbour's
``contributions[s] = w_s S_s(i, j) / sum w`` add up to its score (explanations).

Weights come from a YAML config (``weights:``), the seeds' guess (:data:`SEED_WEIGHTS`), the
hand-set :data:`DEFAULT_WEIGHTS`, or are **learned** by :class:`HybridScorer` from reference
pairs (pairwise logistic regression; see ``experiments/learned_blend.py``).

Config file (YAML)::

    weights: {audio: 0.5, descriptors: 0.1, tags: 0.15, refs: 0.1, graph: 0.15}   # or: seeds
    csv: {refs: refs.csv, graph: collab.csv, tags: tags.csv}   # relative to the YAML file
    signals:                     # per-signal options
      audio: {backend: musicnn-msd, calibration: center}
      graph: {alpha: 0.15, audio_knn: 0}
      tags: {file_tags: true, file_tags_are_labels: true}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ._validation import check_option
from .errors import NotFittedError, ParameterError
from .signals import SIGNALS, SignalContext, SignalScores, compute_signal

__all__ = [
    "SEED_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "HybridConfig",
    "HybridResult",
    "HybridScorer",
    "blend",
    "load_enrichment",
    "file_tags_of",
    "hybrid_scores",
]

#: the seeds' guessed blend (CONTRACTS.md)
SEED_WEIGHTS = {"descriptors": 0.4, "tags": 0.3, "refs": 0.2, "graph": 0.1}
#: hand-set default when no config is given and audio is asked for (a guess too: say so)
DEFAULT_WEIGHTS = {"audio": 0.5, "descriptors": 0.1, "tags": 0.15, "refs": 0.1, "graph": 0.15}


@dataclass
class HybridConfig:
    """Weights, CSV inputs and per-signal options of the hybrid."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    weights_kind: str = "hand"
    csv: dict[str, Path] = field(default_factory=dict)
    signals: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "HybridConfig":
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ParameterError(f"hybrid config {p} does not exist; write a YAML file with 'weights:' and 'csv:'.")
        doc = yaml.safe_load(p.read_text()) or {}
        if not isinstance(doc, dict):
            raise ParameterError(f"hybrid config {p} must be a YAML mapping with 'weights:' and 'csv:'.")
        return cls.from_dict(doc, base=p.parent)

    @classmethod
    def from_dict(cls, doc: dict, *, base: Path | None = None) -> "HybridConfig":
        w = doc.get("weights", "default")
        kind = "hand"
        if w == "seeds":
            w, kind = dict(SEED_WEIGHTS), "seeds"
        elif w in (None, "default"):
            w = dict(DEFAULT_WEIGHTS)
        elif isinstance(w, str):  # a learned-weights JSON written by HybridScorer.save
            scorer = HybridScorer.load(Path(base or ".") / w)
            w, kind = scorer.weights(), "learned"
        if not isinstance(w, dict):
            raise ParameterError(f"weights must be a mapping signal -> weight, 'seeds' or a file; got {w!r}.")
        for name, val in w.items():
            check_option("signal", name, SIGNALS)
            if not isinstance(val, (int, float)) or val < 0:
                raise ParameterError(f"weight of {name} must be a number >= 0, got {val!r}.")
        csv = {k: (Path(base) / v if base is not None and not Path(v).is_absolute() else Path(v))
               for k, v in (doc.get("csv") or {}).items()}
        for k in csv:
            check_option("csv signal", k, ("refs", "graph", "tags"))
        return cls({k: float(v) for k, v in w.items()}, doc.get("weights_kind", kind), csv, dict(doc.get("signals") or {}))


@dataclass
class HybridResult:
    """Blended artist × artist scores with their per-signal parts.

    Attributes
    ----------
    artist_ids : np.ndarray [shape=(n,)]
    score : np.ndarray [shape=(n, n)]   in [0, 1]; NaN where the pair has no signal at all
    contributions : dict[str, np.ndarray [shape=(n, n)]]   add up to ``score``
    signals : dict[str, SignalScores]
    weights : dict[str, float]   as given (before renormalisation)
    weights_kind : str
    """

    artist_ids: np.ndarray
    score: np.ndarray
    contributions: dict[str, np.ndarray]
    signals: dict[str, SignalScores]
    weights: dict[str, float]
    weights_kind: str = "hand"

    @property
    def signals_used(self) -> list[str]:
        return [s for s, v in self.signals.items() if v.coverage > 0 and self.weights.get(s, 0) > 0]

    def coverage(self) -> dict[str, float]:
        return {s: round(float(v.coverage), 4) for s, v in self.signals.items()}

    def neighbours(self, i: int, *, k: int) -> list[int]:
        """Positions of the k best artists for row i (query excluded; unscored pairs last, dropped)."""
        row = np.where(np.arange(len(self.artist_ids)) == i, np.nan, self.score[i])
        order = [j for j in np.argsort(-np.nan_to_num(row, nan=-1.0), kind="stable") if np.isfinite(row[j])]
        return order[:k]


def blend(signals: list[SignalScores], weights: dict[str, float], *, weights_kind: str = "hand") -> HybridResult:
    """Blend signal scores with weights renormalised per pair over the signals present.

    Parameters
    ----------
    signals : list of SignalScores over the same artist ids
    weights : {signal: weight >= 0}; signals without a weight get 0

    Returns
    -------
    HybridResult
    """
    if not signals:
        raise ParameterError("blend needs at least one signal.")
    ids = signals[0].artist_ids
    for s in signals[1:]:
        if not np.array_equal(s.artist_ids, ids):
            raise ParameterError(f"signal {s.name} is over different artists than {signals[0].name}.")
    n = len(ids)
    num = np.zeros((n, n))
    den = np.zeros((n, n))
    parts = {}
    for s in signals:
        w = float(weights.get(s.name, 0.0))
        ok = np.isfinite(s.score)
        parts[s.name] = np.where(ok, w * np.nan_to_num(s.score), 0.0)
        num += parts[s.name]
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(den > 0, num / den, np.nan)
        contributions = {k: np.where(den > 0, v / den, np.nan) for k, v in parts.items()}
    return HybridResult(np.asarray(ids), score, contributions, {s.name: s for s in signals}, dict(weights), weights_kind)


class HybridScorer(BaseEstimator):
    """Learn blend weights from reference pairs: logistic regression on per-signal pair scores.

    ``fit(F, y)``: F [shape=(n_pairs, n_signals)] signal scores of training pairs (NaN =
    missing, imputed with the column mean), y [shape=(n_pairs,)] 1 for a reference pair (same
    artist, a known similar artist), 0 otherwise. Coefficients are clipped at 0 and normalised
    to sum 1, so the learned weights plug into :func:`blend` (a negative weight would reward
    dissimilarity on a signal; we do not allow it).

    ``fit_listwise(mats, labels)``: learning to rank on whole score matrices. The weights are a
    softmax of free parameters ``theta`` (so they stay on the simplex) fitted by minimising a
    listwise softmax cross-entropy (each item's same-label items against all other items, a
    smooth surrogate of mAP) plus ``shrinkage * |theta|^2 / 2``: ``theta = 0`` is equal weights,
    so the penalty shrinks the blend toward equal weights. ``fit_listwise_cv`` chooses the
    shrinkage by inner label-disjoint cross-validation (folds of labels, e.g. artists), so with
    few reference groups the blend stays near equal weights unless the data say otherwise.

    Parameters
    ----------
    signals : tuple of str   column names of F
    C : float   inverse regularisation strength (``fit``)
    balanced : bool   class_weight="balanced" (reference pairs are rare; ``fit``)
    shrinkage : float   penalty toward equal weights (``fit_listwise``); ``inf`` = equal weights
    temperature : float   starting softmax temperature on the [0, 1] scores (``fit_listwise``
        learns it with the weights)
    """

    def __init__(self, *, signals: tuple[str, ...] = ("audio", "descriptors"), C: float = 1.0, balanced: bool = True,
                 shrinkage: float = 1.0, temperature: float = 0.05) -> None:
        self.signals = signals
        self.C = C
        self.balanced = balanced
        self.shrinkage = shrinkage
        self.temperature = temperature

    def fit(self, F: Any, y: Any) -> "HybridScorer":
        from sklearn.linear_model import LogisticRegression

        F = np.asarray(F, dtype=np.float64)
        y = np.asarray(y).astype(int)
        if F.ndim != 2 or F.shape[1] != len(self.signals):
            raise ParameterError(f"F must have shape (n_pairs, {len(self.signals)}) for signals {self.signals}; got {F.shape}.")
        if len(y) != F.shape[0] or len(np.unique(y)) < 2:
            raise ParameterError("y must give one 0/1 label per pair, with both classes present.")
        self.fill_ = np.where(np.isfinite(F).any(axis=0), np.nanmean(np.where(np.isfinite(F), F, np.nan), axis=0), 0.5)
        Fi = np.where(np.isfinite(F), F, self.fill_)
        lr = LogisticRegression(C=self.C, class_weight="balanced" if self.balanced else None, max_iter=1000)
        lr.fit(Fi, y)
        coef = np.clip(lr.coef_.ravel(), 0.0, None)
        self.coef_ = coef / coef.sum() if coef.sum() > 0 else np.full(len(coef), 1.0 / len(coef))
        self.n_features_in_ = F.shape[1]
        return self

    def fit_listwise(self, mats: list[np.ndarray], labels: Any) -> "HybridScorer":
        """Learn simplex weights by a listwise ranking loss, shrunk toward equal weights.

        Parameters
        ----------
        mats : list of np.ndarray [shape=(n, n)]   one score matrix per signal, in ``signals`` order
        labels : array [shape=(n,)]                e.g. the artist of each track

        Minimises ``mean_i mean_{j: y_j = y_i} -log softmax_k(s_ik / T)_j + shrinkage |theta|^2 / 2``
        over ``theta`` and ``T`` (``temperature`` is its start, ``temperature_`` the fitted value)
        with ``w = softmax(theta)``, ``s = sum_s w_s M_s`` and k over every item but i (items
        without another item of their label are not queries).
        """
        from scipy.optimize import minimize

        M, Y = self._check_mats(mats, labels)
        d = M.shape[0]
        lam = float(self.shrinkage)
        tau = float(self.temperature)
        if not tau > 0:
            raise ParameterError(f"temperature must be > 0, got {self.temperature!r}.")
        if lam < 0 or np.isnan(lam):
            raise ParameterError(f"shrinkage must be >= 0 (inf = equal weights), got {self.shrinkage!r}.")
        if not np.isfinite(lam) or d == 1:
            self.coef_ = np.full(d, 1.0 / d)
        else:
            queries = Y.sum(axis=1) > 0
            Yq = Y[queries] / Y[queries].sum(axis=1, keepdims=True)
            Mq = M[:, queries, :]
            off = ~np.eye(M.shape[1], dtype=bool)[queries]
            nq = Yq.shape[0]

            def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
                theta, beta = x[:-1], np.exp(x[-1]) / tau  # beta: the learned inverse temperature
                w = np.exp(theta - theta.max())
                w /= w.sum()
                S = np.tensordot(w, Mq, axes=1)
                Z = np.where(off, beta * S, -np.inf)
                zmax = Z.max(axis=1, keepdims=True)
                E = np.exp(Z - zmax)
                lse = np.log(E.sum(axis=1, keepdims=True)) + zmax
                P = E / E.sum(axis=1, keepdims=True)
                val = float(-(Yq * np.where(off, Z - lse, 0.0)).sum() / nq)
                G = (P - Yq) / nq  # d loss / d z_ik
                gw = beta * np.tensordot(Mq, G, axes=([1, 2], [0, 1]))
                gtheta = w * (gw - w @ gw)
                gb = float((G * np.where(off, beta * S, 0.0)).sum())
                return val + 0.5 * lam * float(theta @ theta), np.r_[gtheta + lam * theta, gb]

            bounds = [(None, None)] * d + [(np.log(1e-3), np.log(1e3))]
            res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 1000})
            theta = res.x[:-1]
            self.temperature_ = float(tau / np.exp(res.x[-1]))
            w = np.exp(theta - theta.max())
            self.coef_ = w / w.sum()
        self.n_features_in_ = d
        return self

    def fit_listwise_cv(self, mats: list[np.ndarray], labels: Any, *,
                        shrinkages: tuple[float, ...] = (0.0, 1e-3, 1e-2, 1e-1, 1.0, float("inf")),
                        n_splits: int = 4, seed: int = 0) -> "HybridScorer":
        """``fit_listwise`` with the shrinkage chosen by inner label-disjoint cross-validation.

        The labels (artists) are split into ``n_splits`` folds (``artist_folds``, ``seed``); for
        each shrinkage the weights are learned on the other folds' items and the held-out items
        query every item with the blend; the shrinkage with the best mean mAP wins (ties: the
        stronger shrinkage, i.e. closer to equal weights), then the weights are refitted on all.

        Sets ``shrinkage`` and ``cv_scores_`` ({shrinkage: inner CV mAP}).
        """
        from .metric_learning import artist_folds
        from .metrics import same_artist_map

        M, _ = self._check_mats(mats, labels)
        labels = np.asarray(labels)
        k = min(n_splits, np.unique(labels).size)
        if k < 2:
            raise ParameterError("fit_listwise_cv needs items of at least 2 labels.")
        folds = artist_folds(labels, n_splits=k, seed=seed)
        scores: dict[float, list[float]] = {float(s): [] for s in shrinkages}
        for test in folds:
            tr = np.flatnonzero(~test)
            sub = [m[np.ix_(tr, tr)] for m in M]
            for s in scores:
                w = self._clone(shrinkage=s).fit_listwise(sub, labels[tr]).coef_
                r = same_artist_map(np.tensordot(w, M, axes=1), labels)
                q = np.asarray(r["query"], dtype=int)
                keep = test[q]
                if keep.any():
                    scores[s].append(float(np.asarray(r["ap"])[keep].mean()))
        mean = {s: float(np.mean(v)) if v else -np.inf for s, v in scores.items()}
        best = max(mean.values())
        self.shrinkage = max(s for s, v in mean.items() if v >= best - 1e-12)
        self.cv_scores_ = mean
        return self.fit_listwise(list(M), labels)

    def _clone(self, **kw: Any) -> "HybridScorer":
        p = self.get_params()
        p.update(kw)
        return type(self)(**p)

    def _check_mats(self, mats: list[np.ndarray], labels: Any) -> tuple[np.ndarray, np.ndarray]:
        if len(mats) != len(self.signals):
            raise ParameterError(f"need {len(self.signals)} matrices (signals {self.signals}), got {len(mats)}.")
        M = np.stack([np.asarray(m, dtype=np.float64) for m in mats])
        labels = np.asarray(labels)
        n = M.shape[1]
        if M.shape[1:] != (n, n) or labels.shape != (n,):
            raise ParameterError(f"matrices must be square (n, n) with one label per row; got {M.shape[1:]} and "
                                 f"{labels.shape} labels.")
        if not np.isfinite(M).all():
            raise ParameterError("score matrices must be finite for ranking fits.")
        Y = (labels[:, None] == labels[None, :]) & ~np.eye(n, dtype=bool)
        if not Y.any():
            raise ParameterError("no two items share a label: nothing to rank.")
        return M, Y.astype(np.float64)

    def weights(self) -> dict[str, float]:
        if not hasattr(self, "coef_"):
            raise NotFittedError("This HybridScorer is not fitted yet; call fit(F, y) on reference pairs first.")
        return {s: float(w) for s, w in zip(self.signals, self.coef_)}

    def save(self, path: str | Path) -> Path:
        p = Path(path).with_suffix(".json")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"format": "soundalike-hybrid-weights", "version": 1, "signals": list(self.signals),
                                 "weights": self.weights(), "params": {"C": self.C, "balanced": self.balanced,
                                            "shrinkage": _json_float(self.shrinkage),
                                            "temperature": self.temperature}}, indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "HybridScorer":
        p = Path(path)
        if not p.is_file():
            raise ParameterError(f"learned weights file {p} does not exist; run experiments/learned_blend.py --save {p}.")
        doc = json.loads(p.read_text())
        if doc.get("format") != "soundalike-hybrid-weights":
            raise ParameterError(f"{p} is not a soundalike learned-weights file.")
        params = dict(doc.get("params", {}))
        if isinstance(params.get("shrinkage"), str):  # "inf": JSON has no infinity
            params["shrinkage"] = float(params["shrinkage"])
        est = cls(signals=tuple(doc["signals"]), **params)
        est.coef_ = np.array([doc["weights"][s] for s in est.signals], dtype=np.float64)
        est.n_features_in_ = len(est.signals)
        return est


def _json_float(x: float) -> float | str:
    x = float(x)
    return x if np.isfinite(x) else str(x)


def load_enrichment(store: Any) -> dict:
    """``soundalike.enrich.signal_inputs(store)``: the enrichment cache's tags, references and graph."""
    from .enrich import signal_inputs

    return signal_inputs(store)


def file_tags_of(store: Any) -> dict[int, dict[str, float]]:
    """Per artist, the count of each file genre tag over its tracks (``tracks.genres``)."""
    tags: dict[int, dict[str, float]] = {}
    for t in store.tracks():
        bag = tags.setdefault(int(t.artist_id), {})
        for g in t.genres:
            bag[g] = bag.get(g, 0.0) + 1.0
    return {a: b for a, b in tags.items() if b}


def hybrid_scores(
    store: Any, *, signals: list[str], config: HybridConfig | None = None, backend: str | None = None,
    calibration: str = "center", profile: str = "centroid", layer: int | None = None, engine: Any = None,
) -> HybridResult:
    """Compute the asked signals over every artist of the library and blend them.

    Parameters
    ----------
    store : Store
    signals : list of signal names (subset of SIGNALS)
    config : HybridConfig, optional   weights, CSV inputs, per-signal options
    backend, calibration, profile, layer : options of the ``audio`` signal
    engine : soundalike.query.Engine, optional   whose calibrated spaces the audio signals read
    """
    for s in signals:
        check_option("signal", s, SIGNALS)
    cfg = config or HybridConfig()
    artists = store.artists()
    ids = np.array(sorted(a.artist_id for a in artists), dtype=int)
    names = {a.artist_id: a.name for a in artists}
    tag_opts = cfg.signals.get("tags", {})
    base = dict(artist_ids=ids, names=names, store=store, engine=engine, backend=backend, calibration=calibration,
                profile=profile, layer=layer, csv=cfg.csv, enrichment=load_enrichment(store),
                file_tags=file_tags_of(store) if tag_opts.get("file_tags", True) else None,
                file_tags_are_labels=bool(tag_opts.get("file_tags_are_labels", True)))
    results = [compute_signal(s, SignalContext(**base, options=dict(cfg.signals.get(s, {})))) for s in signals]
    weights = {s: cfg.weights.get(s, 0.0) for s in signals}
    if sum(weights.values()) <= 0:
        raise ParameterError(f"every asked signal ({', '.join(signals)}) has weight 0 in the config; give them weights.")
    return blend(results, weights, weights_kind=cfg.weights_kind)
