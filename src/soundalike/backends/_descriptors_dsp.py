"""Measurements behind the ``descriptors`` backend (librosa, pyloudnorm).

Private: :mod:`soundalike.backends.descriptors` validates the audio and imports this module
lazily, so listing backends never imports librosa. Every function here takes one mono float32
clip at :data:`SR` and trusts it. Each step is a librosa / pyloudnorm call or its exact,
cheaper equivalent in :mod:`soundalike.backends._descriptors_fast` (same values; see
``docs/descriptors.md``, "Exact fast paths"); the few formulas written here
(Krumhansl–Schmuckler correlation, the tempo octave rule, gating of the loudness range) are
short and cited in ``docs/descriptors.md``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from dataclasses import dataclass

import librosa
import numpy as np

from . import _descriptors_fast as fast
from . import _librosa_beat  # noqa: F401  (librosa.beat with its numba kernels cached on disk)
from . import _descriptors_scores as scores
from .descriptors import HOP, N_FFT, N_MELS  # the model key's values, defined there

SR = 22050
#: onset autocorrelation window of the tempogram (librosa.feature.tempo's default ac_size)
AC_SIZE_S = 8.0
#: the tempo prior: librosa's log-normal prior centred on 120 BPM, one octave std
START_BPM = 120.0
STD_BPM = 1.0
#: the octave rule prefers tempi in this range (see docs/descriptors.md, "Tempo")
PREFERRED_BPM = (70.0, 180.0)
#: an octave move needs the autocorrelation at the new lag to reach this share of the old one
OCTAVE_RATIO = 0.5
#: the absolute gate of ITU-R BS.1770 (and the value reported for silence)
LUFS_FLOOR = -70.0
#: median filter lengths (frames, mel bands) of the harmonic/percussive separation
HPSS_KERNEL = 17
#: CQT grid of the key chroma: C1 upwards, 6 octaves, 3 bins per semitone
CQT_BINS_PER_OCTAVE = 36
CQT_N_BINS = 6 * CQT_BINS_PER_OCTAVE
CQT_FMIN = 32.70319566257483  # C1
#: harmonics and weights of the pitch salience (1/h)
SALIENCE_HARMONICS = (1, 2, 3, 4)
SALIENCE_WEIGHTS = (1.0, 1.0 / 2.0, 1.0 / 3.0, 1.0 / 4.0)
#: local tempo within this relative distance of the global tempo counts as stable
STABILITY_TOL = 0.08
#: chroma hop (samples): the key needs no finer time resolution
CHROMA_HOP = 2048
#: below this duration (s) there are too few beats to measure tempo: rhythm features are 0
MIN_RHYTHM_S = 3.0
#: an onset envelope (mean dB rise per mel band and frame) varying less than this has no
#: pulse: a steady tone (std ~0.001) vs music (~0.3-2); gain does not change it
MIN_FLUX_STD = 0.02
_EPS = 1e-10


@dataclass
class Measurements:
    """Raw per-clip measurements (see docs/descriptors.md for each)."""

    values: dict[str, float]
    tonic: int  # pitch class 0 = C
    mode: int  # 1 major, 0 minor


def measure(y: np.ndarray, *, key_profile: str = "albrecht-shanahan") -> Measurements:
    """All raw descriptors of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
        Mono audio at 22050 Hz, finite.
    key_profile : {"albrecht-shanahan", "krumhansl-kessler"}
        Key profiles of the Krumhansl–Schmuckler key finding.

    Returns
    -------
    Measurements
        ``values`` holds every raw feature keyed by its name in
        :data:`soundalike.backends.descriptors.FEATURE_NAMES` except the 0–1 scores, which
        :func:`soundalike.backends._descriptors_scores.perceptual_scores` derives from them.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    duration = y.shape[0] / SR
    v: dict[str, float] = {}

    # One STFT feeds every spectral feature; the mel power spectrogram feeds MFCC, onsets, HPSS.
    S = fast.stft_magnitude(y, N_FFT, HOP)
    P = S**2
    mel = fast.melspectrogram(P, SR, N_MELS)
    mel_db = librosa.power_to_db(mel, ref=1.0)

    # --- rhythm ---------------------------------------------------------------------------
    oenv = librosa.onset.onset_strength(S=mel_db, sr=SR, hop_length=HOP)
    v.update(_rhythm(oenv, duration))

    # --- tonality -------------------------------------------------------------------------
    # Chroma for the key: CQT (36 bins per octave, 6 octaves from C1, hop 2048) -> harmonic
    # salience (each bin also collects 1/2, 1/3, 1/4 of the energy at 2f, 3f, 4f, so a note's
    # third harmonic stops voting for its fifth) -> folded to 12 pitch classes. Plain STFT chroma
    # called a C-major triad "E minor"; plain CQT chroma leaned to the dominant on the Bach
    # chorales (docs/descriptors.md, "Key and mode"). Tuning is not estimated (+40 ms): 3 bins
    # per semitone fold a detuning of up to about a third of a semitone into the right class.
    chroma = _salience_chroma(y)
    chroma_mean = chroma.mean(axis=1)
    tonic, mode, strength = scores.estimate_key(chroma_mean, profile=key_profile)
    key_sin, key_cos = scores.key_circle(tonic, mode)
    v.update(key_sin=key_sin, key_cos=key_cos, mode=float(mode), key_strength=strength)

    # --- loudness and dynamics ------------------------------------------------------------
    v.update(_loudness(y))
    rms = librosa.feature.rms(S=S, frame_length=N_FFT)[0]
    v["low_energy_ratio"] = float(np.mean(rms < 0.5 * rms.mean())) if rms.mean() > 0 else 1.0

    # --- harmonic / percussive ------------------------------------------------------------
    # HPSS on the mel power spectrogram with 17-frame / 17-band median filters: ~15x cheaper
    # than librosa's default (31) on the linear STFT; only the energy ratio is kept.
    v["harmonic_ratio"] = fast.harmonic_ratio(mel, HPSS_KERNEL)

    # --- timbre ---------------------------------------------------------------------------
    zcr = fast.zero_crossing_rate(y, N_FFT, HOP)
    v["zcr_mean"], v["zcr_std"] = float(zcr.mean()), float(zcr.std())
    freq = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    centroid, bandwidth = fast.spectral_moments(S, freq)
    spectral = {
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "spectral_rolloff": fast.spectral_rolloff(S, freq, 0.85),
        "spectral_flatness": fast.spectral_flatness(P),
    }
    for name, frames in spectral.items():
        v[f"{name}_mean"], v[f"{name}_std"] = float(frames.mean()), float(frames.std())
    contrast = fast.spectral_contrast(S, freq, SR).mean(axis=1)
    for i, c in enumerate(contrast, start=1):
        v[f"spectral_contrast_{i}"] = float(c)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    for i in range(13):
        v[f"mfcc_{i + 1:02d}_mean"] = float(mfcc[i].mean())
    for i in range(13):
        v[f"mfcc_{i + 1:02d}_std"] = float(mfcc[i].std())
    for name, c in zip(scores.PITCH_CLASSES, chroma_mean):
        v[f"chroma_{name}"] = float(c)
    return Measurements(values=v, tonic=tonic, mode=mode)


