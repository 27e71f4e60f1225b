"""A kill -9 mid-run loses at most the batch in flight and never corrupts the store; a rerun
computes only what is missing and ends with the counts of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import noise

pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "soundalike", *args]


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _rows(db: Path) -> dict[tuple, bytes]:
    con = sqlite3.connect(db)
    try:
        return {tuple(r[:4]): r[4] for r in con.execute("SELECT track_id, model_key, window, layer, vector FROM embeddings")}
    finally:
        con.close()


def test_kill9_then_rerun(tmp_path, write_audio):
    n = 12
    for i in range(n):
        write_audio(f"lib/Artist {i % 4}/t{i:02d}.wav", noise(6, seed=i, amp=0.1 + 0.01 * i))
    lib = tmp_path / "lib"
    killed, whole = tmp_path / "killed.db", tmp_path / "whole.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for db in (killed, whole):
        subprocess.run(_cli("ingest", str(lib), "--db", str(db), "--jobs", "1"), check=True, env=env, capture_output=True)

    embed = ("embed", "--backend", "descriptors", "--batch-size", "1", "--jobs", "1")
    # The uninterrupted run goes first: it also fills numba's on-disk cache, so the killed
    # process never dies while writing it.
    subprocess.run(_cli(*embed, "--db", str(whole)), env=env, check=True, capture_output=True)
    proc = subprocess.Popen(_cli(*embed, "--db", str(killed)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(killed, "SELECT COUNT(DISTINCT track_id) FROM embeddings") >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the library bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    con = sqlite3.connect(killed)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    before = _rows(killed)
    stored_tracks = len({k[0] for k in before})
    assert 3 <= stored_tracks < n

    rerun = subprocess.run(_cli(*embed, "--db", str(killed), "--json"), env=env, capture_output=True, text=True, check=True)
    summary = json.loads(rerun.stdout)
    assert summary["cached"] == stored_tracks and summary["done"] == n - stored_tracks
    after = _rows(killed)
    assert all(after[k] == v for k, v in before.items())  # nothing stored before the kill was rewritten differently

    for table in ("tracks", "embeddings", "failures", "models"):
        assert _count(killed, f"SELECT COUNT(*) FROM {table}") == _count(whole, f"SELECT COUNT(*) FROM {table}"), table
    assert _rows(killed).keys() == _rows(whole).keys()
