"""Learned linear metric: helps where labels carry structure; artist-disjoint folds; save/load."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import DimensionMismatchError, NotFittedError, ParameterError
from soundalike.metric_learning import LinearMetric, artist_folds, choose_metric, cross_validate_metric


def data(rng, n_art=15, per=5, d=30):
    # artist identity lives in 3 dims drowned by 27 noisy ones with larger variance
    C = np.zeros((n_art, d))
    C[:, :3] = rng.normal(size=(n_art, 3)) * 1.5
    X = np.repeat(C, per, axis=0)
    X[:, 3:] += 3.0 * rng.normal(size=(n_art * per, d - 3))
    X[:, :3] += 0.2 * rng.normal(size=(n_art * per, 3))
    return X + 1.0, np.repeat(np.arange(n_art), per)


def test_artist_folds_are_disjoint_and_cover(rng):
    _, y = data(rng)
    folds = artist_folds(y, n_splits=5, seed=0)
    assert sum(f.sum() for f in folds) == len(y)
    for f in folds:
        assert set(y[f]).isdisjoint(set(y[~f]))
    again = artist_folds(y, n_splits=5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    with pytest.raises(ParameterError, match="cannot be split"):
        artist_folds(np.array([1, 1, 2]), n_splits=5)


def test_lda_wins_on_held_out_artists_when_structure_is_linear(rng):
    X, y = data(rng)
    cv = cross_validate_metric(X, y, method="lda")
    assert cv["mean_metric"] > cv["mean_baseline"] + 0.1
    est, _ = choose_metric(X, y, method="lda")
    assert est is not None


def test_not_used_where_it_does_not_win(rng):
    X = rng.normal(size=(60, 10))
    y = np.repeat(np.arange(12), 5)  # labels unrelated to X
    est, cv = choose_metric(X, y)
    assert (est is None) == (cv["mean_metric"] <= cv["mean_baseline"])


def test_contract_and_roundtrip(rng, tmp_path):
    X, y = data(rng)
    est = LinearMetric(method="lda")
    with pytest.raises(NotFittedError):
        est.transform(X)
    Z = est.fit(X, y).transform(X)
    assert Z.shape == (len(X), 14)
    with pytest.raises(DimensionMismatchError, match="29 features"):
        est.transform(X[:, :29])
    back = LinearMetric.load(est.save(tmp_path / "lda"))
    np.testing.assert_allclose(back.transform(X), Z)
    with pytest.raises(ParameterError, match="method='pca'"):
        LinearMetric(method="pca").fit(X, y)
