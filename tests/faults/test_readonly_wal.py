"""A store on read-only storage whose WAL still holds commits is served with them, never stale.

Read-only storage is made faithfully: the folder is bind-mounted read-only in a private mount
namespace (``unshare -rm``), so SQLite really cannot create the ``-shm`` file beside the
database, as on a read-only disk (root ignores file modes, so ``chmod`` would prove nothing
when the tests run as root; an ordinary user gets ``chmod`` as well).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from ci_support import skip_or_fail

from soundalike import _store_readonly
from soundalike.backends import load_backend
from soundalike.errors import StoreError
from soundalike.pipeline import embed, ingest
from soundalike.store import Store
from tests.conftest import noise
from tests.faults._support import cli, tree_env


def _can_bind_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return r.returncode == 0


def _store_with_commits_in_its_wal(tmp_path, write_audio):
    """lib.db + lib.db-wal copied while a writer still holds commits in the WAL."""
    for i in range(6):
        write_audio(f"lib/Artist {i % 3}/t{i:02d}.wav", noise(2.0, seed=i, amp=0.1 + 0.01 * i))
    live = tmp_path / "live" / "lib.db"
    with Store(live) as s:
        ingest(s, tmp_path / "lib")
        embed(s, [load_backend("descriptors")])
        n_vectors = s.counts()["embeddings"]
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the commits stay in the WAL, as in a live store
    writer.execute("UPDATE artists SET name='Artist Zero' WHERE name='Artist 0'")
    gone = writer.execute("SELECT track_id FROM tracks ORDER BY track_id LIMIT 1").fetchone()[0]
    writer.execute("DELETE FROM embeddings WHERE track_id=?", (gone,))
    n_after = writer.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert n_after < n_vectors
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copyfile(live, ro / "lib.db")  # copied live: the file and its WAL, no -shm
    shutil.copyfile(live.with_name("lib.db-wal"), ro / "lib.db-wal")
    writer.close()
    assert (ro / "lib.db-wal").stat().st_size > 0
    # the database file alone is stale: what immutable=1 would have served
    alone = tmp_path / "alone.db"
    shutil.copyfile(ro / "lib.db", alone)
    con = sqlite3.connect(f"file:{alone}?immutable=1", uri=True)
    assert con.execute("SELECT COUNT(*) FROM artists WHERE name='Artist 0'").fetchone()[0] == 1
    con.close()
    return ro, n_after


def _run_read_only(folder, argv, env):
    if os.geteuid() != 0:
        folder.chmod(0o555)
        for f in folder.iterdir():
            f.chmod(0o444)
        try:
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        finally:
            folder.chmod(0o755)
    if not _can_bind_read_only():
        skip_or_fail("running as root without user namespaces: no way to make a folder read-only here")
    script = (f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' && "
              f"! touch '{folder}/probe' 2>/dev/null && exec \"$@\"")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *argv], env=env, capture_output=True,
                          text=True, timeout=300)


def test_read_only_store_is_served_with_its_wal_commits(tmp_path, write_audio):
    ro, n_vectors = _store_with_commits_in_its_wal(tmp_path, write_audio)
    env, _ = tree_env()
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    r = _run_read_only(ro, cli("serve", "--db", str(ro / "lib.db"), "--get", "/api/artists"), env)
    assert r.returncode == 0, r.stderr[-2000:]
    names = {a["name"] for a in json.loads(r.stdout)["artists"]}
    assert "Artist Zero" in names and "Artist 0" not in names
    assert "serving a private copy" in r.stderr and "wal_checkpoint" in r.stderr
    probe = ("import sys; from soundalike.store import Store; s = Store(sys.argv[1], readonly=True); "
             "print(s.counts()['embeddings']); s.close()")
    r = _run_read_only(ro, [sys.executable, "-c", probe, str(ro / "lib.db")], env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == n_vectors
    assert not list((tmp_path / "tmp").iterdir())  # the private copy is removed at close
    assert sorted(p.name for p in ro.iterdir()) == ["lib.db", "lib.db-wal"]  # nothing written there


def test_no_room_for_the_copy_refuses_with_how_to_checkpoint(tmp_path, write_audio, monkeypatch):
    ro, _ = _store_with_commits_in_its_wal(tmp_path, write_audio)
    monkeypatch.setattr(_store_readonly.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(StoreError, match=r"would be served stale.*wal_checkpoint\(TRUNCATE\)") as info:
        _store_readonly.open_on_readonly_storage(ro / "lib.db")
    assert "\n" not in str(info.value)


def test_read_only_store_without_wal_opens_in_place(tmp_path):
    db = tmp_path / "lib.db"
    Store(db).close()
    con, folder = _store_readonly.open_on_readonly_storage(db)
    try:
        assert folder is None and con.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 0
    finally:
        con.close()
