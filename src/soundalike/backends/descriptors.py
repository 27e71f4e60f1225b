"""``descriptors``: Spotify-style audio descriptors computed locally (no model weights).

Spotify withdrew its audio-features API for new applications in November 2024; this backend
measures comparable descriptors from the audio itself with librosa and pyloudnorm: tempo,
key and mode, loudness, the 0–1 scores (energy, danceability, valence, acousticness,
instrumentalness, speechiness — heuristic estimates) and spectral/timbre statistics.

The stored vector holds raw values on their own scales (BPM, LUFS, Hz, 0–1 …), in the fixed
order of :data:`FEATURE_NAMES`; compare vectors after per-feature standardisation (the
similarity module z-scores each feature over the library), never with raw cosine.
Every feature is described in ``docs/descriptors.md``.

This module imports only NumPy; librosa and pyloudnorm are imported when the backend first analyses
audio (a process that only needs the model key, e.g. the parent of analysis workers, never pays it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_audio, check_option
from ..errors import InvalidAudioError
from . import _descriptors_scores as _scores
from .base import Backend
from .registry import register_backend

__all__ = ["DescriptorsBackend", "FEATURE_NAMES", "FEATURE_VERSION"]

#: bump when any feature's definition changes (it is part of the model key)
FEATURE_VERSION = 1
#: STFT and mel parameters of the measurements (part of the model key; ``_descriptors_dsp`` uses them)
N_FFT, HOP, N_MELS = 2048, 512, 128

FEATURE_NAMES: tuple[str, ...] = (
    # rhythm
    "tempo_bpm",
    "tempo_confidence",
    "tempo_stability",
    "beat_salience",
    "onset_rate",
    "spectral_flux",
    # tonality
    "key_sin",
    "key_cos",
    "mode",
    "key_strength",
    # loudness and dynamics
    "loudness_lufs",
    "loudness_range_lu",
    "low_energy_ratio",
    "harmonic_ratio",
    # Spotify-style 0–1 scores (heuristic estimates)
    *_scores.SCORE_NAMES,
    # timbre
    "zcr_mean",
    "zcr_std",
    *(f"spectral_{s}_{stat}" for s in ("centroid", "bandwidth", "rolloff", "flatness") for stat in ("mean", "std")),
    *(f"spectral_contrast_{i}" for i in range(1, 8)),
    *(f"mfcc_{i:02d}_mean" for i in range(1, 14)),
    *(f"mfcc_{i:02d}_std" for i in range(1, 14)),
    *(f"chroma_{p}" for p in _scores.PITCH_CLASSES),
)


@register_backend("descriptors")
class DescriptorsBackend(Backend):
    """Hand-crafted audio descriptors (tempo, key, loudness, 0–1 scores, timbre statistics).

    Parameters
    ----------
    key_profile : {"albrecht-shanahan", "krumhansl-kessler"}
        Key profiles correlated with the chroma (Krumhansl–Schmuckler key finding).
        Albrecht & Shanahan's corpus profiles are the default: they named the key of more of
        the development chorales than Krumhansl & Kessler's probe-tone ratings.
    device : str
        Accepted for the common backend signature; only ``"cpu"`` is meaningful.

    Attributes
    ----------
    feature_names : list of str
        Name of each dimension of the vector, in order (length ``embedding_size``).

    Examples
    --------
    >>> import numpy as np
    >>> from soundalike.backends import load_backend
    >>> model = load_backend("descriptors")
    >>> t = np.arange(22050 * 5) / 22050
    >>> y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> model.embed_layers(y[None, :]).shape
    (1, 1, 75)
    >>> round(model.describe(y)["loudness_lufs"])
    -14
    """

    sample_rate = 22050
    extra = None
    requires = ("librosa", "pyloudnorm", "soundfile")
    # the DSP (librosa, numba kernels) imported and its first-clip costs paid once, in the forkserver
    worker_preload = ("soundalike.backends._descriptors_warm",)
    description = "Spotify-style descriptors (tempo, key, loudness, energy, timbre) via librosa; no weights"
    default_embedding_size = len(FEATURE_NAMES)
    min_duration_s = 0.5
    weights_kind = "none"
    weights_sha256 = None

    def __init__(self, *, key_profile: str = "albrecht-shanahan", device: str = "cpu") -> None:
        check_option("key_profile", key_profile, _scores.KEY_PROFILES)
        check_option("device", device, ("cpu", "auto"))  # DSP on the CPU; "auto" means the CPU here
        self.key_profile = key_profile
        self.device = device
        self.feature_names: list[str] = list(FEATURE_NAMES)
        self.embedding_size = len(FEATURE_NAMES)
        self.n_layers = 1
        self.default_layer = 0

    @property
    def _dsp(self):
        # Imported on first use: librosa and numba take about 2 s to start.
        from . import _descriptors_dsp

        return _descriptors_dsp

    def config(self) -> dict[str, Any]:
        return {
            "features": FEATURE_VERSION,
            "sample_rate": self.sample_rate,
            "n_fft": N_FFT,
            "hop_length": HOP,
            "n_mels": N_MELS,
            "key_profile": self.key_profile,
        }

    # --- inference -----------------------------------------------------------------------
    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Descriptor vector of every clip.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]
            Mono audio at 22050 Hz.

        Returns
        -------
        np.ndarray [shape=(n_clips, 1, len(feature_names)), dtype=float32]
            Raw values in the order of :attr:`feature_names`; always finite. Each clip is
            analysed on its own, so a batch gives the same rows as one clip at a time.
        """
        audio = check_audio(audio, ndim=2)
        out = np.empty((audio.shape[0], 1, self.embedding_size), dtype=np.float32)
        for i, y in enumerate(audio):
            out[i, 0] = self._vector(y)
        return out

    def describe(self, audio: np.ndarray) -> dict[str, float | str]:
        """Named, human-readable descriptors of one clip.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_samples,), dtype=float32]
            Mono audio at 22050 Hz.

        Returns
        -------
        dict
            ``"key"`` (e.g. ``"A minor"``) and every feature of :attr:`feature_names` as a
            float: ``tempo_bpm`` in BPM, ``loudness_lufs`` in LUFS, the 0–1 scores, …
        """
        audio = check_audio(audio, ndim=1)
        m = self._measure(audio)
        named: dict[str, float | str] = {"key": _scores.key_name(m.tonic, m.mode)}
        named.update({k: float(m.values[k]) for k in FEATURE_NAMES})
        return named

    # --- internals ---------------------------------------------------------------------
    def _measure(self, y: np.ndarray):
        if y.dtype != np.float32:
            y = y.astype(np.float32)
        m = self._dsp.measure(y, key_profile=self.key_profile)
        m.values.update(_scores.perceptual_scores(m.values))
        for k, x in m.values.items():
            if not np.isfinite(x):  # defensive: every path above is meant to be finite
                raise InvalidAudioError(f"descriptor {k!r} came out as {x}; please report this clip.")
        return m

    def _vector(self, y: np.ndarray) -> np.ndarray:
        values = self._measure(y).values
        return np.array([values[k] for k in FEATURE_NAMES], dtype=np.float32)
