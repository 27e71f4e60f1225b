"""Helpers of the security tests: a small synthetic library (no audio analysis), a uvicorn server
with the service's own protocol limits, raw sockets, and a recorder of file-system access."""

from __future__ import annotations

import builtins
import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

USER, PASSWORD, API_KEY, TOKEN = "listener", "s3cret pässword", "sec-api-key-1234", "write-token-5678"
TITLES = ["Hum", "Drone", "bad\x01title", "Glow", "Tide", "Dust"]


def build_library(base: Path, *, n_artists: int = 6, per_artist: int = 4, dim: int = 16) -> dict:
    """A store of random vectors (``weights_kind='random'``) with real WAV files for the first tracks.

    One title holds a control character (``bad\\x01title``), as a file tag may.
    """
    from soundalike.store import Store

    rng = np.random.default_rng(0)
    root = base / "music"
    root.mkdir(parents=True)
    db = base / "lib.db"
    tracks = []
    with Store(db) as store:
        key = "synthetic-sec"
        store.register_model(model_key=key, backend="synthetic", config={"window": "middle:30", "default_layer": 0},
                             weights_sha256=None, weights_kind="random", dim=dim, n_layers=1)
        with store.transaction() as tx:
            for a in range(n_artists):
                centre = rng.standard_normal(dim) * 2
                for t in range(per_artist):
                    path = root / f"Artist {a}" / f"{t:02d}.wav"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    y = (0.2 * np.sin(2 * np.pi * (200 + 50 * a + 10 * t) * np.arange(4000) / 8000)).astype(np.float32)
                    sf.write(str(path), y, 8000)
                    tid = hashlib.sha256(path.read_bytes()).hexdigest()
                    title = TITLES[(a * per_artist + t) % len(TITLES)]
                    store.add_track(track_id=tid, path=str(path), artist=f"Artist {a}", title=title, album="Album",
                                    duration_s=0.5, genres=[f"genre{a % 3}"], db=tx)
                    v = (centre + 0.5 * rng.standard_normal(dim)).astype(np.float32)
                    store.put_embeddings(tx, track_id=tid, model_key=key, vectors=v[None, None, :])
                    tracks.append({"track_id": tid, "artist": f"Artist {a}", "title": title, "path": str(path)})
    return {"db": db, "root": root, "tracks": tracks}


def settings(db: Path, **kw):
    from soundalike.serve import Settings

    base = dict(db=db, subsonic_user=USER, subsonic_password=PASSWORD, api_key=API_KEY, api_token=TOKEN,
                reload_interval_s=0)
    base.update(kw)
    return Settings(**base)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LimitedServer:
    """uvicorn on a loopback port with :func:`soundalike.serve.server.uvicorn_config` (the ``serve`` command's)."""

    def __init__(self, app, settings) -> None:
        import uvicorn

        from soundalike.serve.server import uvicorn_config

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=self.port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LimitedServer":
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


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """``(closed by the server within seconds, bytes it sent)``."""
    s.settimeout(0.2)
    got = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:  # reset
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


class FileAccess:
    """Records every stat/open of a path containing `needle` (monkeypatched; restored by pytest)."""

    def __init__(self, monkeypatch, needle: str) -> None:
        self.needle = needle
        self.seen: list[str] = []
        for mod, name in ((os, "stat"), (os, "lstat"), (os, "open"), (builtins, "open"), (os.path, "exists"),
                          (os.path, "isfile")):
            monkeypatch.setattr(mod, name, self._wrap(getattr(mod, name), name))

    def _wrap(self, fn, name):
        def spy(path, *a, **kw):
            if self.needle in str(path):
                self.seen.append(f"{name}({path})")
            return fn(path, *a, **kw)

        return spy
