"""The ``descriptors`` backend on generated audio (and, marked integration, on ../shared clips)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from soundalike.backends import available_backends, backend_class, load_backend
from soundalike.backends import _descriptors_scores as scores
from soundalike.backends.descriptors import FEATURE_NAMES
from soundalike.errors import InvalidAudioError, ParameterError

SR = 22050
MUSIC = Path(__file__).resolve().parents[3] / "shared" / "data" / "music"


# --- generated audio ------------------------------------------------------------------------
def midi_hz(n: int) -> float:
    return 440.0 * 2.0 ** ((n - 69) / 12.0)


def note(pitches: tuple[int, ...], seconds: float, *, amp: float = 0.25) -> np.ndarray:
    """A decaying tone with two harmonics per MIDI pitch, like a plucked chord."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * midi_hz(p) * t) + 0.3 * np.sin(4 * np.pi * midi_hz(p) * t) for p in pitches)
    env = np.minimum(1.0, t / 0.02) * np.exp(-1.5 * t)
    return (amp * env * y / len(pitches)).astype(np.float32)


def sequence(chords: list[tuple[int, ...]], seconds: float, repeats: int = 3) -> np.ndarray:
    """The chords in turn, `repeats` times, exactly ``len(chords) * seconds * repeats`` long."""
    y = np.concatenate([note(c, seconds) for c in chords] * repeats)
    return np.resize(y, int(round(len(chords) * seconds * repeats * SR)))


def click_track(bpm: float, seconds: float = 12.0) -> np.ndarray:
    import librosa

    times = np.arange(0.0, seconds, 60.0 / bpm)
    return (0.5 * librosa.clicks(times=times, sr=SR, length=int(seconds * SR))).astype(np.float32)


C_MAJOR_CADENCE = [(48, 60, 64, 67), (53, 60, 65, 69), (55, 62, 67, 71), (48, 60, 64, 67)]  # I IV V I
A_MINOR_CADENCE = [(45, 57, 60, 64), (50, 57, 62, 65), (52, 56, 59, 64), (45, 57, 60, 64)]  # i iv V i
C_MAJOR_SCALE = [(p,) for p in (60, 62, 64, 65, 67, 69, 71, 72)]


@pytest.fixture(scope="module")
def model():
    return load_backend("descriptors")


# --- contract ------------------------------------------------------------------------------
def test_registered_with_its_names(model):
    assert "descriptors" in available_backends()
    cls = backend_class("descriptors")
    status = cls.status()
    assert status.status == "ready" and status.weights_kind == "none" and status.sample_rate == 22050
    assert cls.default_embedding_size == len(FEATURE_NAMES) == model.embedding_size
    assert model.feature_names == list(FEATURE_NAMES)
    assert len(set(model.feature_names)) == len(model.feature_names)
    assert model.weights_kind == "none" and model.n_layers == 1


