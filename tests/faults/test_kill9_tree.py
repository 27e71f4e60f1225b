"""kill -9 of ``soundalike run`` at several points: no process of its tree outlives it, the store
passes ``integrity_check``, and the rerun ends equal to a clean run (issue 19)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import noise
from tests.faults._support import cli, count, integrity, rows, tagged, tree_env, wait_gone

pytestmark = pytest.mark.slow

N_TRACKS = 24

# (name, condition on the store that means the run reached that point)
POINTS = [
    ("ingest", "SELECT COUNT(*) FROM runs WHERE run_id > {runs}"),
    ("embed", f"SELECT COUNT(DISTINCT track_id) >= 16 FROM embeddings"),
    ("report", "SELECT COUNT(*) FROM runs WHERE run_id > {runs} AND finished IS NOT NULL"),
]


def _run_args(lib: Path, db: Path, out: Path) -> list[str]:
    return ["run", str(lib), "--db", str(db), "--backend", "descriptors", "--jobs", "2", "--out", str(out)]


def test_kill9_run_leaves_nothing_behind_and_reruns_equal(tmp_path, write_audio):
    for i in range(N_TRACKS):
        write_audio(f"lib/Artist {i % 5}/t{i:02d}.wav", noise(3, seed=i, amp=0.1 + 0.005 * i))
    lib, killed, clean = tmp_path / "lib", tmp_path / "killed.db", tmp_path / "clean.db"
    env, _ = tree_env()
    # The clean run first: it also fills numba's cache, so no kill lands while that is written.
    subprocess.run(cli(*_run_args(lib, clean, tmp_path / "out-clean")), env=env, check=True, capture_output=True)

    reached = []
    for name, sql in POINTS:
        env, tag = tree_env()
        runs_before = count(killed, "SELECT MAX(run_id) FROM runs")
        proc = subprocess.Popen(cli(*_run_args(lib, killed, tmp_path / "out")), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        hit = False
        while time.monotonic() < deadline and proc.poll() is None:
            if count(killed, sql.format(runs=runs_before)):
                hit = True
                break
            time.sleep(0.01)
        tree = tagged(tag)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        survivors, waited = wait_gone(tag, timeout_s=5.0)
        assert not survivors, f"kill -9 at {name}: still alive after {waited:.1f} s: {survivors}"
        assert integrity(killed) == "ok", name
        if hit:
            reached.append((name, len(tree)))
    # The decode pool was up (forkserver, tracker, workers) at least at the embed kill.
    assert [n for n, _ in reached][:2] == ["ingest", "embed"], reached
    assert dict(reached)["embed"] >= 4, reached

    env, tag = tree_env()
    subprocess.run(cli(*_run_args(lib, killed, tmp_path / "out")), env=env, check=True, capture_output=True)
    assert not wait_gone(tag, timeout_s=5.0)[0]
    for table in ("tracks", "embeddings", "models", "windows"):
        assert count(killed, f"SELECT COUNT(*) FROM {table}") == count(clean, f"SELECT COUNT(*) FROM {table}"), table
    a, b = rows(killed), rows(clean)
    assert a.keys() == b.keys() and len(a) >= N_TRACKS
    for k, v in a.items():
        np.testing.assert_allclose(np.frombuffer(v, "<f4"), np.frombuffer(b[k], "<f4"), rtol=1e-5, atol=1e-6)
    assert (tmp_path / "out" / "report.json").is_file()


def test_kill9_serve_leaves_nothing_behind(tmp_path, write_audio):
    import socket

    import httpx

    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    for i in range(4):
        write_audio(f"lib/Artist {i % 2}/t{i}.wav", noise(2, seed=i))
    db = tmp_path / "lib.db"
    with Store(db) as s:
        ingest(s, tmp_path / "lib")
        embed(s, [load_backend("descriptors")])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env, tag = tree_env()
    proc = subprocess.Popen(cli("serve", "--db", str(db), "--port", str(port)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("soundalike serve did not come up within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    survivors, waited = wait_gone(tag, timeout_s=5.0)
    assert not survivors, f"still alive after {waited:.1f} s: {survivors}"
