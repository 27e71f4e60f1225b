"""Find every process of a test's command tree, alive or re-parented, through /proc.

Each command runs with a unique ``SOUNDALIKE_TEST_TREE`` value in its environment; every
descendant (decode workers, forkserver, resource tracker, Ray) inherits it, so the tree is found
even after its root died and the rest was re-parented to init.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path

TAG = "SOUNDALIKE_TEST_TREE"


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged(tag: str) -> list[dict]:
    """Live (non-zombie) processes carrying `tag`: pid, ppid, rss_kb, cmdline."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        base = Path("/proc") / entry
        try:
            if needle not in (base / "environ").read_bytes().split(b"\0"):
                continue
            stat = (base / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] in ("Z", "X"):
                continue
            rss_kb = int(stat[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
            cmd = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        except (OSError, IndexError, ValueError):
            continue
        found.append({"pid": int(entry), "ppid": int(stat[1]), "rss_kb": rss_kb, "cmd": cmd})
    return found


def wait_gone(tag: str, timeout_s: float = 5.0) -> tuple[list[dict], float]:
    """Poll until no process carries `tag`; returns (survivors, seconds waited)."""
    t0 = time.monotonic()
    while True:
        left = tagged(tag)
        if not left or time.monotonic() - t0 > timeout_s:
            return left, time.monotonic() - t0
        time.sleep(0.05)


# --- the CLI in a subprocess, and what the store holds ------------------------------------
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "soundalike", *args]


def tree_env() -> tuple[dict, str]:
    """``(env, tag)``: an environment whose processes can all be found again by `tag`."""
    tag = new_tag()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, TAG: tag, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return env, tag


def count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(con.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def rows(db: Path) -> dict[tuple, bytes]:
    con = sqlite3.connect(db)
    try:
        return {tuple(r[:4]): r[4] for r in con.execute("SELECT track_id, model_key, window, layer, vector FROM embeddings")}
    finally:
        con.close()


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
