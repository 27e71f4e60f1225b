"""Device choice, batch size from free memory, compile: the GPU path, checked where it can be on a CPU."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.backends._torch_runtime import CPU_BATCH
from soundalike.backends.registry import load_backend
from soundalike.errors import BackendUnavailable, ParameterError

pytestmark = pytest.mark.usefixtures("isolated_weights")

GiB, MiB = 2**30, 2**20


@pytest.fixture(autouse=True)
def _needs(gen):
    gen.need("torch", "transformers")


def test_batch_size_from_free_memory():
    from soundalike.backends._torch_runtime import choose_batch_size

    # power of two that fits in (1 - headroom) of free memory, capped
    assert choose_batch_size(80 * GiB, 300 * MiB) == 128
    assert choose_batch_size(80 * GiB, 300 * MiB, cap=64) == 64
    assert choose_batch_size(4 * GiB, 300 * MiB) == 8  # 11.6 items fit -> 8
    assert choose_batch_size(4 * GiB, 300 * MiB, headroom=0.0) == 8
    assert choose_batch_size(10 * MiB, 300 * MiB) == 1  # nothing fits: one at a time, torch reports OOM
    for free in (1 * GiB, 7 * GiB, 33 * GiB, 79 * GiB):
        b = choose_batch_size(free, 123 * MiB)
        assert b & (b - 1) == 0 and b * 123 * MiB <= free or b == 1
    with pytest.raises(ParameterError, match="per_item_bytes"):
        choose_batch_size(GiB, 0)


def test_devices_resolve_or_fail_clearly():
    import torch

    from soundalike.backends._torch_runtime import measure_batch_size, resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert measure_batch_size(lambda: None, "cpu") == CPU_BATCH  # CPU: fixed, no probe
    with pytest.raises(ParameterError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
            load_backend("mert-v1-95m", tiny=True, device="cuda")


def test_runtime_options_reach_torch_backends_only():
    # descriptors run on the CPU: neutral values pass, a GPU request is one clear error
    assert load_backend("descriptors", device="auto").name == "descriptors"
    with pytest.raises(ParameterError, match="device='cuda'"):
        load_backend("descriptors", device="cuda")
    with pytest.raises(ParameterError, match="does not take compile=True"):
        load_backend("descriptors", compile=True)
    with pytest.raises(ParameterError, match="max_batch"):
        load_backend("mert-v1-95m", tiny=True, max_batch=0)


def test_auto_batch_and_compile_do_not_change_vectors(gen):
    """``max_batch="auto"`` and ``compile=True`` change speed, never the stored vectors (or the key)."""
    x = gen.clips(24000, 2.0, n=3)
    eager = load_backend("mert-v1-95m", tiny=True, max_batch=3)
    auto = load_backend("mert-v1-95m", tiny=True)
    ref = eager.embed_layers(x)
    np.testing.assert_allclose(auto.embed_layers(x), ref, rtol=1e-5, atol=1e-5)
    assert auto.max_batch == CPU_BATCH and auto.model_key == eager.model_key
    compiled = load_backend("mert-v1-95m", tiny=True, compile=True)
    assert compiled.model_key == eager.model_key
    np.testing.assert_allclose(compiled.embed_layers(x), ref, rtol=1e-4, atol=1e-4)


def test_int8_quantisation_is_its_own_model_and_agrees_with_fp32(gen):
    x = gen.clips(24000, 2.0, n=3)
    fp32 = load_backend("mert-v1-95m", tiny=True)
    int8 = load_backend("mert-v1-95m", tiny=True, quantize="int8")
    assert int8.model_key != fp32.model_key and int8.config()["quantize"] == "int8"
    a, b = fp32.embed_layers(x), int8.embed_layers(x)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cos.min() >= 0.999
    with pytest.raises(ParameterError, match="quantize"):
        load_backend("mert-v1-95m", tiny=True, quantize="int4")
