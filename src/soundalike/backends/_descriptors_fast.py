"""Exact, cheaper re-implementations of the library calls behind the ``descriptors`` backend.

Private to :mod:`soundalike.backends._descriptors_dsp`. Each function returns what the named
librosa / pyloudnorm call returns on the same input, up to float rounding (about 1e-12 relative
for the float64 paths; the float32 steps that round the same way in the library are repeated
as they are), so the backend's vectors and model key do not change. ``tests/backends/
test_descriptors_fast.py`` compares each one with the library call it replaces.

What is saved, per 30 s clip at 22050 Hz (one thread; figures in docs/descriptors.md,
"Exact fast paths"): the second K-weighting pass and the Python loop over blocks of the two
loudness meters; scipy's 2-D rank filter where a 1-D median along one axis is wanted; the
float64 normalised copies of the spectrogram in the spectral statistics; the framed copy of
the signal in the zero-crossing rate; the all-frames-at-once float64 copies of the STFTs
(the main one and each CQT octave's); interp1d in the harmonic salience; the mel filter bank
rebuilt per call.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.ndimage
import scipy.signal

#: BS.1770 constants as pyloudnorm uses them
_LUFS_OFFSET = -0.691
_ABS_GATE = -70.0
_OVERLAP = 0.75


# --- STFT (librosa.stft, centred, zero padding) ------------------------------------------
@functools.lru_cache(maxsize=8)
def _window(name: str, n_fft: int) -> np.ndarray:
    import librosa

    return librosa.filters.get_window(name, n_fft, fftbins=True)


def stft_frames(y: np.ndarray, n_fft: int, hop_length: int, window: str, *,
                magnitude: bool, block: int = 128) -> np.ndarray:
    """``librosa.stft(y, n_fft=, hop_length=, window=, dtype=complex64)`` (centred, zero
    padding; ``np.abs`` of it with `magnitude`) for a 1-D float32 ``y`` of at least `n_fft`
    samples, frame-major: shape ``(n_frames, 1 + n_fft // 2)``; ``.T`` is librosa's array.

    The same float64 windowed frames, float64 FFT and rounding to complex64 as librosa (so the
    same bits), a block of frames at a time along the contiguous axis instead of all frames at
    once along the strided one.
    """
    from librosa import get_fftlib
    from numpy.lib.stride_tricks import sliding_window_view

    rfft = get_fftlib().rfft  # librosa's FFT library (scipy.fft unless set otherwise)
    win = _window(window, n_fft)
    frames = sliding_window_view(np.pad(y, n_fft // 2), n_fft)[::hop_length]
    out = np.empty((frames.shape[0], 1 + n_fft // 2), dtype=np.float32 if magnitude else np.complex64)
    for s in range(0, frames.shape[0], block):
        spec = rfft(win * frames[s : s + block], axis=-1).astype(np.complex64)
        out[s : s + block] = np.abs(spec) if magnitude else spec
    return out


def stft_magnitude(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))`` (hann), bit-identical,
    as librosa's F-ordered ``(1 + n_fft // 2, n_frames)`` float32 array."""
    if y.shape[-1] < n_fft:  # librosa warns and pads differently; keep its path
        import librosa

        return np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    return stft_frames(y, n_fft, hop_length, "hann", magnitude=True).T


def cqt_stft(original):
    """A drop-in for the ``stft`` that ``librosa.cqt`` calls per octave (window ``"ones"``,
    centred, constant padding, complex64), bit-identical; any other call goes to `original`."""

    def stft(y, *, n_fft=2048, hop_length=None, win_length=None, window="hann", center=True,
             dtype=None, pad_mode="constant", out=None):
        if (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype == np.float32 and center
                and win_length is None and out is None and window in ("ones", "hann")
                and pad_mode == "constant" and np.dtype(dtype or np.complex64) == np.complex64
                and hop_length and y.shape[0] >= n_fft and np.all(np.isfinite(y))):
            return stft_frames(y, n_fft, hop_length, window, magnitude=False).T
        return original(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                        center=center, dtype=dtype, pad_mode=pad_mode, out=out)

    stft._soundalike_fast = True  # type: ignore[attr-defined]
    return stft


@functools.lru_cache(maxsize=4)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    basis.setflags(write=False)
    return basis


def melspectrogram(P: np.ndarray, sr: int, n_mels: int) -> np.ndarray:
    """``librosa.feature.melspectrogram(S=P, sr=sr, n_mels=n_mels)`` with the filter bank
    built once (librosa rebuilds it per call); the same ``einsum``, so the same values."""
    basis = _mel_basis(sr, 2 * (P.shape[-2] - 1), n_mels)
    return np.einsum("...ft,mf->...mt", P, basis, optimize=True)


# --- loudness (pyloudnorm.Meter, K-weighting, mono) --------------------------------------
@functools.lru_cache(maxsize=4)
def _k_weighting(rate: int) -> tuple[np.ndarray, float]:
    """pyloudnorm's K-weighting stages as second-order sections, and their overall gain."""
    import pyloudnorm

    stages = list(pyloudnorm.Meter(rate)._filters.values())  # high shelf, then high pass
    sos = np.array([np.concatenate((f.b / f.a[0], f.a / f.a[0])) for f in stages])
    return sos, float(np.prod([f.passband_gain for f in stages]))


def k_weighted(x: np.ndarray, rate: int) -> np.ndarray:
    """The signal after pyloudnorm's K-weighting (float64): its two biquads in one pass.

    pyloudnorm runs ``lfilter`` once per stage; the cascade of second-order sections is the
    same filter (differences ~1e-13 of full scale).
    """
    sos, gain = _k_weighting(rate)
    out = scipy.signal.sosfilt(sos, x)
    return out if gain == 1.0 else gain * out


def _block_bounds(n: int, rate: int, block_size: float) -> tuple[np.ndarray, np.ndarray]:
    # pyloudnorm's own float expressions, so the bounds truncate the same way
    T_g = block_size
    step = 1.0 - _OVERLAP
    T = n / rate
    n_blocks = int(np.round(((T - T_g) / (T_g * step)))) + 1
    j = np.arange(n_blocks)
    lo = (T_g * (j * step) * rate).astype(np.int64)
    hi = (T_g * (j * step + 1) * rate).astype(np.int64)
    hi = np.minimum(hi, n)
    return np.minimum(lo, hi), hi


def block_powers(xk: np.ndarray, rate: int, block_sizes: tuple[float, ...]) -> list[np.ndarray]:
    """Mean square of each gating block (pyloudnorm's ``z``) for each block size.

    The squared signal is summed once between consecutive block bounds (of all block sizes
    together); each block adds up its pieces (non-negative, so no cancellation: a quiet block
    after a loud one keeps its digits, as in pyloudnorm's per-block sum).
    """
    n = xk.shape[0]
    bounds = [_block_bounds(n, rate, b) for b in block_sizes]
    cuts = np.unique(np.concatenate([np.r_[0, n]] + [np.r_[lo, hi] for lo, hi in bounds]))
    cuts = cuts[cuts < n]
    pieces = np.append(np.add.reduceat(np.square(xk), cuts), 0.0)  # last: an empty piece
    edge = np.append(cuts, n)
    out = []
    for (lo, hi), T_g in zip(bounds, block_sizes):
        first, stop = np.searchsorted(edge, lo), np.searchsorted(edge, hi)
        width = int((stop - first).max(initial=0))
        idx = first[:, None] + np.arange(width)
        idx[idx >= stop[:, None]] = pieces.shape[0] - 1
        out.append((1.0 / (T_g * rate)) * pieces[idx].sum(axis=1))
    return out


def gated_loudness(z: np.ndarray) -> tuple[float, np.ndarray]:
    """Integrated loudness (LUFS, may be -inf) and blockwise loudness from block powers ``z``.

    ``pyloudnorm.Meter.integrated_loudness`` for one channel: absolute gate at -70 LUFS,
    relative gate 10 LU below the mean power of the blocks above it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        blocks = _LUFS_OFFSET + 10.0 * np.log10(z)
        above = blocks >= _ABS_GATE
        z_abs = np.mean(z[above]) if above.any() else np.nan
        gamma_r = _LUFS_OFFSET + 10.0 * np.log10(z_abs) - 10.0
        keep = (blocks > gamma_r) & (blocks > _ABS_GATE)
        z_rel = np.nan_to_num(np.mean(z[keep])) if keep.any() else 0.0
        lufs = _LUFS_OFFSET + 10.0 * np.log10(z_rel)
    return float(lufs), blocks


# --- HPSS (librosa.decompose.hpss with power 2, margin 1, on a real spectrogram) ----------
def median_1d(S: np.ndarray, size: int, axis: int) -> np.ndarray:
    """``scipy.ndimage.median_filter(S, size=<size along axis, 1 elsewhere>, mode="reflect")``.

    The rows along `axis` are reflect-padded and laid end to end, so one call of scipy's fast
    1-D rank filter does them all; no window crosses into a neighbouring row.
    """
    h = size // 2
    x = np.moveaxis(S, axis, -1)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(h, h)], mode="symmetric")
    med = scipy.ndimage.median_filter(padded.reshape(-1), size=size, mode="nearest")
    med = med.reshape(padded.shape)[..., h : h + x.shape[-1]]
    return np.ascontiguousarray(np.moveaxis(med, -1, axis))


def harmonic_ratio(S: np.ndarray, kernel: int) -> float:
    """Share of ``S``'s energy in the harmonic part of librosa's HPSS (``kernel_size=kernel``,
    power 2, margin 1): ``sum(S * mask_h) / (sum(S * mask_h) + sum(S * mask_p))``.

    The soft masks are librosa's ``util.softmask`` expressions (same float32 operations, so the
    same values), written without its boolean-indexed copies.
    """
    harm = median_1d(S, kernel, axis=-1)
    perc = median_1d(S, kernel, axis=-2)
    Z = np.maximum(harm, perc)
    bad = Z < np.finfo(S.dtype).tiny
    Z[bad] = 1
    a = (harm / Z) ** 2.0
    b = (perc / Z) ** 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mask_h = np.where(bad, np.float32(0.5), a / (a + b)).astype(S.dtype, copy=False)
        mask_p = np.where(bad, np.float32(0.5), b / (b + a)).astype(S.dtype, copy=False)
    h_sum, p_sum = (S * mask_h).sum(), (S * mask_p).sum()
    total = float(h_sum + p_sum)
    return float(h_sum / total) if total > 0 else 0.0


# --- spectral statistics (librosa.feature.spectral_*, S magnitude (n_bins, n_frames)) -----
def spectral_moments(S: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame spectral centroid and bandwidth (p=2), as librosa computes them.

    librosa divides ``S`` by its float64 column sums (columns below float32's ``tiny`` are
    left as they are) and sums ``freq`` and squared deviations against it; here the three
    moments of each column come from one matrix product and are combined in float64.
    """
    A = np.stack([np.ones_like(freq), freq, freq * freq]) @ S.astype(np.float64)
    length = A[0].copy()
    length[length < np.finfo(S.dtype).tiny] = 1.0
    m0, m1, m2 = A / length
    centroid = m1
    bandwidth = np.sqrt(np.maximum(m2 - 2.0 * centroid * m1 + centroid * centroid * m0, 0.0))
    return centroid, bandwidth