def test_module_import_does_not_import_librosa():
    code = (
        "import sys, soundalike.backends.descriptors as d; "
        "print(len(d.FEATURE_NAMES), 'librosa' in sys.modules, 'pyloudnorm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(FEATURE_NAMES)), "False", "False"]


def test_vector_shape_dtype_finite_batch_equals_one_by_one(model, rng):
    batch = np.stack(
        [
            sequence(C_MAJOR_CADENCE, 0.75, repeats=2),
            (0.1 * rng.standard_normal(6 * SR)).astype(np.float32),
            click_track(100, 6.0),
        ]
    )
    out = model.embed_layers(batch)
    assert out.shape == (3, 1, len(model.feature_names)) and out.dtype == np.float32
    assert np.isfinite(out).all()
    one_by_one = np.concatenate([model.embed_layers(x[None, :]) for x in batch])
    np.testing.assert_allclose(out, one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, model.embed_layers(batch))  # deterministic
    scene = model.get_scene_embeddings(batch)
    assert scene.shape == (3, len(FEATURE_NAMES))


def test_describe_names_every_feature_and_the_key(model):
    d = model.describe(sequence(C_MAJOR_CADENCE, 0.75, repeats=2))
    assert set(FEATURE_NAMES) <= set(d) and isinstance(d["key"], str)
    vec = model.embed_layers(sequence(C_MAJOR_CADENCE, 0.75, repeats=2)[None, :])[0, 0]
    np.testing.assert_allclose(vec, [d[k] for k in FEATURE_NAMES], rtol=1e-6, atol=1e-6)
    for k in scores.SCORE_NAMES:
        assert 0.0 <= d[k] <= 1.0, k


def test_rejects_bad_input_and_options(model):
    with pytest.raises(InvalidAudioError, match="dtype"):
        model.embed_layers(np.zeros((1, SR), dtype=np.int16))
    with pytest.raises(InvalidAudioError, match="dimensions"):
        model.embed_layers(np.zeros((1, 1, SR), dtype=np.float32))
    with pytest.raises(InvalidAudioError, match="NaN"):
        model.embed_layers(np.full((1, SR), np.nan, dtype=np.float32))
    with pytest.raises(InvalidAudioError, match="dimensions"):
        model.describe(np.zeros((2, SR), dtype=np.float32))
    with pytest.raises(ParameterError, match="key_profile"):
        load_backend("descriptors", key_profile="temperley")


def test_key_profile_is_part_of_the_model_key(model):
    kk = load_backend("descriptors", key_profile="krumhansl-kessler")
    assert kk.config()["key_profile"] == "krumhansl-kessler"
    assert kk.model_key != model.model_key


# --- tempo ---------------------------------------------------------------------------------
def test_click_track_120_bpm(model):
    d = model.describe(click_track(120))
    assert d["tempo_bpm"] == pytest.approx(120, rel=0.03)
    assert d["tempo_confidence"] > 0.5 and d["tempo_stability"] > 0.9


def test_click_track_60_bpm_is_not_doubled_or_halved(model):
    # No onsets between the clicks: the octave rule finds no pulse at 120 and keeps 60.
    d = model.describe(click_track(60))
    assert d["tempo_bpm"] == pytest.approx(60, rel=0.03)


def test_octave_rule():
    def pulse_at(*bpms):
        return lambda b: 1.0 if any(abs(b / x - 1) < 0.02 for x in bpms) else 0.0

    assert scores.octave_rule(240.0, pulse_at(240, 120)) == 120.0  # halved into range
    assert scores.octave_rule(240.0, pulse_at(240)) == 240.0  # no pulse at 120: kept
    assert scores.octave_rule(50.0, pulse_at(50, 100)) == 100.0  # doubled into range
    assert scores.octave_rule(50.0, pulse_at(50)) == 50.0
    assert scores.octave_rule(120.0, pulse_at(120, 60, 240)) == 120.0  # in range: untouched


def test_no_pulse_gives_tempo_zero(model):
    t = np.arange(5 * SR) / SR
    d = model.describe((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert d["tempo_bpm"] == 0.0 and d["tempo_confidence"] == 0.0


# --- key -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("chords", "seconds", "expected"),
    [
        (C_MAJOR_CADENCE, 1.0, "C major"),
        (C_MAJOR_SCALE, 0.5, "C major"),
        ([(60, 64, 67)], 4.0, "C major"),  # a lone triad
        (A_MINOR_CADENCE, 1.0, "A minor"),
    ],
)
def test_key(model, chords, seconds, expected):
    d = model.describe(sequence(chords, seconds, repeats=1 if len(chords) == 1 else 3))
    assert d["key"] == expected
    assert d["key_strength"] > 0.5


def test_relative_keys_share_a_point_on_the_circle_of_fifths(model):
    c = model.describe(sequence(C_MAJOR_CADENCE, 1.0))
    a = model.describe(sequence(A_MINOR_CADENCE, 1.0))
    assert (c["mode"], a["mode"]) == (1.0, 0.0)
    assert c["key_sin"] == pytest.approx(a["key_sin"], abs=1e-6)
    assert c["key_cos"] == pytest.approx(a["key_cos"], abs=1e-6)


def test_key_circle_positions():
    assert scores.key_circle(0, 1) == pytest.approx((0.0, 1.0), abs=1e-9)  # C major
    assert scores.key_circle(9, 0) == pytest.approx((0.0, 1.0), abs=1e-9)  # A minor
    g = scores.key_circle(7, 1)  # G major: one fifth clockwise
    assert g == pytest.approx((np.sin(np.pi / 6), np.cos(np.pi / 6)))
    f = scores.key_circle(5, 1)  # F major: one fifth anticlockwise
    assert f == pytest.approx((-np.sin(np.pi / 6), np.cos(np.pi / 6)))
    assert scores.key_name(9, 0) == "A minor" and scores.key_name(1, 1) == "C# major"


# --- loudness, energy, timbre --------------------------------------------------------------
def test_plus_6_db_raises_loudness_by_6_lu_and_energy(model, rng):
    y = sequence(C_MAJOR_CADENCE, 0.75, repeats=2) + (0.01 * rng.standard_normal(6 * SR)).astype(np.float32)
    quiet, loud = model.describe(y), model.describe(2.0 * y)
    assert loud["loudness_lufs"] - quiet["loudness_lufs"] == pytest.approx(6.02, abs=0.1)
    assert loud["energy"] > quiet["energy"]


def test_noise_is_flatter_than_a_sine(model, rng):
    t = np.arange(4 * SR) / SR
    sine = model.describe((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    noise = model.describe((0.1 * rng.standard_normal(4 * SR)).astype(np.float32))
    assert noise["spectral_flatness_mean"] > 10 * sine["spectral_flatness_mean"]
    assert noise["zcr_mean"] > sine["zcr_mean"]
    assert sine["harmonic_ratio"] > noise["harmonic_ratio"]
    assert sine["acousticness"] > noise["acousticness"]


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Syllables: a band-passed glottal buzz with gliding pitch, a fricative hiss, a pause."""
    import scipy.signal as sg

    parts, n_total = [], 0
    band = sg.butter(2, [300, 3000], btype="band", fs=SR)
    high = sg.butter(2, 4000, btype="high", fs=SR)
    while n_total < seconds * SR:
        n = int(rng.uniform(0.12, 0.25) * SR)
        f0 = rng.uniform(100, 180) * (1 + 0.2 * np.arange(n) / SR)
        voiced = sg.lfilter(*band, sg.sawtooth(2 * np.pi * np.cumsum(f0) / SR)) * np.hanning(n)
        nf = int(rng.uniform(0.03, 0.1) * SR)
        hiss = 0.3 * sg.lfilter(*high, rng.standard_normal(nf)) * np.hanning(nf)
        parts += [voiced, hiss, np.zeros(int(rng.uniform(0.05, 0.3) * SR))]
        n_total += n + nf + len(parts[-1])
    y = np.concatenate(parts)[: int(seconds * SR)]
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_speech_like_audio_scores_higher_speechiness_than_music(model, rng):
    speech = model.describe(speech_like(8.0, rng))
    music = model.describe(sequence(A_MINOR_CADENCE, 1.0, repeats=2))
    assert speech["speechiness"] > 0.4 > music["speechiness"]
    assert speech["instrumentalness"] < music["instrumentalness"]


# --- edge cases ----------------------------------------------------------------------------
def test_short_clip_is_finite_without_rhythm(model):
    y = note((57, 60, 64), 0.5)
    vec = model.embed_layers(y[None, :])
    assert np.isfinite(vec).all()
    d = model.describe(y)
    assert d["tempo_bpm"] == 0.0  # documented: rhythm needs >= 3 s
    assert -40.0 < d["loudness_lufs"] < 0.0


def test_clip_shorter_than_one_loudness_block(model):
    t = np.arange(SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    full, short = model.describe(y), model.describe(y[: int(0.25 * SR)])
    assert short["loudness_lufs"] == pytest.approx(full["loudness_lufs"], abs=0.5)


def test_silence_is_finite_and_documented(model):
    vec = model.embed_layers(np.zeros((1, 3 * SR), dtype=np.float32))
    assert np.isfinite(vec).all()
    d = dict(zip(FEATURE_NAMES, vec[0, 0]))
    assert d["loudness_lufs"] == -70.0 and d["tempo_bpm"] == 0.0
    assert all(d[k] == 0.0 for k in scores.SCORE_NAMES)


# --- development clips ---------------------------------------------------------------------
# Key signatures (accidentals) and modes from the music21 corpus scores of the clips.
CHORALE_KEYS = {
    "bwv101_7": "D minor",
    "bwv102_7": "G minor",
    "bwv103_6": "B minor",
    "bwv104_6": "A major",
    "bwv10_7": "G minor",
    "bwv1_6": "F major",
}


@pytest.fixture(scope="module")
def shared_clips():
    manifest = MUSIC / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"development data not found at {MUSIC} (../shared beside the repository)")
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        artist: [MUSIC / r["path"] for r in rows if r["artist"] == artist]
        for artist in ("Johann Sebastian Bach", "Giovanni Pierluigi da Palestrina", "Obsidian Shell")
    }


@pytest.mark.integration
def test_metal_is_louder_and_more_energetic_than_chorales(model, shared_clips):
    from soundalike.audio import load

    def describe_all(paths):
        assert len(paths) == 6
        return [model.describe(load(p, sr=SR)[0]) for p in paths]

    classical = describe_all(shared_clips["Johann Sebastian Bach"]) + describe_all(
        shared_clips["Giovanni Pierluigi da Palestrina"]
    )
    metal = describe_all(shared_clips["Obsidian Shell"])

    def mean(ds, k):
        return float(np.mean([d[k] for d in ds]))

    assert mean(metal, "energy") > mean(classical, "energy") + 0.15
    assert mean(metal, "loudness_lufs") > mean(classical, "loudness_lufs") + 6.0
    assert mean(metal, "acousticness") < mean(classical, "acousticness")

    # Key signature (circle-of-fifths position) right on most chorales; relative keys and the
    # chorales' modal endings are the known confusions (docs/descriptors.md).
    bach = dict(zip((p.stem.split("__")[1] for p in shared_clips["Johann Sebastian Bach"]), classical[:6]))
    hits = 0
    for stem, truth in CHORALE_KEYS.items():
        tonic, mode = scores.PITCH_CLASSES.index(truth.split()[0]), int(truth.endswith("major"))
        expected = scores.key_circle(tonic, mode)
        hits += bool(np.allclose((bach[stem]["key_sin"], bach[stem]["key_cos"]), expected, atol=1e-6))
    assert hits >= 4, {s: bach[s]["key"] for s in CHORALE_KEYS}
