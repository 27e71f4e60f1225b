"""NeighbourIndex: exact search is right, batching changes nothing, exclusions, Faiss agrees."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import DimensionMismatchError, ParameterError
from soundalike.neighbours import NeighbourIndex, faiss_available


def brute(X, Q, k, exclude):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    S = Qn @ Xn.T
    out = []
    for r, e in enumerate(exclude):
        s = S[r].copy()
        s[list(e)] = -np.inf
        out.append(np.argsort(-s, kind="stable")[:k])
    return np.array(out)


def test_exact_matches_brute_force_and_batching(rng):
    X = rng.normal(size=(200, 16))
    Q = X[:25]
    ex = [[i] for i in range(25)]
    s1, i1 = NeighbourIndex(X, backend="exact", batch_size=7).search(Q, 5, exclude=ex)
    s2, i2 = NeighbourIndex(X, backend="exact", batch_size=1000).search(Q, 5, exclude=ex)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(i1, brute(X, Q, 5, ex))
    assert np.all(np.diff(s1, axis=1) <= 1e-7)  # best first
    assert not np.any(i1 == np.arange(25)[:, None])  # the query itself is excluded


def test_exclusions_leave_items_out():
    ex = [np.array([0, 1])]  # e.g. the query artist's own tracks
    X = np.eye(5) + 0.1
    _, idx = NeighbourIndex(X, backend="exact").search(X[:1], 4, exclude=ex)
    assert set(idx[0][idx[0] >= 0]).isdisjoint({0, 1})
    assert (idx[0] == -1).sum() == 1  # only three items remain


def test_boolean_mask_and_padding(rng):
    X = rng.normal(size=(4, 3))
    mask = np.zeros((1, 4), bool)
    mask[0, [0, 1]] = True
    s, i = NeighbourIndex(X, backend="exact").search(X[:1], 3, exclude=mask)
    assert i[0, 2] == -1 and np.isnan(s[0, 2])


def test_metrics_l2_and_ip(rng):
    X = rng.normal(size=(50, 4))
    _, i = NeighbourIndex(X, metric="l2", backend="exact").search(X[:3], 1)
    np.testing.assert_array_equal(i[:, 0], [0, 1, 2])
    _, i = NeighbourIndex(X, metric="ip", backend="exact").search(X[:3], 1)
    np.testing.assert_array_equal(i[:, 0], np.argmax(X[:3] @ X.T, axis=1))


def test_errors(rng):
    idx = NeighbourIndex(rng.normal(size=(10, 4)), backend="exact")
    with pytest.raises(DimensionMismatchError, match="3 dims"):
        idx.search(rng.normal(size=(2, 3)), 2)
    with pytest.raises(ParameterError, match="one list per query"):
        idx.search(rng.normal(size=(2, 4)), 2, exclude=[[0]])
    with pytest.raises(ParameterError, match="backend='annoy'"):
        NeighbourIndex(rng.normal(size=(3, 2)), backend="annoy")


@pytest.mark.requires_import("faiss")
def test_faiss_agrees_with_exact(rng):
    X = rng.normal(size=(500, 16)).astype(np.float32)
    Q = X[:20]
    ex = [[i] for i in range(20)]
    _, ie = NeighbourIndex(X, backend="exact").search(Q, 10, exclude=ex)
    _, ifa = NeighbourIndex(X, backend="faiss", ef_search=256).search(Q, 10, exclude=ex)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ie, ifa)])
    assert recall >= 0.95
    assert not np.any(ifa == np.arange(20)[:, None])


def test_auto_uses_exact_for_small_collections(rng):
    assert NeighbourIndex(rng.normal(size=(10, 3))).backend == "exact"
    if not faiss_available():
        with pytest.raises(Exception, match="faiss"):
            NeighbourIndex(rng.normal(size=(10, 3)), backend="faiss")


@pytest.mark.requires_import("faiss")
def test_ivf_index_recall_and_save_load_round_trip(tmp_path):
    """IVF-Flat on clustered data finds the exact top-10 (recall >= 0.95), and a saved index
    reopened over the same vectors answers identically; other vectors are refused."""
    from soundalike.errors import DimensionMismatchError
    from soundalike.neighbours import NeighbourIndex

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 32))
    X = (centres[rng.integers(0, 40, 8000)] + 0.3 * rng.standard_normal((8000, 32))).astype(np.float32)
    Q = (centres[rng.integers(0, 40, 50)] + 0.3 * rng.standard_normal((50, 32))).astype(np.float32)
    exact = NeighbourIndex(X, backend="exact").search(Q, 10)[1]
    ivf = NeighbourIndex(X, backend="faiss", ann="ivf", nprobe=16)
    got = ivf.search(Q, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)])
    assert recall >= 0.95
    path = ivf.save(tmp_path / "library.db.ivf.faiss")
    again = NeighbourIndex.load(path, X)
    assert again.backend == "faiss" and again.ann == "ivf"
    np.testing.assert_array_equal(again.search(Q, 10)[1], got)
    with pytest.raises(DimensionMismatchError, match="rebuild it"):
        NeighbourIndex.load(path, X[:100])