def _cached_filter_fft(original):
    """Reuse librosa's variable-Q filter bank across calls instead of rebuilding it per clip.

    ``librosa.cqt`` designs its wavelet filters (windows, FFTs, sparsification) on every call:
    about a quarter of this backend's time on a 30 s clip. The filters depend only on the
    arguments, so they are memoised here (librosa 0.11's private ``__vqt_filter_fft``; each caller
    gets its own copy because ``vqt`` rescales the matrix in place). Outputs are bit-identical.
    """
    cache: dict = {}

    def cached(sr, freqs, filter_scale, norm, sparsity, hop_length=None, window="hann", gamma=0.0,
               dtype=np.complex64, alpha=None):
        key = (float(sr), np.asarray(freqs).tobytes(), filter_scale, norm, sparsity, hop_length, str(window),
               float(gamma), np.dtype(dtype).str, None if alpha is None else np.asarray(alpha).tobytes())
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[key] = original(sr, freqs, filter_scale, norm, sparsity, hop_length=hop_length, window=window,
                                  gamma=gamma, dtype=dtype, alpha=alpha)
        basis, n_fft, lengths = cache[key]
        return basis.copy(), n_fft, lengths.copy()

    return cached


#: librosa.core.constantq attributes replaced while the descriptors compute their CQT: the memoised
#: filter bank above, and the blocked STFT of :func:`_descriptors_fast.cqt_stft` (per octave the
#: CQT takes an STFT of the resampled signal; librosa's all-frames-at-once float64 copies cost
#: about half of the CQT; same bits, and any call it does not cover goes to librosa's ``stft``)
_FAST_NAMES = ("__vqt_filter_fft", "stft")
_fast_lock = threading.Lock()
_fast_state: dict = {"depth": 0, "saved": {}, "fast": {}}


