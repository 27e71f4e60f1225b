"""The tail of ``soundalike run``: what it does after analysis, timed on synthetic stores.

``run`` ends with the default-calibration validation and the fitted calibrators
(``refresh_calibrators``: validation on a capped sample, then the percentile tables / k-NN radii
of the chosen calibration at artist and track level), then the report (``build_report``: the
query engine's artist scores, every artist's neighbours, the quality metrics) and its files
(``write_reports``: JSON, Markdown, HTML). None of it depends on audio, so it is measured here on
stores filled with synthetic vectors of the default main job's models (``musicnn-msd`` with its
taggram companion, and ``descriptors``; real model keys, random vectors grouped by artist) at
1k, 10k and 100k tracks (10 tracks per artist: 100, 1k, 10k artists).

Each size is built once in ``--work`` (reused when present), then the tail runs in a fresh child
process so its wall time, CPU seconds and peak RSS are its own. The child stops after
``--timeout`` seconds (reported as such).

Usage::

    python benchmarks/run_tail.py --sizes 1000,10000,100000 --json-out out/run_tail.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, tempfile
from pathlib import Path
from soundalike.store import Store
from soundalike.cli._common import refresh_defaults
from soundalike.reports import build_report, write_reports

db, out_dir = sys.argv[1], Path(sys.argv[2])
res = {}
with Store(db) as store:
    c, t = time.process_time(), time.perf_counter()
    refresh_defaults(store, quiet=True)
    res["calibrators"] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
    c, t = time.process_time(), time.perf_counter()
    rep = build_report(store, backends=["musicnn-msd", "descriptors"], library="synthetic")
    res["report"] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
c, t = time.process_time(), time.perf_counter()
paths = write_reports(rep, out_dir)
res["files"] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                "bytes": sum(Path(p).stat().st_size for p in paths.values())}
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(res))
"""


def build_store(path: Path, n_tracks: int, per_artist: int = 10, seed: int = 0) -> None:
    """A store of `n_tracks` tracks (`per_artist` each) with the default models' vectors."""
    import numpy as np

    from soundalike.audio import WindowPolicy
    from soundalike.backends import load_backend
    from soundalike.pipeline import register
    from soundalike.store import Store

    rng = np.random.default_rng(seed)
    policy = WindowPolicy()
    musicnn, desc = load_backend("musicnn-msd"), load_backend("descriptors")
    genres = ("rock", "jazz", "folk", "electronic", "classical", "metal", "pop", "ambient")
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    with Store(tmp) as store:
        k_pen = register(store, musicnn, policy)
        k_tag = register(store, musicnn.companions()[0], policy, companion_of=k_pen)
        k_desc = register(store, desc, policy)
        n_artists = n_tracks // per_artist
        for a0 in range(0, n_artists, 1000):
            with store.transaction() as db:
                for a in range(a0, min(a0 + 1000, n_artists)):
                    centre = rng.normal(size=200).astype(np.float32)
                    dcentre = rng.normal(size=75).astype(np.float32)
                    genre = genres[a % len(genres)]
                    for j in range(per_artist):
                        tid = f"{a:08x}{j:04x}".ljust(64, "0")
                        store.add_track(track_id=tid, path=f"/synthetic/{a}/{j}.ogg", artist=f"Artist {a}",
                                        title=f"Track {j}", duration_s=200.0, genres=(genre,), db=db)
                        pen = np.maximum(centre + rng.normal(scale=1.0, size=200), 0).astype(np.float32)
                        tags = rng.uniform(size=50).astype(np.float32)
                        d = (dcentre + rng.normal(scale=0.7, size=75)).astype(np.float32)
                        store.put_embeddings(db, track_id=tid, model_key=k_pen, vectors=pen[None, None])
                        store.put_embeddings(db, track_id=tid, model_key=k_tag, vectors=tags[None, None])
                        store.put_embeddings(db, track_id=tid, model_key=k_desc, vectors=d[None, None])
    tmp.rename(path)


def tail(db: Path, out_dir: Path, timeout: float) -> dict:
    """The tail on a scratch copy of `db` (so every run fits the calibrators afresh)."""
    import shutil
    import sqlite3

    scratch = db.with_name(db.stem + "-scratch.db")
    for p in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
        p.unlink(missing_ok=True)
    shutil.copyfile(db, scratch)
    with sqlite3.connect(scratch) as con:  # a store built by an earlier version may hold them
        con.execute("DELETE FROM calibrators")
        con.execute("DELETE FROM calibration_defaults")
    db = scratch
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(db), str(out_dir)], env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timed_out_after_s": timeout}
    if r.returncode != 0:
        return {"failed": r.stderr[-2000:]}
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["total_wall_s"] = time.perf_counter() - t
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="track counts, comma-separated")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "soundalike-run-tail")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to each tail")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    doc = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(), "sizes": {}}
    for n in (int(s) for s in args.sizes.split(",")):
        db = args.work / f"tail-{n}.db"
        if not db.exists():
            t = time.perf_counter()
            build_store(db, n)
            print(f"built {n} tracks in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        load0 = os.getloadavg()[0]
        res = tail(db, args.work / f"report-{n}", args.timeout)
        res.update(load_before=load0, load_after=os.getloadavg()[0])
        doc["sizes"][n] = res
        print(f"{n}: {json.dumps(res)}", file=sys.stderr)
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