def spectral_rolloff(S: np.ndarray, freq: np.ndarray, roll_percent: float) -> np.ndarray:
    """``librosa.feature.spectral_rolloff``: the first bin whose float32 cumulative energy
    reaches `roll_percent` of the column total (the same cumulative sum, so the same bin)."""
    total = np.cumsum(S, axis=-2)
    threshold = roll_percent * total[-1, :]
    idx = np.argmax(total >= threshold, axis=0)
    return freq[idx]


def spectral_flatness(P: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """``librosa.feature.spectral_flatness`` (power 2) from the power spectrogram ``P = S**2``."""
    S_thresh = np.maximum(amin, P)
    gmean = np.exp(np.mean(np.log(S_thresh), axis=-2, keepdims=True))
    amean = np.mean(S_thresh, axis=-2, keepdims=True)
    return (gmean / amean)[0]


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y, frame_length, hop_length)`` (centred, edge pad):
    each frame's count of sign changes (|x| <= 1e-10 counts as positive) over its length."""
    h = frame_length // 2
    yp = np.pad(y, (h, h), mode="edge")
    neg = yp < np.float64(-1e-10)
    change = np.concatenate(([0], np.cumsum(neg[1:] != neg[:-1], dtype=np.int64)))
    n_frames = 1 + (yp.shape[0] - frame_length) // hop_length
    start = np.arange(n_frames) * hop_length
    counts = change[start + frame_length - 1] - change[start]
    return counts / float(frame_length)


