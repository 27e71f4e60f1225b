"""Genre classifiers on cached embeddings, evaluated without the artist leak.

A track's genre is easy to "predict" when tracks of the same artist sit on both sides of a
split (the classifier learns the artist, not the genre). So the headline figures use
**artist-grouped** cross-validation (5 folds, seed 0, no artist on both sides); a plain
stratified split is reported beside it only to show the size of the leak. Genres with fewer
than two artists cannot be evaluated that way: they are reported apart with their support and
left out of the grouped scores (CONTRACTS.md).

Models are saved with skops' safe format (no pickle); loading refuses any type outside an
allow-list of scikit-learn/NumPy types and :class:`GenreClassifier`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._validation import check_embeddings, check_option
from .errors import NotFittedError, ParameterError

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as _SkNotFittedError

__all__ = [
    "ESTIMATORS",
    "GenreClassifier",
    "GenreModel",
    "majority_genre",
    "artist_genres",
    "labels_from_folders",
    "split_eligible",
    "classification_scores",
    "cross_validate",
    "evaluate_genres",
    "save_model",
    "load_model",
]

ESTIMATORS = ("logreg", "svm", "mlp")


class _NotFitted(NotFittedError, _SkNotFittedError):
    """Ours (a SoundalikeError) and scikit-learn's, so both kinds of caller recognise it."""
AUDIO_EXTS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif", ".au", ".wma"}
FORMAT = "soundalike-genre-model"
FORMAT_VERSION = 1