@contextlib.contextmanager
def _fast_constantq():
    """librosa's CQT with the fast paths above, only inside this block (and only the attributes
    this librosa has); the rest of the process keeps librosa as it is."""
    from librosa.core import constantq

    with _fast_lock:
        st = _fast_state
        if not st["fast"]:
            originals = {n: constantq.__dict__.get(n) for n in _FAST_NAMES}
            if originals["__vqt_filter_fft"] is not None:
                st["fast"]["__vqt_filter_fft"] = _cached_filter_fft(originals["__vqt_filter_fft"])
            if originals["stft"] is not None:
                st["fast"]["stft"] = fast.cqt_stft(originals["stft"])
        if st["depth"] == 0:
            st["saved"] = {n: constantq.__dict__[n] for n in st["fast"]}
            for n, f in st["fast"].items():
                setattr(constantq, n, f)
        st["depth"] += 1
    try:
        yield
    finally:
        with _fast_lock:
            st["depth"] -= 1
            if st["depth"] == 0:
                for n, f in st["saved"].items():
                    setattr(constantq, n, f)


@functools.lru_cache(maxsize=1)
def _chroma_map() -> tuple[np.ndarray, np.ndarray]:
    freqs = librosa.cqt_frequencies(CQT_N_BINS, fmin=CQT_FMIN, bins_per_octave=CQT_BINS_PER_OCTAVE)
    fold = librosa.filters.cq_to_chroma(CQT_N_BINS, bins_per_octave=CQT_BINS_PER_OCTAVE, fmin=CQT_FMIN)
    return freqs, fold


def _salience_chroma(y: np.ndarray) -> np.ndarray:
    """Harmonic-salience chroma ``(12, n_frames)``, each frame scaled to max 1 (0 if silent)."""
    freqs, fold = _chroma_map()
    with warnings.catch_warnings(), _fast_constantq():
        # short clips: the CQT's top octaves warn "n_fft=... is too large"; harmless here
        warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
        C = np.abs(
            librosa.cqt(
                y, sr=SR, hop_length=CHROMA_HOP, fmin=CQT_FMIN, n_bins=CQT_N_BINS,
                bins_per_octave=CQT_BINS_PER_OCTAVE, tuning=0.0,
            )
        )
    sal = fast.salience(C, freqs, SALIENCE_HARMONICS, SALIENCE_WEIGHTS)  # = librosa.salience
    sal = np.nan_to_num(sal, nan=0.0, posinf=0.0, neginf=0.0)
    return librosa.util.normalize(fold @ sal, norm=np.inf, axis=0)