def spectral_contrast(S: np.ndarray, freq: np.ndarray, sr: int, *, n_bands: int = 6,
                      fmin: float = 200.0, quantile: float = 0.02) -> np.ndarray:
    """``librosa.feature.spectral_contrast(S=S, sr=sr)`` ``(n_bands + 1, n_frames)``.

    The bands are sorted along the contiguous axis of the frame-major view (librosa sorts
    along the strided one); the band means are taken in float64 (librosa: float32).
    """
    import librosa

    n_frames = S.shape[-1]
    valley = np.zeros((n_bands + 1, n_frames))
    peak = np.zeros_like(valley)
    St = np.ascontiguousarray(S.T)  # (n_frames, n_bins); no copy for librosa's F-ordered S
    for k, (start, stop, idx) in enumerate(_contrast_bands(freq.tobytes(), sr, n_bands, fmin, quantile)):
        band = St[:, start:stop]
        n = band.shape[1]
        part = np.sort(band, axis=1)
        valley[k] = part[:, :idx].mean(axis=1, dtype=np.float64)
        peak[k] = part[:, n - idx:].mean(axis=1, dtype=np.float64)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)


@functools.lru_cache(maxsize=8)
def _contrast_bands(freq_bytes: bytes, sr: int, n_bands: int, fmin: float, quantile: float):
    # librosa's band masks (each a contiguous run of bins) as (start, stop, idx)
    freq = np.frombuffer(freq_bytes)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[-1] + 1:] = True
        rows = np.flatnonzero(current)
        start, stop = int(rows[0]), int(rows[-1]) + 1
        if k < n_bands:
            stop -= 1  # librosa drops the band's last bin
        n_idx = int(np.maximum(np.rint(quantile * np.sum(current)), 1))
        bands.append((start, stop, n_idx))
    return tuple(bands)



