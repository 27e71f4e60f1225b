"""The exact fast paths of the ``descriptors`` backend against the library calls they replace.

``_descriptors_fast`` re-implements pieces of librosa and pyloudnorm to make the backend
cheaper; its outputs must not move (the vectors, and so the model key, stay the same). Each
function is compared with its library call on generated audio, and the whole vector of one
generated piece with the values that the librosa/pyloudnorm path gave before the change.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import librosa
import pyloudnorm
import scipy.ndimage

from soundalike.backends import _descriptors_dsp as dsp
from soundalike.backends import _descriptors_fast as fast
from soundalike.backends import load_backend

SR = 22050
#: the project's equality tolerance for stored vectors
RTOL, ATOL = 1e-5, 1e-6


def musical_signal() -> np.ndarray:
    """8 s: a I-IV-V-I cadence of plucked chords on the beat at 96 BPM, clicks, quiet noise."""
    r = np.random.default_rng(14)
    n = 8 * SR
    t = np.arange(n) / SR
    y = 0.002 * r.standard_normal(n)
    beat = 60.0 / 96.0
    chords = [(48, 60, 64, 67), (53, 60, 65, 69), (55, 62, 67, 71), (48, 60, 64, 67)]
    for i, start in enumerate(np.arange(0.0, 8.0, beat)):
        m = (t >= start) & (t < start + beat)
        tt = t[m] - start
        for p in chords[(i // 2) % 4]:
            f = 440.0 * 2.0 ** ((p - 69) / 12.0)
            y[m] += 0.06 * np.exp(-4.0 * tt) * (np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt))
        k = m & (t < start + 0.01)
        y[k] += 0.3 * r.standard_normal(k.sum())
    return y.astype(np.float32)


#: ``embed_layers(musical_signal())`` with the librosa/pyloudnorm calls (before the fast paths)
EXPECTED = np.array([
    96.02644348144531, 0.8679165840148926, 1.0, 13.145468711853027, 1.5, 1.7338612079620361,
    0.0, 1.0, 1.0, 0.883094310760498, -23.447717666625977, 1.0311752557754517,
    0.3536231815814972, 0.7136390805244446, 0.5458963513374329, 0.9311510920524597,
    0.6962742805480957, 0.4895341694355011, 0.8220686912536621, 0.08420638740062714,
    0.060418080538511276, 0.027136443182826042, 2606.70458984375, 1137.8287353515625,
    3074.38232421875, 376.245361328125, 6182.61962890625, 2315.59716796875,
    0.058923617005348206, 0.14354702830314636, 25.899158477783203, 23.480470657348633,
    27.270240783691406, 21.00244903564453, 13.128210067749023, 13.419438362121582,
    13.486656188964844, -310.43328857421875, 61.10573959350586, 47.12632369995117,
    24.342737197875977, 3.591237783432007, -9.266804695129395, -14.628151893615723,
    -15.559836387634277, -15.689254760742188, -16.30811882019043, -17.78644561767578,
    -19.264202117919922, -18.07618522644043, 106.70347595214844, 21.858821868896484,
    14.464056015014648, 8.195441246032715, 6.849938869476318, 7.250280380249023,
    7.331473350524902, 7.0443644523620605, 6.926313400268555, 7.7630791664123535,
    8.74739933013916, 8.149092674255371, 7.6416826248168945, 0.6512532234191895,
    0.10018323361873627, 0.15695878863334656, 0.07750249654054642, 0.23714303970336914,
    0.40451881289482117, 0.04998620226979256, 0.40035712718963623, 0.03826809301972389,
    0.14160794019699097, 0.0747169554233551, 0.11788924038410187
], dtype=np.float32)


def signals() -> dict[str, np.ndarray]:
    r = np.random.default_rng(3)
    t = np.arange(6 * SR) / SR
    swell = (0.4 * np.sin(2 * np.pi * 0.3 * t) ** 2 * r.standard_normal(t.size)).astype(np.float32)
    burst = np.zeros(5 * SR, dtype=np.float32)
    burst[2 * SR : 2 * SR + 4000] = 0.5 * r.standard_normal(4000)
    return {
        "music": musical_signal(),
        "swell": swell,  # loudness varies: both gates matter
        "burst_in_silence": burst,  # most blocks at -inf
        "sine_1s": (0.3 * np.sin(2 * np.pi * 1000 * t[:SR])).astype(np.float32),
        "noise_0.5s": (0.1 * r.standard_normal(SR // 2)).astype(np.float32),
        "quiet": (1e-4 * r.standard_normal(3 * SR)).astype(np.float32),
        "zeros": np.zeros(3 * SR, dtype=np.float32),
    }


SIGNALS = signals()
IDS = list(SIGNALS)


def test_whole_vector_equals_the_library_path():
    model = load_backend("descriptors")
    got = model.embed_layers(musical_signal()[None, :])[0, 0]
    np.testing.assert_allclose(got, EXPECTED, rtol=RTOL, atol=ATOL)
    assert got[model.feature_names.index("tempo_bpm")] == pytest.approx(96.0, rel=0.01)


# pyloudnorm measures only signals of at least one block: the shorter ones are left out
LOUDNESS_CASES = [(n, b) for b in (0.4, 3.0) for n in IDS if SIGNALS[n].shape[0] >= b * SR]


@pytest.mark.parametrize(("name", "block_size"), LOUDNESS_CASES)
def test_loudness_equals_pyloudnorm(name, block_size):
    x = SIGNALS[name].astype(np.float64)
    meter = pyloudnorm.Meter(SR, block_size=block_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = meter.integrated_loudness(x)
    want_blocks = np.asarray(meter.blockwise_loudness)
    (z,) = fast.block_powers(fast.k_weighted(x, SR), SR, (block_size,))
    got, got_blocks = fast.gated_loudness(z)
    assert got_blocks.shape == want_blocks.shape
    finite = np.isfinite(want_blocks)
    assert np.array_equal(finite, np.isfinite(got_blocks))
    # blocks that can pass the -70 LUFS gate: to 1e-9 LU; the filter's decaying tail far below
    # it (-2000 LUFS after a burst) only relatively (sosfilt vs two lfilter passes)
    gated = finite & (want_blocks > -80.0)
    np.testing.assert_allclose(got_blocks[gated], want_blocks[gated], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got_blocks[finite], want_blocks[finite], rtol=1e-9, atol=0)
    if np.isfinite(want):
        assert abs(got - want) < 1e-9
    else:
        assert got == want


def test_both_block_sizes_from_one_pass_equal_separate_passes():
    xk = fast.k_weighted(SIGNALS["swell"].astype(np.float64), SR)
    both = fast.block_powers(xk, SR, (0.4, 3.0))
    for z, b in zip(both, (0.4, 3.0)):
        np.testing.assert_allclose(z, fast.block_powers(xk, SR, (b,))[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", IDS)
def test_spectral_paths_equal_librosa(name):
    y = SIGNALS[name]
    S = np.abs(librosa.stft(y, n_fft=dsp.N_FFT, hop_length=dsp.HOP))
    fast_S = fast.stft_magnitude(y, dsp.N_FFT, dsp.HOP)
    assert fast_S.dtype == S.dtype and np.array_equal(fast_S, S)
    freq = librosa.fft_frequencies(sr=SR, n_fft=dsp.N_FFT)
    centroid, bandwidth = fast.spectral_moments(S, freq)
    want_c = librosa.feature.spectral_centroid(S=S, sr=SR)
    np.testing.assert_allclose(centroid, want_c[0], rtol=1e-6, atol=1e-6)
    want_bw = librosa.feature.spectral_bandwidth(S=S, sr=SR, centroid=want_c)[0]
    np.testing.assert_allclose(bandwidth, want_bw, rtol=1e-6, atol=1e-6)
    rolloff = librosa.feature.spectral_rolloff(S=S, sr=SR, roll_percent=0.85)[0]
    assert np.array_equal(fast.spectral_rolloff(S, freq, 0.85), rolloff)
    assert np.array_equal(fast.spectral_flatness(S**2), librosa.feature.spectral_flatness(S=S)[0])
    np.testing.assert_allclose(
        fast.spectral_contrast(S, freq, SR), librosa.feature.spectral_contrast(S=S, sr=SR), rtol=0, atol=1e-5
    )
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=dsp.N_FFT, hop_length=dsp.HOP)[0]
    assert np.array_equal(fast.zero_crossing_rate(y, dsp.N_FFT, dsp.HOP), zcr)


def test_zero_crossings_count_tiny_values_as_positive():
    y = np.tile(np.array([0.5, -1e-11, 0.5, -0.0, -0.5, 1e-11, -0.5, 0.5], dtype=np.float32), 1000)
    want = librosa.feature.zero_crossing_rate(y, frame_length=dsp.N_FFT, hop_length=dsp.HOP)[0]
    assert np.array_equal(fast.zero_crossing_rate(y, dsp.N_FFT, dsp.HOP), want)


@pytest.mark.parametrize("name", IDS)
def test_hpss_paths_equal_librosa(name):
    S = np.abs(librosa.stft(SIGNALS[name], n_fft=dsp.N_FFT, hop_length=dsp.HOP))
    mel = librosa.feature.melspectrogram(S=S**2, sr=SR, n_mels=dsp.N_MELS)
    assert np.array_equal(fast.melspectrogram(S**2, SR, dsp.N_MELS), mel)
    k = dsp.HPSS_KERNEL
    for axis, size in ((-1, (1, k)), (-2, (k, 1))):
        want = scipy.ndimage.median_filter(mel, size=size, mode="reflect")
        assert np.array_equal(fast.median_1d(mel, k, axis=axis), want)
    harm, perc = librosa.decompose.hpss(mel, kernel_size=k)
    total = float(harm.sum() + perc.sum())
    want_ratio = float(harm.sum() / total) if total > 0 else 0.0
    assert fast.harmonic_ratio(mel, k) == want_ratio


@pytest.mark.parametrize("name", IDS)
def test_cqt_and_salience_equal_librosa(name):
    from librosa.core import constantq

    y = SIGNALS[name]
    kw = dict(sr=SR, hop_length=dsp.CHROMA_HOP, fmin=dsp.CQT_FMIN, n_bins=dsp.CQT_N_BINS,
              bins_per_octave=dsp.CQT_BINS_PER_OCTAVE, tuning=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dsp._fast_constantq():
            assert getattr(constantq.stft, "_soundalike_fast", False)
            C = np.abs(librosa.cqt(y, **kw))
        want = np.abs(librosa.cqt(y, **kw))  # librosa's own code, outside the block
    assert np.array_equal(C, want)
    freqs, _ = dsp._chroma_map()
    want_sal = librosa.salience(C, freqs=freqs, harmonics=list(dsp.SALIENCE_HARMONICS),
                                weights=list(dsp.SALIENCE_WEIGHTS), fill_value=0.0)
    got_sal = fast.salience(C, freqs, dsp.SALIENCE_HARMONICS, dsp.SALIENCE_WEIGHTS)
    assert np.array_equal(got_sal, np.nan_to_num(want_sal))


def test_cqt_stft_hands_other_calls_to_librosa():
    calls = []

    def original(y, **kw):
        calls.append(kw)
        return librosa.stft(y, **kw)

    stft = fast.cqt_stft(original)
    y = SIGNALS["music"][:4096]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        for kw in (dict(n_fft=1024, hop_length=256, window="hamming"), dict(n_fft=8192, hop_length=256)):
            assert np.array_equal(stft(y, **kw), librosa.stft(y, **kw))
    assert len(calls) == 2
    got = stft(y, n_fft=1024, hop_length=256, window="ones", dtype=np.complex64)
    assert len(calls) == 2 and np.array_equal(got, librosa.stft(y, n_fft=1024, hop_length=256, window="ones",
                                                                 dtype=np.complex64))


def test_librosa_is_patched_only_inside_the_descriptors():
    """The fast CQT paths replace librosa's functions only while the descriptors run: other code
    in the process (and a caller's own librosa.cqt) gets librosa unchanged, also after an error."""
    from librosa.core import constantq

    before = dict(constantq.__dict__)
    y = SIGNALS[IDS[0]]
    dsp.measure(y)
    assert constantq.stft is before["stft"] and not getattr(constantq.stft, "_soundalike_fast", False)
    assert constantq.__dict__["__vqt_filter_fft"] is before["__vqt_filter_fft"]
    with pytest.raises(RuntimeError):
        with dsp._fast_constantq():
            with dsp._fast_constantq():  # nested (threads of one process) keeps one install
                assert getattr(constantq.stft, "_soundalike_fast", False)
            assert getattr(constantq.stft, "_soundalike_fast", False)
            raise RuntimeError("boom")
    assert constantq.stft is before["stft"]
    assert constantq.__dict__["__vqt_filter_fft"] is before["__vqt_filter_fft"]
