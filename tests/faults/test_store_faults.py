"""Faults the store meets in the field, each one clear line with nothing lost (issue 19): a full
disk during embed, a database locked by another writer, a read-only database for the service,
and stale temporaries of killed processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time

import pytest
from ci_support import skip_or_fail

from soundalike._lifecycle import pid_alive, remove_stale_temporaries
from soundalike.backends import load_backend
from soundalike.errors import StoreBusyError, StoreFullError
from soundalike.pipeline import embed, ingest
from soundalike.store import Store
from tests.conftest import noise
from tests.faults._support import cli, integrity, tree_env


def _library(write_audio, n: int = 12, seconds: float = 2.0):
    for i in range(n):
        write_audio(f"lib/Artist {i % 3}/t{i:02d}.wav", noise(seconds, seed=i, amp=0.1 + 0.01 * i))


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_disk_full_stops_keeps_commits_and_resumes(tmp_path, write_audio):
    _library(write_audio, n=12)
    db = tmp_path / "lib.db"
    backend = load_backend("descriptors")
    with Store(db) as s:
        ingest(s, tmp_path / "lib")
        embed(s, [backend], batch_size=2, track_ids=[t.track_id for t in s.tracks()[:1]])  # model registered, 1 track
        s.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = s.execute("PRAGMA page_count").fetchone()[0]
    # SQLite's own size limit plays the full disk: what is left in the last pages, no new page
    s = Store(db)
    s._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreFullError) as info:
        embed(s, [backend], batch_size=2)
    s.close()
    message = str(info.value)
    assert "\n" not in message and "disk is full" in message and "rerun" in message and str(db) in message
    assert integrity(db) == "ok"
    with Store(db) as s:
        kept = len(s.embedded_track_ids(s.models()[0].model_key))
        assert 1 <= kept < 12
        again = embed(s, [backend], batch_size=2)  # space freed: the next run resumes
        assert (again.cached, again.done) == (kept, 12 - kept)


def test_locked_database_waits_then_says_so(tmp_path, write_audio):
    _library(write_audio, n=2)
    db = tmp_path / "lib.db"
    Store(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        s = Store(db, busy_timeout_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(StoreBusyError) as info:
            with s.transaction():
                pass
        assert 0.4 < time.monotonic() - t0 < 10
        assert "locked by another writer" in str(info.value) and "\n" not in str(info.value)
        s.close()
        env, _ = tree_env()
        r = subprocess.run(cli("ingest", str(tmp_path / "lib"), "--db", str(db), "--jobs", "1"),
                           env={**env, "SOUNDALIKE_BUSY_TIMEOUT_S": "1"}, capture_output=True, text=True, timeout=300)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "locked by another writer" in errors[0] and "Traceback" not in r.stderr


def _can_bind_read_only() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_read_only_database_serves(tmp_path, write_audio):
    _library(write_audio, n=6)
    folder = tmp_path / "ro"
    db = folder / "lib.db"
    with Store(db) as s:
        ingest(s, tmp_path / "lib")
        embed(s, [load_backend("descriptors")])
    env, _ = tree_env()
    serve = cli("serve", "--db", str(db), "--get", "/api/artists")
    if os.geteuid() != 0:  # permissions stop an ordinary user
        folder.chmod(0o555)
        db.chmod(0o444)
        try:
            r = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=300)
        finally:
            folder.chmod(0o755)
    elif _can_bind_read_only():  # root ignores permissions: mount the folder read-only instead
        script = (f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' && "
                  f"! touch '{folder}/probe' 2>/dev/null && exec \"$@\"")
        r = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *serve], env=env, capture_output=True,
                           text=True, timeout=300)
    else:
        skip_or_fail("running as root without user namespaces: no way to make a folder read-only here")
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"Artist 0"' in r.stdout and "Traceback" not in r.stderr


def test_stale_temporaries_are_removed_at_open(tmp_path):
    import tempfile

    db = tmp_path / "lib.db"
    Store(db).close()
    dead, live = _dead_pid(), os.getppid()
    assert not pid_alive(dead) and pid_alive(live)
    idx = tmp_path / "lib.db.indexes"
    idx.mkdir()
    stale = [idx / f"tracks-k-layer0.faiss.tmp{dead}", idx / f"tracks-k-layer0.faiss.json.tmp{dead}"]
    kept = [idx / f"tracks-k-layer0.faiss.tmp{live}", idx / "tracks-k-layer0.faiss"]
    for p in stale + kept:
        p.write_bytes(b"half")
    upload = tempfile.mkdtemp(prefix=f"soundalike-query-{dead}-")
    (open(os.path.join(upload, "clip.wav"), "wb")).close()
    Store(db, readonly=True).close()
    assert not any(p.exists() for p in stale) and not os.path.exists(upload)
    assert all(p.exists() for p in kept)
    assert remove_stale_temporaries(db) == []