class GenreClassifier(ClassifierMixin, BaseEstimator):
    """A scaled linear or small neural classifier of embedding vectors.

    Parameters
    ----------
    estimator : {"logreg", "svm", "mlp"}
        Logistic regression, linear SVM (probabilities by a softmax of its margins), or an
        MLP with one hidden layer; each after a ``StandardScaler``.
    C : float > 0   inverse regularisation (logreg, svm)
    hidden : int > 0   hidden units (mlp)
    alpha : float >= 0   L2 penalty (mlp)
    max_iter : int > 0
    random_state : int

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    classes_ : np.ndarray [shape=(n_classes,)]
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (20, 4)), rng.normal(3, 1, (20, 4))]
    >>> y = np.array(["a"] * 20 + ["b"] * 20)
    >>> GenreClassifier().fit(X, y).score(X, y) > 0.9
    True
    """

    def __init__(self, *, estimator: str = "logreg", C: float = 1.0, hidden: int = 32, alpha: float = 1.0,
                 max_iter: int = 2000, random_state: int = 0) -> None:
        self.estimator = estimator
        self.C = C
        self.hidden = hidden
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state

    def _make(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        check_option("estimator", self.estimator, ESTIMATORS)
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ParameterError(f"C must be a positive number, got {self.C!r}.")
        if self.estimator == "logreg":
            clf = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        elif self.estimator == "svm":
            clf = LinearSVC(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        else:
            # lbfgs: small libraries (tens to thousands of tracks) converge far faster than with adam.
            clf = MLPClassifier(hidden_layer_sizes=(int(self.hidden),), alpha=self.alpha, max_iter=min(self.max_iter, 200), solver="lbfgs",
                                random_state=self.random_state, early_stopping=False)
        return make_pipeline(StandardScaler(), clf)

    def fit(self, X, y) -> "GenreClassifier":
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        pipe = self._make()
        if np.unique(y).size < 2:
            raise ParameterError(f"Training needs at least two genres, but only one class is present: {np.unique(y).tolist()}.")
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Small libraries converge slowly; the scores, not a warning, say whether it worked.
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X, y)
        self.pipeline_ = pipe
        self.classes_ = pipe.classes_
        self.n_iter_ = int(np.max(getattr(pipe[-1], "n_iter_", 0)))
        return self

    def _check(self, X):
        from sklearn.utils.validation import validate_data

        if not hasattr(self, "pipeline_"):
            raise _NotFitted("This GenreClassifier is not fitted yet; call fit(X, y) first.")
        return validate_data(self, X, reset=False)

    def predict(self, X) -> np.ndarray:
        """Predicted genre of each row. Shape (n_samples,)."""
        X = self._check(X)
        return self.pipeline_.predict(X)

    def decision_function(self, X) -> np.ndarray:
        X = self._check(X)
        return self.pipeline_.decision_function(X) if self.estimator != "mlp" else np.log(self.predict_proba(X) + 1e-12)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order. Shape (n_samples, n_classes).

        The linear SVM has no probabilities; a softmax of its margins stands in (fine for
        averaging in an ensemble, not calibrated).
        """
        X = self._check(X)
        if self.estimator != "svm":
            return self.pipeline_.predict_proba(X)
        d = self.pipeline_.decision_function(X)
        if d.ndim == 1:  # binary: margin of classes_[1]
            d = np.c_[-d, d]
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@dataclass
class GenreModel:
    """A trained genre model: one classifier per backend, probabilities averaged (late fusion).

    Attributes
    ----------
    members : dict[str, GenreClassifier]   backend name -> fitted classifier
    model_keys : dict[str, str]   backend name -> store model_key its features came from
    meta : dict   estimator, label source, trained_at, n_tracks, set-aside genres ...
    """

    members: dict[str, GenreClassifier]
    model_keys: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def classes_(self) -> np.ndarray:
        return next(iter(self.members.values())).classes_

    @property
    def name(self) -> str:
        return "+".join(self.members)

    def predict_proba(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Mean class probabilities over members. `features[backend]` has shape (n, dim)."""
        missing = [b for b in self.members if b not in features]
        if missing:
            raise ParameterError(f"No features for backend(s) {', '.join(missing)}; this model needs "
                                 f"{', '.join(self.members)}. Embed the tracks with them first.")
        return np.mean([clf.predict_proba(features[b]) for b, clf in self.members.items()], axis=0)

    def predict(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]


# --------------------------------------------------------------------------- labels


def majority_genre(genre_lists: Iterable[Sequence[str]]) -> str | None:
    """Most frequent genre over tracks (ties: alphabetical); None when no track has one."""
    counts = Counter(g for gs in genre_lists for g in gs if g)
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def artist_genres(tracks: Iterable) -> dict[int, str | None]:
    """Artist id -> its genre (CONTRACTS.md: the most frequent track genre, ties alphabetical)."""
    per: dict[int, list] = {}
    for t in tracks:
        per.setdefault(t.artist_id, []).append(t.genres)
    return {a: majority_genre(gs) for a, gs in per.items()}


def labels_from_folders(root: str | os.PathLike) -> dict[str, str]:
    """Genre labels from a GTZAN-style layout ``root/<genre>/<file>``.

    Returns
    -------
    dict: absolute resolved file path -> genre (the folder name). Files deeper than one folder
    take the first folder under `root` as genre.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ParameterError(f"Label folder {root} does not exist; give a folder laid out as <genre>/<file>.")
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_EXTS:
            rel = p.relative_to(root)
            if len(rel.parts) >= 2:
                out[str(p.resolve())] = rel.parts[0]
    if not out:
        raise ParameterError(f"No audio files found under {root}/<genre>/; expected a GTZAN-style layout.")
    return out


def split_eligible(y: Sequence[str], groups: Sequence, *, min_groups: int = 2) -> tuple[np.ndarray, dict]:
    """Which samples can enter artist-grouped evaluation.

    Returns
    -------
    keep : np.ndarray of bool [shape=(n,)]   samples whose genre has >= `min_groups` artists
    set_aside : dict genre -> {"support": n_tracks, "n_artists": m, "artists": [...]}
    """
    y, g = np.asarray(y, dtype=object), np.asarray(groups, dtype=object)
    artists_of: dict[str, set] = {}
    for yi, gi in zip(y, g):
        artists_of.setdefault(yi, set()).add(gi)
    small = {c for c, a in artists_of.items() if len(a) < min_groups}
    keep = np.array([yi not in small for yi in y], dtype=bool)
    aside = {c: {"support": int((y == c).sum()), "n_artists": len(artists_of[c]),
                 "artists": sorted(str(a) for a in artists_of[c])} for c in sorted(small)}
    return keep, aside


# --------------------------------------------------------------------------- scores


def classification_scores(y_true: Sequence, y_pred: Sequence, *, labels: Sequence | None = None) -> dict:
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix.

    ``chance`` is the majority-class share (what always answering the commonest genre scores).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = sorted(set(y_true.tolist())) if labels is None else list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    counts = Counter(y_true.tolist())
    return {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p.mean()), "macro_recall": float(r.mean()), "macro_f1": float(f.mean()),
        "chance": float(max(counts.values()) / y_true.size) if y_true.size else float("nan"),
        "labels": labels,
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(labels)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _splits(y, groups, scheme: str, n_splits: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if scheme == "grouped":
        # sklearn refuses more folds than artists, or than the largest class has members
        n = max(2, min(n_splits, len(set(groups)), max(Counter(y).values())))
        return list(StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))
    smallest = min(Counter(y).values())
    n = max(2, min(n_splits, smallest))
    return list(StratifiedKFold(n_splits=n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def cross_validate(
    features: dict[str, np.ndarray], y: Sequence[str], groups: Sequence, *, estimator: str = "logreg",
    scheme: str = "grouped", n_splits: int = 5, seed: int = 0, ensemble: bool = True, **params,
) -> dict:
    """Out-of-fold predictions and scores for each backend (and their ensemble).

    Parameters
    ----------
    features : dict backend -> np.ndarray [shape=(n, dim_b)]   rows aligned across backends
    y : [n] genre of each track;  groups : [n] artist of each track
    estimator : {"logreg", "svm", "mlp"}
    scheme : {"grouped", "stratified"}   grouped = no artist on both sides; stratified = leaky
    n_splits, seed : 5 and 0 by default (CONTRACTS.md)

    Returns
    -------
    dict: ``{"scheme", "estimator", "n_splits", "results": {name: scores + "fold_accuracy"}}``
    where ``name`` is a backend or the ``+``-joined ensemble.
    """
    check_option("scheme", scheme, ("grouped", "stratified"))
    check_option("estimator", estimator, ESTIMATORS)
    y = np.asarray(y, dtype=object).astype(str)
    groups = np.asarray(groups)
    for b, X in features.items():
        X = check_embeddings(X, name=f"{b} features")
        if X.shape[0] != y.size:
            raise ParameterError(f"{b} features have {X.shape[0]} rows but there are {y.size} labels.")
    labels = sorted(set(y.tolist()))
    splits = _splits(y, groups, scheme, n_splits, seed)
    proba = {b: np.zeros((y.size, len(labels))) for b in features}
    for tr, te in splits:
        for b, X in features.items():
            clf = GenreClassifier(estimator=estimator, random_state=seed, **params).fit(X[tr], y[tr])
            cols = [labels.index(c) for c in clf.classes_]
            proba[b][np.ix_(te, cols)] = clf.predict_proba(X[te])
    names = list(features)
    if ensemble and len(names) > 1:
        proba["+".join(names)] = np.mean([proba[b] for b in names], axis=0)
    results = {}
    for name, P in proba.items():
        pred = np.asarray(labels, dtype=object)[P.argmax(axis=1)]
        sc = classification_scores(y, pred, labels=labels)
        sc["fold_accuracy"] = [float((pred[te] == y[te]).mean()) for _, te in splits]
        results[name] = sc
    return {"scheme": scheme, "estimator": estimator, "n_splits": len(splits), "seed": seed, "results": results}


def evaluate_genres(
    features: dict[str, np.ndarray], y: Sequence[str], groups: Sequence, *, estimators: Sequence[str] = ("logreg",),
    n_splits: int = 5, seed: int = 0, ensemble: bool = True,
) -> dict:
    """Grouped CV on the eligible genres, with the leaky stratified split beside it.

    Both schemes use the same eligible tracks (genres with >= 2 artists), so their
    difference is the artist leak alone.
    """
    keep, aside = split_eligible(y, groups)
    y = np.asarray(y, dtype=object)
    if len(set(y[keep].tolist())) < 2:
        raise ParameterError("Fewer than two genres have two or more artists; artist-grouped evaluation is impossible "
                             f"(set apart: {', '.join(aside) or 'none'}).")
    feats = {b: np.asarray(X)[keep] for b, X in features.items()}
    out = {"n_tracks": int(keep.sum()), "n_artists": int(len(set(np.asarray(groups)[keep].tolist()))),
           "genres": sorted(set(y[keep].tolist())), "set_aside": aside, "runs": []}
    for est in estimators:
        for scheme in ("grouped", "stratified"):
            out["runs"].append(cross_validate(feats, y[keep], np.asarray(groups)[keep], estimator=est, scheme=scheme,
                                              n_splits=n_splits, seed=seed, ensemble=ensemble))
    return out


# --------------------------------------------------------------------------- persistence


def _trusted(name: str) -> bool:
    # Our estimator and scikit-learn classes only; no functions (builtins.eval, numpy.load ...) and
    # no FunctionTransformer, which would call whatever function it carries.
    return name == "soundalike.classify.GenreClassifier" or (
        name.startswith("sklearn.") and "FunctionTransformer" not in name)


def save_model(model: GenreModel, path: str | os.PathLike) -> Path:
    """Write a :class:`GenreModel` with skops' safe format (never pickle)."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "meta_json": json.dumps(model.meta),
           "model_keys_json": json.dumps(model.model_keys), "members": dict(model.members)}
    sio.dump(doc, path)
    return path


def load_model(path: str | os.PathLike) -> GenreModel:
    """Read a model written by :func:`save_model`; refuses any type outside the allow-list."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"Model file {path} does not exist; train one with `soundalike classify train --out {path}`.")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors on non-skops files
        raise ParameterError(f"{path} is not a soundalike genre model (skops file): {exc}") from None
    bad = [t for t in untrusted if not _trusted(t)]
    if bad:
        raise ParameterError(f"{path} contains types outside the allow-list ({', '.join(bad)}); refusing to load it.")
    doc = sio.load(path, trusted=untrusted)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("members"), dict):
        raise ParameterError(f"{path} is not a soundalike genre model (format {doc.get('format') if isinstance(doc, dict) else None!r}).")
    return GenreModel(members=dict(doc["members"]), model_keys=json.loads(doc["model_keys_json"]),
                      meta=json.loads(doc["meta_json"]))
