"""Formulas of the ``descriptors`` backend that are not DSP: key finding, the tempo octave
rule and the 0–1 Spotify-style scores (NumPy only).

Every constant here is documented in ``docs/descriptors.md``; the 0–1 scores are heuristic
estimates, not trained models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Key profiles (major, minor), tonic first.
KEY_PROFILES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    # Albrecht & Shanahan (2013), "The use of large corpora to train a new type of key-finding
    # algorithm", Music Perception 31(1): pitch-class distributions of a classical corpus.
    "albrecht-shanahan": (
        np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
        np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
    ),
    # Krumhansl & Kessler (1982) probe-tone ratings (Krumhansl 1990, table 4.1).
    "krumhansl-kessler": (
        np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
        np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    ),
}


def _clip01(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


# --- key ------------------------------------------------------------------------------------
def estimate_key(chroma_mean: np.ndarray, *, profile: str = "albrecht-shanahan") -> tuple[int, int, float]:
    """Krumhansl–Schmuckler key finding.

    The mean chroma vector is correlated (Pearson) with the 12 rotations of the major and
    minor key profiles; the best of the 24 is the key.

    Parameters
    ----------
    chroma_mean : np.ndarray [shape=(12,)]   pitch-class weights, C first
    profile : {"albrecht-shanahan", "krumhansl-kessler"}   a key of :data:`KEY_PROFILES`

    Returns
    -------
    tonic : int        pitch class of the tonic, 0 = C
    mode : int         1 major, 0 minor
    strength : float   the best correlation, in [-1, 1]; 0 when the chroma is flat (no key)
    """
    x = np.asarray(chroma_mean, dtype=np.float64)
    x = x - x.mean()
    if not np.any(np.abs(x) > 1e-12):
        return 0, 1, 0.0
    x /= np.linalg.norm(x)
    best = (-2.0, 0, 1)
    major, minor = KEY_PROFILES[profile]
    for mode, prof in ((1, major), (0, minor)):
        p = prof - prof.mean()
        p = p / np.linalg.norm(p)
        for tonic in range(12):
            r = float(np.dot(x, np.roll(p, tonic)))
            # strict '>' keeps the first of exact ties (major before minor, C upward): deterministic
            if r > best[0] + 1e-12:
                best = (r, tonic, mode)
    return best[1], best[2], best[0]


def key_circle(tonic: int, mode: int) -> tuple[float, float]:
    """Key signature as a point on the circle of fifths: ``(sin, cos)``.

    A minor key is placed at its relative major (A minor with C major), so keys that share
    their notes share a point and ``mode`` tells them apart. C major / A minor is at angle 0,
    G major / E minor one twelfth of a turn further, and so on.
    """
    signature = tonic if mode == 1 else (tonic + 3) % 12
    fifths = (7 * signature) % 12
    angle = 2.0 * np.pi * fifths / 12.0
    return float(np.sin(angle)), float(np.cos(angle))


def key_name(tonic: int, mode: int) -> str:
    """``"A minor"``, ``"C major"``."""
    return f"{PITCH_CLASSES[tonic]} {'major' if mode == 1 else 'minor'}"


# --- tempo ----------------------------------------------------------------------------------
def octave_rule(
    bpm: float,
    strength: Callable[[float], float],
    *,
    preferred: tuple[float, float] = (70.0, 180.0),
    ratio: float = 0.5,
) -> float:
    """Halve or double a tempo estimate towards the preferred range.

    Above ``preferred[1]`` the tempo is halved while the onset autocorrelation at the doubled
    period, ``strength(bpm / 2)``, is at least ``ratio`` times ``strength(bpm)``; below
    ``preferred[0]`` it is doubled under the same condition on ``strength(2 * bpm)``. A move
    is made only when the music shows a pulse at the new period, so a 60 BPM click track
    (no onsets between the clicks) stays at 60.
    """
    lo, hi = preferred
    for _ in range(3):  # at most three octaves
        if bpm > hi and strength(bpm / 2.0) >= ratio * strength(bpm):
            bpm /= 2.0
        elif 0 < bpm < lo and bpm * 2.0 <= hi and strength(bpm * 2.0) >= ratio * strength(bpm):
            bpm *= 2.0
        else:
            break
    return float(bpm)


# --- 0–1 scores -----------------------------------------------------------------------------
SCORE_NAMES = ("energy", "danceability", "valence", "acousticness", "instrumentalness", "speechiness")


def perceptual_scores(v: dict[str, float]) -> dict[str, float]:
    """Spotify-style 0–1 scores from the raw measurements (heuristic estimates).

    The mappings and their constants are listed in docs/descriptors.md; they were set by
    inspection on generated audio and the development clips, not fitted to Spotify's values.
    """
    if v["loudness_lufs"] <= -70.0:  # at or below the BS.1770 absolute gate: silence
        return dict.fromkeys(SCORE_NAMES, 0.0)
    tempo = v["tempo_bpm"]
    # shared terms, each 0..1
    loud = _clip01((v["loudness_lufs"] + 30.0) / 22.0)  # -30 LUFS -> 0, -8 LUFS -> 1
    compressed = 1.0 - _clip01(v["loudness_range_lu"] / 20.0)  # small loudness range
    bright = _clip01((v["spectral_centroid_mean"] - 500.0) / 3000.0)
    noisy = _clip01(v["spectral_flatness_mean"] / 0.05)
    onsets = _clip01(v["onset_rate"] / 6.0)
    flux = _clip01(v["spectral_flux"] / 2.0)
    pulse = _clip01(v["tempo_confidence"] / 0.6)
    beat = _clip01((v["beat_salience"] - 1.0) / 4.0)  # onset strength on beats / overall
    tempo_pref = float(np.exp(-0.5 * (np.log2(tempo / 120.0) / 0.35) ** 2)) if tempo > 0 else 0.0
    tonal = _clip01(v["key_strength"] / 0.8)
    harmonic = _clip01((v["harmonic_ratio"] - 0.3) / 0.5)

    energy = 0.45 * loud + 0.10 * compressed + 0.15 * bright + 0.10 * noisy + 0.10 * onsets + 0.10 * flux
    dance = 0.30 * pulse + 0.25 * beat + 0.25 * v["tempo_stability"] + 0.20 * tempo_pref
    mode_term = 0.5 + (v["mode"] - 0.5) * tonal  # 0.5 when there is no clear key
    fast = _clip01((tempo - 60.0) / 120.0)
    valence = 0.45 * mode_term + 0.20 * fast + 0.20 * dance + 0.15 * (1.0 - noisy)

    acoustic = 0.35 * harmonic + 0.25 * (1.0 - noisy) + 0.20 * (1.0 - loud) + 0.20 * (1.0 - bright)

    # Speech (Scheirer & Slaney 1997 cues): many low-energy frames (pauses), strongly varying
    # zero-crossing rate (voiced/unvoiced alternation), no stable key, no steady pulse.
    zcr_cv = v["zcr_std"] / (v["zcr_mean"] + 1e-10)
    speech = (
        0.35 * _clip01((v["low_energy_ratio"] - 0.3) / 0.4)
        + 0.25 * _clip01((zcr_cv - 0.3) / 1.0)
        + 0.20 * (1.0 - tonal)
        + 0.20 * (1.0 - pulse)
    )
    # No vocal detector here: a proxy for "no voice" from harmonic, tonal, low-variation
    # timbre; musicnn's vocal/instrumental tags are the better signal.
    centroid_cv = v["spectral_centroid_std"] / (v["spectral_centroid_mean"] + 1e-10)
    instrumental = 0.5 * (1.0 - speech) + 0.25 * (1.0 - _clip01((zcr_cv - 0.3) / 1.0)) + 0.25 * (
        1.0 - _clip01((centroid_cv - 0.2) / 0.6)
    )
    out = {
        "energy": energy,
        "danceability": dance,
        "valence": valence,
        "acousticness": acoustic,
        "instrumentalness": instrumental,
        "speechiness": speech,
    }
    return {k: _clip01(x) for k, x in out.items()}
