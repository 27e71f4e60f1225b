"""Fixtures of the ``models`` tests: a local hub (``_weights_hub.py``) and isolated weight folders."""

from __future__ import annotations

import pytest
from _weights_hub import FakeHub, start  # tests/models is on sys.path (pytest prepend mode)


@pytest.fixture
def hub():
    """A running FakeHub on 127.0.0.1 (a free port), stopped after the test."""
    state = FakeHub()
    server = start(state)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """Every place weights are looked for points into tmp_path; downloads time out after 2 s."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("SOUNDALIKE_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")
    monkeypatch.setattr(hf_constants, "HF_HUB_DOWNLOAD_TIMEOUT", 2)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path
