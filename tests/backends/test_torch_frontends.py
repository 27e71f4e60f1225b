"""The torch front ends (accelerators) against the CPU ones they replace, on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from ci_support import import_or_skip


@pytest.fixture(autouse=True)
def _torch():
    import_or_skip("torch")


def _loud_clips(gen, sr, dur):
    x = gen.clips(sr, dur, n=3)
    x[1] *= 4.0  # beyond full scale: the log front ends see large values too
    return x


def test_musicnn_mel_matrix_is_librosas():
    librosa = import_or_skip("librosa")
    from soundalike.backends._torch_frontends import musicnn_mel_matrix

    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    assert musicnn_mel_matrix().shape == ref.shape == (96, 257)
    np.testing.assert_allclose(musicnn_mel_matrix(), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dur", [3.0, 7.3])
def test_musicnn_log_mel_is_the_librosa_front_end(gen, dur):
    import_or_skip("librosa")
    import torch

    from soundalike.backends._musicnn_net import log_mel
    from soundalike.backends._torch_frontends import musicnn_log_mel

    x = _loud_clips(gen, 16000, dur)
    ref = log_mel(x)
    got = musicnn_log_mel(torch.from_numpy(x))
    assert got.dtype == torch.float32 and tuple(got.shape) == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)  # librosa computes in float32


def test_vggish_log_mel_is_the_numpy_front_end(gen):
    import torch

    from soundalike.backends._torch_frontends import vggish_log_mel_examples
    from soundalike.backends.vggish import log_mel_examples

    x = _loud_clips(gen, 16000, 4.1)
    ref = log_mel_examples(x)
    got = vggish_log_mel_examples(torch.from_numpy(x))
    assert tuple(got.shape) == ref.shape == (3, 4, 96, 64)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-6)


def test_mert_normalisation_is_the_numpy_one(gen):
    import torch

    from soundalike.backends._torch_frontends import compute_dtype, normalize_windows
    from soundalike.backends.mert import normalize_chunks

    x = _loud_clips(gen, 24000, 2.0) + 0.3  # an offset to remove
    got = normalize_windows(torch.from_numpy(x))
    np.testing.assert_allclose(got.numpy(), normalize_chunks(x), rtol=1e-6, atol=1e-7)
    silent = normalize_windows(torch.zeros(1, 400))  # the 1e-7 floor: no division by zero
    assert torch.isfinite(silent).all() and float(silent.abs().max()) == 0.0
    assert compute_dtype("mps") == torch.float32 and compute_dtype("cpu") == torch.float64
