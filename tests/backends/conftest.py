"""Shared fixtures of the backend tests: generated audio and helpers for optional imports."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest


def need(*modules: str) -> None:
    """Skip when a module is missing; fail instead under CI (``SOUNDALIKE_CI=1``)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"needs {', '.join(missing)}"
        if os.environ.get("SOUNDALIKE_CI") == "1":
            pytest.fail(msg + " (SOUNDALIKE_CI=1: optional imports are required)")
        pytest.skip(msg)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def sine(freq: float, duration_s: float, sr: int, *, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(duration_s * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def chirp(duration_s: float, sr: int, *, f0: float = 100.0, f1: float = 4000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(duration_s * sr))) / sr
    k = (f1 - f0) / duration_s
    return (amp * np.sin(2 * np.pi * (f0 * t + 0.5 * k * t**2))).astype(np.float32)


def clips(sr: int, duration_s: float, n: int = 3, seed: int = 0) -> np.ndarray:
    """A batch of different clips (sine, noise, chirp, ...) of equal length."""
    r = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            x = sine(220.0 * (i + 1), duration_s, sr)
        elif kind == 1:
            x = (0.2 * r.standard_normal(int(round(duration_s * sr)))).astype(np.float32)
        else:
            x = chirp(duration_s, sr, f0=80.0 + 40 * i)
        out.append(x)
    return np.stack(out).astype(np.float32)


class _Gen:
    """Audio factories as a fixture (tests import nothing from conftest)."""

    sine = staticmethod(sine)
    chirp = staticmethod(chirp)
    clips = staticmethod(clips)
    need = staticmethod(need)


@pytest.fixture
def gen() -> type[_Gen]:
    """``gen.sine(freq, dur, sr)``, ``gen.chirp(dur, sr)``, ``gen.clips(sr, dur, n)``, ``gen.need(mod)``."""
    return _Gen


@pytest.fixture
def isolated_weights(tmp_path, monkeypatch):
    """No test finds weights on this machine by accident: the caches point at empty folders
    (``$HF_HUB_CACHE`` = ``tmp_path/_hf_cache``, ``$TORCH_HOME`` = ``tmp_path/_torch_home``)."""
    monkeypatch.delenv("SOUNDALIKE_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "_hf_cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "_torch_home"))
