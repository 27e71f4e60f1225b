"""Ensembles: the backend (weighted L2 blocks) and combine_blocks (library z-scores)."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.backends.ensemble import Ensemble, combine_blocks
from soundalike.backends.registry import load_backend
from soundalike.errors import DimensionMismatchError, ParameterError

pytestmark = pytest.mark.usefixtures("isolated_weights")


def _cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# --- combine_blocks -------------------------------------------------------------------------------
def test_combine_blocks_standardises_each_block(rng):
    a = rng.normal(3.0, 10.0, size=(40, 16))
    b = rng.normal(-1.0, 0.01, size=(40, 4))
    b[:, 0] = 7.0  # a constant dimension carries nothing
    X = combine_blocks([a, b], weights=[3, 1])
    assert X.shape == (40, 20) and X.dtype == np.float32
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-6)
    assert np.all(X[:, 16] == 0)
    np.testing.assert_allclose(X[:, :16].var(axis=0).sum(), 0.75, rtol=1e-5)
    np.testing.assert_allclose(X[:, 17:].var(axis=0).sum(), 0.25 * 3 / 4, rtol=1e-5)
    z = (a - a.mean(0)) / a.std(0) / np.sqrt(16) * np.sqrt(0.75)
    np.testing.assert_allclose(X[:, :16], z, rtol=1e-5, atol=1e-6)


def test_combine_blocks_without_standardising_is_weighted_cosine(rng):
    a1, a2 = rng.normal(size=(2, 10, 8))
    b1, b2 = rng.normal(size=(2, 10, 3))
    X1 = combine_blocks([a1, b1], weights=[0.2, 0.8], standardize=False)
    X2 = combine_blocks([a2, b2], weights=[0.2, 0.8], standardize=False)
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose((X1 * X2).sum(1), 0.2 * _cos(a1, a2) + 0.8 * _cos(b1, b2), rtol=1e-5, atol=1e-6)


def test_combine_blocks_errors(rng):
    with pytest.raises(DimensionMismatchError, match="block 1 has 5 rows"):
        combine_blocks([rng.normal(size=(4, 2)), rng.normal(size=(5, 2))])
    with pytest.raises(ParameterError, match="one weight per block"):
        combine_blocks([rng.normal(size=(4, 2))], weights=[1, 2])
    with pytest.raises(ParameterError, match="non-negative"):
        combine_blocks([rng.normal(size=(4, 2))] * 2, weights=[1, -1])
    with pytest.raises(ParameterError, match="NaN"):
        combine_blocks([np.full((4, 2), np.nan)])
    with pytest.raises(ParameterError, match="at least 2 items"):
        combine_blocks([rng.normal(size=(1, 2))])
    with pytest.raises(ParameterError, match="at least one"):
        combine_blocks([])


# --- Ensemble backend -----------------------------------------------------------------------------
@pytest.fixture
def _torch(gen):
    gen.need("torch", "transformers", "soxr")


def test_ensemble_resamples_and_weights_member_blocks(_torch, gen):
    import soxr

    ens = load_backend("vggish+mert-v1-95m", tiny=True)
    assert isinstance(ens, Ensemble) and ens.name == "vggish+mert-v1-95m"
    assert ens.sample_rate == 24000 and ens.embedding_size == 128 + 32 and ens.weights_kind == "random"
    x = gen.clips(24000, 2.0, n=2)
    e = ens.embed_layers(x)
    assert e.shape == (2, 1, 160) and e.dtype == np.float32
    vg, mert = ens.members
    v = vg.embed_layers(np.ascontiguousarray(soxr.resample(x.T, 24000, 16000).T))[:, 0]
    m = mert.embed_layers(x)[:, mert.default_layer]
    np.testing.assert_allclose(e[:, 0, :128], v / np.linalg.norm(v, axis=1, keepdims=True) * np.sqrt(0.5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e[:, 0, 128:], m / np.linalg.norm(m, axis=1, keepdims=True) * np.sqrt(0.5), rtol=1e-5, atol=1e-6)
    # the ensemble cosine is the weighted mean of member cosines
    w = Ensemble(["vggish", "mert-v1-95m"], weights=[1, 3], tiny=True)
    ew = w.embed_layers(x)[:, 0]
    np.testing.assert_allclose((ew[0] * ew[1]).sum(), 0.25 * _cos(v[0], v[1]) + 0.75 * _cos(m[0], m[1]), rtol=1e-4)


def test_ensemble_routes_options_and_validates(_torch):
    ens = Ensemble(["vggish", "mert-v1-95m"], tiny=True, chunk_s=10, final_relu=True)
    assert ens.members[1].chunk_s == 10 and ens.members[0].final_relu
    with pytest.raises(ParameterError, match="chunk_seconds"):
        Ensemble(["vggish", "mert-v1-95m"], tiny=True, chunk_seconds=10)
    with pytest.raises(ParameterError, match="twice"):
        Ensemble(["vggish", "vggish"], tiny=True)
    with pytest.raises(ParameterError, match="at least two"):
        Ensemble(["vggish"], tiny=True)
    with pytest.raises(ParameterError, match="Unknown backend"):
        Ensemble(["vggish", "nope"], tiny=True)
    with pytest.raises(ParameterError, match="one weight"):
        Ensemble(["vggish", "mert-v1-95m"], weights=[1.0], tiny=True)


def test_ensemble_model_key_tracks_members_and_weights(_torch):
    base = Ensemble(["vggish", "mert-v1-95m"], tiny=True).model_key
    assert base == Ensemble(["vggish", "mert-v1-95m"], tiny=True).model_key
    assert base != Ensemble(["vggish", "mert-v1-95m"], weights=[2, 1], tiny=True).model_key
    assert base != Ensemble(["vggish", "mert-v1-95m"], tiny=True, pooling="meanstd").model_key
    assert base != Ensemble(["mert-v1-95m", "vggish"], tiny=True).model_key
