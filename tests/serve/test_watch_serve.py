"""serve --library DIR --watch: a file copied into the library is answered by the running
service within 30 s, a deleted one disappears; `soundalike watch` stopped by Ctrl-C or kill -9
keeps what it committed and leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.ci_support import import_or_skip

from soundalike.library import file_sha256
from tests.serve.conftest import SR, _chirp, _tone


def _library(base: Path) -> tuple[Path, Path]:
    from soundalike.analysis import analyse
    from soundalike.backends import load_backend
    from soundalike.store import Store

    root = base / "music"
    for artist, ys in {"Low": [_tone(110, 3, 1), _tone(130, 3, 2)], "High": [_tone(880, 3, 3), _tone(990, 3, 4)],
                       "Chirp": [_chirp(3, 200, 4000), _chirp(3, 300, 6000)]}.items():
        for i, y in enumerate(ys):
            (root / artist).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / artist / f"t{i}.wav"), y, SR)
    db = base / "lib.db"
    with Store(db) as store:
        analyse(store, root, [load_backend("descriptors")])
    return root, db


def _wait(cond, seconds: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def test_watching_service_answers_new_tracks_and_drops_deleted(tmp_path):
    import_or_skip("watchfiles")
    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    root, db = _library(tmp_path)
    settings = Settings(db=db, library_root=root, watch=True, watch_settle_s=0.5, reload_interval_s=30.0,
                        api_token="tok")
    gone = root / "Low" / "t0.wav"
    gone_id = file_sha256(gone)
    # the write token is a credential: reads of the library need it too (serve/access.py)
    with TestClient(create_app(settings), base_url="http://localhost", headers={"Authorization": "Bearer tok"}) as client:
        assert client.get("/api/health").json()["n_tracks"] == 6
        r = client.post("/api/admin/rescan", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 409 and "watched" in r.json()["error"]["message"]  # one writer: the watcher
        (root / "New").mkdir()
        new = root / "New" / "fresh.wav"
        sf.write(str(tmp_path / "fresh.wav"), _tone(440, 3, 9), SR)
        os.replace(tmp_path / "fresh.wav", new)  # copied in
        tid = file_sha256(new)
        # answered: its similar tracks come from its stored vectors
        took = _wait(lambda: client.get(f"/api/tracks/{tid}/similar", params={"k": 3}).status_code == 200, 30)
        assert took < 30
        print(f"copied-in file answered after {took:.1f} s")
        assert len(client.get(f"/api/tracks/{tid}/similar", params={"k": 3}).json()["neighbours"]) == 3
        gone.unlink()
        _wait(lambda: client.get(f"/api/tracks/{gone_id}").status_code == 404, 30)
        assert client.get("/api/health").json()["n_tracks"] == 6


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (worker pools start theirs from a forkserver)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    kids = [int(x) for x in out.split()]
    return kids + [g for k in kids for g in _children(k)]


@pytest.mark.parametrize("sig,jobs", [(signal.SIGINT, 1), (signal.SIGKILL, 1), (signal.SIGKILL, 2)])
def test_watch_command_stopped_keeps_what_was_committed(tmp_path, sig, jobs):
    from soundalike.store import Store

    import_or_skip("watchfiles")
    root, db = _library(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "soundalike", "watch", str(root), "--db", str(db), "-b", "descriptors",
                             "--settle", "0.3", "--jobs", str(jobs)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        new = root / "Low" / "t9.wav"
        line = proc.stderr.readline()
        while "watching" not in line:
            assert line, "watch ended before it started"
            line = proc.stderr.readline()
        time.sleep(1.0)
        sf.write(str(new), _tone(150, 3, 12), SR)

        def stored() -> bool:
            with Store(db, readonly=True) as s:
                return str(new) in {t.path for t in s.tracks()}

        _wait(stored, 60)
        kids = _children(proc.pid)
        proc.send_signal(sig)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == (130 if sig == signal.SIGINT else -9)
    if jobs > 1:
        assert kids, "the worker processes were not found"
    deadline = time.monotonic() + 10  # orphaned workers notice their parent's death within moments
    while True:
        alive = [k for k in kids if os.path.exists(f"/proc/{k}")
                 and open(f"/proc/{k}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not alive, f"left running: {alive}"
    with Store(db) as s:  # the store opens writable and holds the committed track with its vectors
        tid = {t.path: t.track_id for t in s.tracks()}[str(new)]
        assert len(s.tracks()) == 7 and tid in s.embedded_track_ids(s.models()[0].model_key)