# --- harmonic salience (librosa.salience, linear interpolation, peaks only) ---------------
@functools.lru_cache(maxsize=4)
def _salience_plan(freq_bytes: bytes, harmonics: tuple[float, ...]):
    # scipy's interp1d(kind="linear") bracketing of every harmonic frequency
    x = np.frombuffer(freq_bytes)
    x_new = np.multiply.outer(np.asarray(harmonics, dtype=float), x).ravel()
    hi = np.searchsorted(x, x_new).clip(1, len(x) - 1).astype(int)
    lo = hi - 1
    outside = (x_new < x[0]) | (x_new > x[-1])
    return lo, hi, x[hi] - x[lo], x_new - x[lo], outside


def salience(C: np.ndarray, freqs: np.ndarray, harmonics: tuple[float, ...],
             weights: tuple[float, ...]) -> np.ndarray:
    """``librosa.salience(C, freqs=, harmonics=, weights=, fill_value=0.0)`` for a 2-D
    ``C`` (bins, frames): scipy ``interp1d``'s linear-interpolation expressions and
    ``np.average``'s weighted sum, for all harmonics at once (the same operations, so the
    same values), then only the local maxima along frequency are kept (0 elsewhere)."""
    lo, hi, dx, dnew, outside = _salience_plan(np.asarray(freqs, dtype=float).tobytes(), tuple(harmonics))
    slope = (C[hi] - C[lo]) / dx[:, None]
    harm = slope * dnew[:, None] + C[lo]
    harm[outside] = 0.0
    harm = harm.reshape(len(harmonics), C.shape[0], C.shape[1])
    w = np.array(weights, dtype=float)
    sal = np.multiply(harm, w[:, None, None]).sum(axis=0) / w.sum()
    peaks = np.zeros(C.shape, dtype=bool)
    peaks[1:-1] = (C[1:-1] > C[:-2]) & (C[1:-1] > C[2:])
    out = np.zeros(C.shape)
    out[peaks] = sal[peaks]
    return out