def _rhythm(oenv: np.ndarray, duration: float) -> dict[str, float]:
    """Tempo (with the octave rule), pulse clarity, stability, beat salience, onset rate."""
    out: dict[str, float] = {}
    out["onset_rate"] = float(
        len(librosa.onset.onset_detect(onset_envelope=oenv, sr=SR, hop_length=HOP)) / duration
    )
    out["spectral_flux"] = float(oenv.mean())
    no_pulse = dict(tempo_bpm=0.0, tempo_confidence=0.0, tempo_stability=0.0, beat_salience=0.0)
    # Without onsets (silence, a steady tone) or with too few beats, there is no tempo to
    # measure: the rhythm features are 0 (documented).
    centred = oenv - oenv.mean()
    if duration < MIN_RHYTHM_S or float(oenv.std()) < MIN_FLUX_STD:
        out.update(no_pulse)
        return out

    # Autocorrelation tempogram of the mean-removed onset envelope (each frame normalised so
    # lag 0 = 1; without the mean removal any positive envelope, even noise, looks periodic).
    # Its time average `ac[lag]` is the pulse clarity at that period, <= 1.
    win = min(int(librosa.time_to_frames(AC_SIZE_S, sr=SR, hop_length=HOP)), oenv.shape[0])
    tg = librosa.feature.tempogram(onset_envelope=centred, sr=SR, hop_length=HOP, win_length=win)
    # librosa.feature.tempo takes log1p(1e6 * tg): negative correlations count as none.
    tg = np.maximum(tg, 0.0)
    ac = tg.mean(axis=1)
    bpm0 = float(
        librosa.feature.tempo(tg=tg, sr=SR, hop_length=HOP, start_bpm=START_BPM, std_bpm=STD_BPM)[0]
    )
    bpm = scores.octave_rule(
        bpm0, lambda b: _strength(ac, b), preferred=PREFERRED_BPM, ratio=OCTAVE_RATIO
    )

    beats = librosa.beat.beat_track(
        onset_envelope=oenv, sr=SR, hop_length=HOP, bpm=bpm, units="frames"
    )[1]
    # The autocorrelation lag grid is coarse (117.5 or 123.0 BPM around 120): refine with the
    # mean inter-beat interval of the tracked beats when it agrees within 8 %.
    if len(beats) >= 4:
        ibi = np.diff(librosa.frames_to_time(beats, sr=SR, hop_length=HOP))
        refined = 60.0 / float(ibi.mean())
        if abs(refined / bpm - 1.0) < 0.08:
            bpm = refined
    out["tempo_bpm"] = bpm
    out["tempo_confidence"] = _strength(ac, bpm)

    # Stability: the share of frames whose local tempo (same prior, centred on the global
    # tempo) is within 8 % of it, folded to one octave (an octave jump of the local estimate is
    # not instability). 8 % is about one lag step of the grid near 120 BPM.
    local = librosa.feature.tempo(
        tg=tg, sr=SR, hop_length=HOP, start_bpm=bpm, std_bpm=STD_BPM, aggregate=None
    )
    d = np.log2(np.maximum(local, _EPS) / bpm)
    folded = np.abs(d - np.round(d))
    out["tempo_stability"] = float(np.mean(folded <= np.log2(1.0 + STABILITY_TOL)))
    if len(beats) >= 2:
        out["beat_salience"] = float(oenv[beats].mean() / (oenv.mean() + _EPS))
    else:
        out["beat_salience"] = 0.0
    return out


def _strength(ac: np.ndarray, bpm: float) -> float:
    """Mean normalised onset autocorrelation at the period of `bpm` (best of the 3 nearest lags)."""
    if bpm <= 0:
        return 0.0
    lag = 60.0 * SR / (HOP * bpm)
    c = int(round(lag))
    lo, hi = max(1, c - 1), min(ac.shape[0], c + 2)
    if lo >= hi:
        return 0.0
    return float(np.clip(ac[lo:hi].max(), 0.0, 1.0))


def _loudness(y: np.ndarray) -> dict[str, float]:
    """Integrated loudness (LUFS, BS.1770 as pyloudnorm measures it) and loudness range (LU).

    Clips shorter than one 400 ms block are repeated up to one block (same mean square);
    silence reports the absolute gate, -70 LUFS. The loudness range follows EBU Tech 3342:
    short-term (3 s) loudness, gates at -70 LUFS and 20 LU below the gated power mean,
    then P95 - P10; clips shorter than 3 s use the 400 ms momentary blocks instead.
    """
    x = y.astype(np.float64)
    block = int(round(0.4 * SR))
    if x.shape[0] < block:
        x = np.resize(x, block)
    # pyloudnorm's meter, computed once: one K-weighted signal serves both block sizes, and
    # the block powers come from one cumulative sum (fast.gated_loudness is the same gating).
    long = x.shape[0] >= 3 * SR
    z = fast.block_powers(fast.k_weighted(x, SR), SR, (0.4, 3.0) if long else (0.4,))
    lufs, blocks = fast.gated_loudness(z[0])
    if long:
        blocks = fast.gated_loudness(z[1])[1]
    if not np.isfinite(lufs):
        lufs = LUFS_FLOOR
    return {"loudness_lufs": max(lufs, LUFS_FLOOR), "loudness_range_lu": _loudness_range(blocks)}


def _loudness_range(blocks) -> float:
    st = np.asarray(blocks, dtype=np.float64)
    st = st[np.isfinite(st) & (st >= LUFS_FLOOR)]
    if st.size < 2:
        return 0.0
    mean_power = np.mean(10.0 ** (st / 10.0))
    st = st[st >= 10.0 * np.log10(mean_power) - 20.0]
    if st.size < 2:
        return 0.0
    p10, p95 = np.percentile(st, [10, 95])
    return float(p95 - p10)
