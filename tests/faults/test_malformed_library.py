"""A library of malformed files beside good and odd-but-valid ones: ``soundalike run`` ends with
exit 0 and no traceback, every good file is embedded, every bad one is reported by kind, and a
truncated file is embedded from what decodes but reported as ``truncated`` (issue 19)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SR, noise, tone
from tests.faults._support import cli, count, tree_env

pytestmark = pytest.mark.slow


def _cut(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _bad_wav_header(path: Path, *, rate: int, channels: int) -> None:
    body = np.zeros(1000, "<i2").tobytes()
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, rate, rate * 2 * max(channels, 1), 2 * max(channels, 1), 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(fmt) + 8 + len(body)) + b"WAVE" + fmt
                     + b"data" + struct.pack("<I", len(body)) + body)


def build_library(root: Path) -> dict[str, str]:
    """Write the library; returns {relative path: expected outcome} (``ok`` or a failure kind)."""
    expect: dict[str, str] = {}

    def audio(rel: str, y: np.ndarray, want: str, *, sr: int = SR, **kw) -> Path:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), y, sr, **kw)
        expect[rel] = want
        return p

    def raw(rel: str, data: bytes, want: str) -> Path:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        expect[rel] = want
        return p

    rng = np.random.default_rng(7)
    # good and odd-but-valid
    audio("Good/a.wav", noise(3, seed=1), "ok")
    audio("Good/b.flac", tone(330, 3), "ok")
    audio("Good/c.ogg", noise(3, seed=2, amp=0.3), "ok")
    audio("Odd/8k mono.wav", noise(3, sr=8000, seed=3), "ok", sr=8000)
    audio("Odd/96k 6ch.flac", np.tile(noise(2, sr=96000, seed=4)[:, None], (1, 6)), "ok", sr=96000)
    audio("Odd/Ünïcødé — ♫ 曲.wav", tone(523, 3), "ok")
    audio("Odd/-leading dash.wav", tone(262, 3), "ok")
    # NaN outside the analysed window (middle 30 s of 36 s): not decoded, so embedded (docs/robustness.md)
    y = noise(36, sr=8000, seed=5)
    y[:1000] = np.nan
    audio("Odd/nan outside window.wav", y, "ok", sr=8000, subtype="FLOAT")
    # truncated: embedded from what decodes, reported
    for ext in ("ogg", "flac", "wav"):
        _cut(audio(f"Cut/cut.{ext}", noise(6, seed=6, amp=0.25), "truncated"), 0.6)
    # bad files
    raw("Bad/empty.wav", b"", "empty")
    raw("Bad/random.flac", rng.bytes(20000), "decode")  # bytes no decoder accepts: decode, not empty
    raw("Bad/random.ogg", rng.bytes(20000), "decode")
    raw("Bad/text.mp3", b"this is not an mp3, just text\n" * 200, "decode")
    hdr = audio("Bad/damaged header.ogg", noise(3, seed=8), "decode")
    data = bytearray(hdr.read_bytes())
    data[0:64] = rng.bytes(64)
    hdr.write_bytes(bytes(data))
    audio("Bad/silent.wav", np.zeros(SR * 3, np.float32), "silent")
    audio("Bad/short.wav", noise(0.3, seed=9), "too-short")
    y = noise(3, seed=10)
    y[SR] = np.inf
    y[SR + 5] = np.nan
    audio("Bad/nan in window.wav", y, "invalid", subtype="FLOAT")
    _bad_wav_header(root / "Bad/rate zero.wav", rate=0, channels=1)
    expect["Bad/rate zero.wav"] = "decode"
    _bad_wav_header(root / "Bad/no channels.wav", rate=22050, channels=0)
    expect["Bad/no channels.wav"] = "decode"
    os.symlink(root / "nowhere.wav", root / "Bad" / "broken link.wav")
    expect["Bad/broken link.wav"] = "unreadable"
    (root / "Bad" / "folder.mp3").mkdir()  # a folder with an audio name: not a track, not an error
    return expect


def test_malformed_library_is_reported_by_kind(tmp_path):
    lib, db = tmp_path / "lib", tmp_path / "lib.db"
    expect = build_library(lib)
    env, _ = tree_env()
    r = subprocess.run(cli("run", str(lib), "--db", str(db), "--backend", "descriptors", "--jobs", "2",
                           "--out", str(tmp_path / "out")), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    status = json.loads(subprocess.run(cli("status", "--db", str(db), "--json"), env=env, capture_output=True,
                                       text=True, check=True).stdout)
    reported = {str(Path(f["path"]).relative_to(lib)): f["kind"] for f in status["last_run_failures"]}
    got = {rel: reported.get(rel, "ok") for rel in expect}
    table = Counter((want, got[rel]) for rel, want in expect.items())
    print("\nexpected kind -> reported kind: count\n" + "\n".join(f"{w:>10} -> {g:<10} {n}" for (w, g), n in sorted(table.items())))
    assert got == expect
    assert len(status["last_run_failures"]) == sum(v != "ok" for v in expect.values())  # one line per file
    # good, odd and truncated files are embedded; nothing else is
    embedded = count(db, "SELECT COUNT(DISTINCT e.track_id) FROM embeddings e")
    assert embedded == sum(v in ("ok", "truncated") for v in expect.values())
    assert "truncated" in r.stderr and "3 truncated" in r.stderr
