"""Shared fixtures: a seeded rng, WAV factories on generated audio, a tmp store, ../shared.

Markers: ``slow``, ``integration`` (needs ../shared), ``browser``, and
``requires_import(name)``, which skips when a module is missing locally but FAILS when
``SOUNDALIKE_CI=1`` (so CI never silently skips what it must run).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 22050
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("SOUNDALIKE_CI") == "1"

# librosa jit-compiles with cache=True; a private cache per session keeps concurrent runs (and
# the kill -9 test) from reading each other's half-written cache files.
if "NUMBA_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="soundalike-numba-")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(name="requires_import"):
        for name in mark.args:
            if importlib.util.find_spec(name) is None:
                msg = f"requires the module {name!r}, which is not installed"
                if IN_CI:
                    pytest.fail(msg + " (SOUNDALIKE_CI=1: CI must install it)")
                pytest.skip(msg)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def tone(freq: float = 440.0, seconds: float = 3.0, *, sr: int = SR, amp: float = 0.3, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = sum(amp / (h + 1) * np.sin(2 * np.pi * freq * (h + 1) * t) for h in range(harmonics))
    return y.astype(np.float32)


def noise(seconds: float = 3.0, *, sr: int = SR, amp: float = 0.2, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def chirp(seconds: float = 3.0, *, sr: int = SR, f0: float = 200.0, f1: float = 4000.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.3 * np.sin(phase)).astype(np.float32)


@pytest.fixture
def write_audio(tmp_path: Path):
    """``write_audio("a/b.wav", y, sr=..., subtype=...)`` → path of the written file."""

    def _write(rel: str, y: np.ndarray, *, sr: int = SR, subtype: str | None = None, fmt: str | None = None) -> Path:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), y, sr, subtype=subtype, format=fmt)
        return p

    return _write


@pytest.fixture
def small_library(write_audio, tmp_path: Path) -> Path:
    """Three artists × two tracks of distinct generated audio, laid out Artist/Album/file."""
    specs = {
        "Tone Artist": [tone(220, 4), tone(330, 4)],
        "Noise Artist": [noise(4, seed=1), noise(4, seed=2, amp=0.3)],
        "Chirp Artist": [chirp(4), chirp(4, f0=300, f1=6000)],
    }
    for artist, ys in specs.items():
        for i, y in enumerate(ys):
            write_audio(f"lib/{artist}/Album/{i:02d}.flac" if i else f"lib/{artist}/Album/{i:02d}.wav", y)
    return tmp_path / "lib"


@pytest.fixture
def store(tmp_path: Path):
    from soundalike.store import Store

    s = Store(tmp_path / "library.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_music() -> Path:
    """../shared/data/music, or a skip that says it is absent."""
    p = SHARED / "data" / "music"
    if not (p / "manifest.csv").is_file():
        pytest.skip(f"development data not found at {p} (../shared is absent on this machine)")
    return p


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs, no dashboard) for the whole test session (CONTRACTS: CI budget)."""
    from ci_support import import_or_skip

    ray = import_or_skip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
