"""A small real library for the service tests: generated audio, ingested and embedded with the
``descriptors`` backend (DSP, no weights), built once per session; and a real uvicorn server."""

from __future__ import annotations

import csv
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 22050
USER, PASSWORD, API_KEY = "listener", "s3cret pässword", "test-api-key-123"


def _tone(f: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.3 / (h + 1) * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(3))
    return (y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _noise(seconds: float, seed: int, lowpass: int) -> np.ndarray:
    y = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    y = np.convolve(y, np.ones(lowpass) / lowpass, mode="same")
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _chirp(seconds: float, f0: float, f1: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))).astype(np.float32)


ARTISTS = {
    "Low Tones": ("ambient", [lambda: _tone(110, 4, 1), lambda: _tone(130, 4, 2), lambda: _tone(147, 4, 3)]),
    "High Tones": ("ambient", [lambda: _tone(880, 4, 4), lambda: _tone(990, 4, 5), lambda: _tone(1100, 4, 6)]),
    "The Noisemakers": ("noise", [lambda: _noise(4, 7, 1), lambda: _noise(4, 8, 2), lambda: _noise(4, 9, 1)]),
    "Chirpers": ("electronic", [lambda: _chirp(4, 200, 4000), lambda: _chirp(4, 300, 6000), lambda: _chirp(4, 150, 3000)]),
}


@pytest.fixture(scope="session")
def serve_library(tmp_path_factory) -> dict:
    """``{"db", "root", "clip"}``: 4 artists × 3 tracks, genres from a manifest, descriptors vectors."""
    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    base = tmp_path_factory.mktemp("serve-lib")
    root = base / "music"
    rows = []
    for artist, (genre, makers) in ARTISTS.items():
        for i, make in enumerate(makers):
            rel = f"{artist}/track{i}.{'flac' if i == 1 else 'wav'}"
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), make(), SR)
            rows.append({"path": f"music/{rel}", "artist": artist, "title": f"{artist} {i}", "genre": genre})
    manifest = base / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "artist", "title", "genre"])
        w.writeheader()
        w.writerows(rows)
    db = base / "lib.db"
    with Store(db) as store:
        ingest(store, root, manifest=manifest)
        embed(store, [load_backend("descriptors")])
    clip = base / "query.wav"
    sf.write(str(clip), _tone(115, 3, 11), SR)
    return {"db": db, "root": root, "clip": clip, "manifest": manifest}


@pytest.fixture(scope="session")
def client(serve_library):
    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    app = create_app(Settings(db=serve_library["db"], max_upload_bytes=512 * 1024))
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn on a free loopback port in a thread; ``url`` once it answers."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def subsonic_server(serve_library):
    from soundalike.serve import Settings, create_app

    settings = Settings(db=serve_library["db"], subsonic_user=USER, subsonic_password=PASSWORD, api_key=API_KEY)
    with ServerThread(create_app(settings)) as srv:
        yield srv


@pytest.fixture(scope="session")
def account() -> tuple[str, str, str]:
    """(user, password, api key) of the Subsonic test server."""
    return USER, PASSWORD, API_KEY
