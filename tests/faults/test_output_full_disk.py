"""`report` and `export` on a full filesystem: one line, exit 1, the previous file kept whole,
no 0-byte file and no temporary left (writes go through a temporary file and a rename).

The full filesystem is real: a 256 KiB tmpfs mounted in a private mount namespace
(``unshare -rm``) and filled with ``dd`` before the command runs. A second test fails the
write itself (ENOSPC from inside the writer) in-process, where namespaces are not available.
"""

from __future__ import annotations

import errno
import json
import pathlib
import shutil
import subprocess
import sys

import pytest
from ci_support import skip_or_fail

from soundalike._atomic import OutputWriteError
from soundalike.backends import load_backend
from soundalike.pipeline import embed, ingest
from soundalike.reports import build_report, write_reports
from soundalike.store import Store
from tests.conftest import noise
from tests.faults._support import tree_env

_DRIVER = r"""
import json, os, subprocess, sys
full, db = sys.argv[1], sys.argv[2]
with open(os.path.join(full, "report.json"), "w") as fh:
    fh.write('{"old": true}\n')
with open(os.path.join(full, "v.npz"), "wb") as fh:
    fh.write(b"old export")
fd = os.open(os.path.join(full, "fill"), os.O_WRONLY | os.O_CREAT)  # fill the filesystem to the last byte
for size in (4096, 1):
    try:
        while True:
            os.write(fd, b"\0" * size)
    except OSError:
        pass
os.close(fd)
res = {}
for name, args in (("report", ["report", "--db", db, "--out", full]),
                   ("export", ["export", "--db", db, "--format", "npz", "--out", os.path.join(full, "v.npz")])):
    r = subprocess.run([sys.executable, "-m", "soundalike", *args], capture_output=True, text=True)
    res[name] = {"rc": r.returncode, "stderr": r.stderr}
res["files"] = {f: os.path.getsize(os.path.join(full, f)) for f in os.listdir(full)}
res["report_json"] = open(os.path.join(full, "report.json")).read()
res["npz"] = open(os.path.join(full, "v.npz"), "rb").read().decode("latin-1")
print(json.dumps(res))
"""


@pytest.fixture
def library_db(tmp_path, write_audio):
    for i in range(6):
        write_audio(f"lib/Artist {i % 3}/t{i:02d}.wav", noise(2.0, seed=i, amp=0.1 + 0.01 * i))
    db = tmp_path / "lib.db"
    with Store(db) as s:
        ingest(s, tmp_path / "lib")
        embed(s, [load_backend("descriptors")])
    return db


def test_report_and_export_on_a_full_tmpfs(tmp_path, library_db):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        skip_or_fail("needs user and mount namespaces (unshare -rm) to mount a small tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    env, _ = tree_env()
    script = f"mount -t tmpfs -o size=256k tmpfs '{full}' && exec \"$@\""
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-c", _DRIVER, str(full),
                        str(library_db)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    for name in ("report", "export"):
        out = res[name]
        assert out["rc"] == 1, out
        lines = [ln for ln in out["stderr"].splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "disk is full" in lines[0], out["stderr"]
        assert "Traceback" not in out["stderr"]
    assert res["report_json"] == '{"old": true}\n' and res["npz"] == "old export"  # the previous files, whole
    assert sorted(res["files"]) == ["fill", "report.json", "v.npz"]  # no temporary, no 0-byte report.md


def test_enospc_inside_the_writer_keeps_the_old_report(tmp_path, library_db, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}\n')
    with Store(library_db, readonly=True) as s:
        rep = build_report(s)
    real = pathlib.Path.write_text

    def full_after_a_few_bytes(self, data, *args, **kwargs):
        if ".tmp" in self.name and self.name.startswith("report.md"):
            real(self, data[:10], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_after_a_few_bytes)
    with pytest.raises(OutputWriteError, match="disk is full") as info:
        write_reports(rep, out)
    assert "\n" not in str(info.value) and "No file was replaced" in str(info.value)
    assert (out / "report.json").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    monkeypatch.setattr(pathlib.Path, "write_text", real)
    paths = write_reports(rep, out)  # with room again, the whole report
    assert json.loads(paths["json"].read_text())["n_tracks"] == 6
