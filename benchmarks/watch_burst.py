"""N short generated clips dropped at once into a library that ``soundalike watch`` follows:
seconds until all are committed, and the watcher's peak memory (VmHWM of its process).

    python benchmarks/watch_burst.py --n 1000 --seconds 1.0 --backend descriptors

Prints one JSON line (backend, weights kind, clip length, timings, peak RSS, load average).
"""

from __future__ import annotations

import argparse
import json
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def _peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--backend", default="descriptors")
    ap.add_argument("--timeout", type=float, default=3600)
    a = ap.parse_args()
    from soundalike.backends import backend_class
    from soundalike.store import Store

    base = Path(tempfile.mkdtemp(prefix="watch-burst-"))
    root, staging, db = base / "music", base / "staging", base / "lib.db"
    root.mkdir()
    staging.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(int(a.seconds * SR)) / SR
    for i in range(a.n):  # distinct clips: a tone and some noise per file
        y = 0.3 * np.sin(2 * np.pi * (100 + 7 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(str(staging / f"{i:05d}.wav"), y.astype(np.float32), SR)
    Store(db).close()
    proc = subprocess.Popen([sys.executable, "-m", "soundalike", "watch", str(root), "--db", str(db), "-b", a.backend,
                             "--settle", "1"], stderr=subprocess.PIPE, text=True)
    while "watching" not in (proc.stderr.readline() or "watching"):
        pass
    time.sleep(1.0)
    t0 = time.monotonic()
    (root / "Burst").mkdir()
    for p in sorted(staging.iterdir()):
        os.replace(p, root / "Burst" / p.name)  # dropped in at once
    t_dropped = time.monotonic() - t0
    n = 0
    while time.monotonic() - t0 < a.timeout:
        with Store(db, readonly=True) as s:
            n = len(s.tracks())
        if n >= a.n:
            break
        time.sleep(1.0)
    took = time.monotonic() - t0
    peak = _peak_rss_mb(proc.pid)
    cpu = [float(x) for x in open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13]]
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    shutil.rmtree(base)
    print(json.dumps({"n": a.n, "committed": n, "clip_s": a.seconds, "backend": a.backend,
                      "weights": backend_class(a.backend).status().status, "drop_s": round(t_dropped, 2),
                      "seconds_to_all_committed": round(took, 1), "files_per_s": round(n / took, 1),
                      "watcher_cpu_s": round(sum(cpu) / os.sysconf("SC_CLK_TCK"), 1),
                      "watcher_peak_rss_mb": round(peak, 1), "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
