"""The service keeps answering from the committed state while ``embed`` writes the same file
(WAL), and serves the new vectors after its reload (issue 19)."""

from __future__ import annotations

import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from soundalike.backends import load_backend
from soundalike.pipeline import embed, ingest
from soundalike.serve import Settings, create_app
from soundalike.store import Store
from tests.conftest import noise, tone
from tests.faults._support import cli, tree_env

pytestmark = pytest.mark.slow


def test_serve_answers_during_embed_and_reloads(tmp_path, write_audio):
    for i in range(6):
        write_audio(f"early/Artist {i % 3}/t{i}.wav", noise(2, seed=i, amp=0.1 + 0.02 * i))
    for i in range(8):
        write_audio(f"late/Late Artist/t{i}.wav", tone(200 + 40 * i, 2))
    db = tmp_path / "lib.db"
    with Store(db) as s:
        ingest(s, tmp_path / "early")
        embed(s, [load_backend("descriptors")])
        ingest(s, tmp_path / "late")  # catalogued, no vectors yet
        late = [t.track_id for t in s.tracks() if t.artist == "Late Artist"]
        early_artist = next(a.artist_id for a in s.artists() if a.name == "Artist 0")
    env, _ = tree_env()
    with TestClient(create_app(Settings(db=db, reload_interval_s=0.3)), base_url="http://localhost") as client:
        assert client.get(f"/api/tracks/{late[0]}/similar").status_code != 200  # no vector yet
        writer = subprocess.Popen(cli("embed", "--db", str(db), "--backend", "descriptors", "--batch-size", "1",
                                      "--jobs", "1"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        answered = 0
        while writer.poll() is None:
            r = client.get(f"/api/artists/{early_artist}/similar")
            assert r.status_code == 200, r.text
            answered += 1
            time.sleep(0.02)
        assert writer.returncode == 0, writer.stderr.read()[-2000:]
        assert answered > 5
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = client.get(f"/api/tracks/{late[0]}/similar")
            if r.status_code == 200:
                break
            time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert any(n["artist"] == "Late Artist" for n in r.json()["neighbours"])
