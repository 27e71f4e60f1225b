"""Calibrators: known hub, known cone, [0, 1] scores, fit/transform contract, save/load without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.calibration import (CSLS, Centerer, LocalScaling, MutualProximity, Whitener,
                                    ZScorer)
from soundalike.errors import DimensionMismatchError, NotFittedError, ParameterError
from soundalike.metrics import hubness
from soundalike.similarity import cosine_matrix


def hub_data(rng, n=60, d=300):
    """Random directions plus one vector close to all of them (their normalised mean)."""
    X = rng.normal(size=(n, d))
    hub = X.mean(axis=0, keepdims=True)
    return np.vstack([X, hub]), n  # the hub is the last row


def cone_data(rng, n_per=10, d=16):
    """Three tight clusters inside a narrow cone: a large shared offset."""
    centres = rng.normal(size=(3, d))
    X = np.vstack([c + 0.3 * rng.normal(size=(n_per, d)) for c in centres]) + 40.0
    return X, np.repeat([0, 1, 2], n_per)


def k_occ(S, i, k=5):
    n = S.shape[0]
    c = 0
    for r in range(n):
        if r == i:
            continue
        order = [j for j in np.argsort(-S[r], kind="stable") if j != r][:k]
        c += i in order
    return c


@pytest.mark.parametrize("est", [MutualProximity(method="empirical"), MutualProximity(method="gaussian"),
                                 LocalScaling(k=5), CSLS(k=5)])
def test_neighbourhood_calibrators_demote_a_known_hub(rng, est):
    X, h = hub_data(rng)
    S = cosine_matrix(X)
    before = k_occ(S, h)
    assert before >= 40  # the constructed hub is in most top-5 lists
    C = est.fit_transform(S)
    assert k_occ(C, h) < 0.75 * before
    assert hubness(C, k=5)["max_k_occurrence"] < hubness(S, k=5)["max_k_occurrence"]


def test_mutual_proximity_is_a_probability(rng):
    X, _ = hub_data(rng, n=20)
    S = cosine_matrix(X)
    for method in ("empirical", "gaussian"):
        C = MutualProximity(method=method).fit_transform(S)
        assert C.min() >= 0.0 and C.max() <= 1.0
        np.testing.assert_allclose(np.diag(C), 1.0)
    # empirical MP of the pair farthest apart is 0: no item is farther from both
    C = MutualProximity(method="empirical").fit_transform(S)
    iu = np.triu_indices(len(S), 1)
    worst = np.argmin(S[iu])
    assert C[iu][worst] == 0.0


def test_centerer_opens_a_known_cone(rng):
    X, y = cone_data(rng)
    raw = cosine_matrix(X)
    assert raw[np.triu_indices(len(X), 1)].min() > 0.9  # everything looks similar
    C = cosine_matrix(Centerer().fit(X).transform(X))
    iu = np.triu_indices(len(X), 1)
    same = (y[:, None] == y[None, :])[iu]
    assert C[iu][same].mean() > 0.5 and C[iu][~same].mean() < 0.0
    assert C[iu].max() - C[iu].min() > 5 * (raw[iu].max() - raw[iu].min())


def test_zscore_equalises_feature_scales(rng):
    X = np.c_[rng.normal(120, 20, 50), rng.normal(-14, 2, 50), rng.normal(0.1, 0.01, 50)]
    Z = ZScorer().fit(X).transform(X)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9)


def test_whitener_decorrelates(rng):
    A = rng.normal(size=(500, 3))
    X = A @ np.array([[1, 0.9, 0], [0, 0.5, 0], [0, 0, 2.0]])
    W = Whitener(shrinkage=0.0).fit(X).transform(X)
    np.testing.assert_allclose(np.cov(W, rowvar=False), np.eye(3), atol=0.05)
    with pytest.raises(ParameterError, match="shrinkage"):
        Whitener(shrinkage=2.0).fit(X)


def test_percentile_maps_to_unit_interval():
    from soundalike.calibration import percentile_of

    out = percentile_of(np.array([0.1, 0.2, 0.3, 0.4]), [0.0, 0.1, 0.25, 1.0])
    assert out[0] == 0.0 and out[-1] == 1.0
    assert np.all(np.diff(out) >= 0)


@pytest.mark.parametrize("est", [Centerer(), ZScorer(), Whitener()])
def test_vector_contract(rng, est):
    X = rng.normal(size=(30, 6))
    with pytest.raises(NotFittedError):
        est.transform(X)
    assert est.fit(X) is est
    assert est.n_features_in_ == 6
    assert est.transform(X).shape == (30, 6)
    with pytest.raises(DimensionMismatchError, match="5 features"):
        est.transform(X[:, :5])
    # get_params / clone work (sklearn contract)
    from sklearn.base import clone

    assert type(clone(est)) is type(est)


@pytest.mark.parametrize("est", [MutualProximity(), LocalScaling(), CSLS()])
def test_matrix_contract(rng, est):
    S = cosine_matrix(rng.normal(size=(12, 5)))
    with pytest.raises(NotFittedError):
        est.transform(S)
    with pytest.raises(ParameterError, match="square"):
        est.fit(S[:5])
    est.fit(S)
    with pytest.raises(DimensionMismatchError, match="12 library items"):
        est.transform(S[:, :11])
    # a query outside the library scores against all library items
    q = cosine_matrix(rng.normal(size=(2, 5)), rng.normal(size=(12, 5)))
    assert est.transform(q).shape == (2, 12)


