"""One analysis path (issue 23): `beet soundalike` vs `soundalike run`, and old vs new commit.

On the library of ``benchmarks/library_speed.py`` (its ``fetch_library``: the 41 full-length Ogg
Vorbis tracks of Debian ``wesnoth-1.16-music``, no transcodes unless asked), interleaved
``--repeats`` times in one run, each one **cold** (a fresh process and an empty store, model
loading and the report included), measured like library_speed (wall s, CPU s of the whole
process tree, peak RSS, load average before and after):

* ``old``: ``soundalike run`` of the commit ``--old`` (its ``src/`` taken with ``git archive``);
* ``new``: ``soundalike run`` of this checkout;
* ``beets``: ``beet soundalike`` of this checkout on the same files imported into a beets
  library (the import is not timed), with its own default backends; the progress it drew on
  stderr is kept (last lines), and its stored vectors are compared with ``new``'s.

Usage::

    python benchmarks/analysis_path.py --json-out out/analysis_path.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from library_speed import DEFAULT_CACHE, MEASURE_CHILD, PACKAGES, REPO, fetch_library, link_library  # noqa: E402


def measured(cmd: list[str], env: dict, log: Path) -> dict[str, Any]:
    """Run `cmd` under library_speed's subreaper; wall s, CPU s (process tree), peak RSS; output to `log`."""
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, open(log, "wb") as fh:
        out = Path(tmp) / "usage.json"
        subprocess.run([sys.executable, "-c", MEASURE_CHILD, str(out), *cmd], env=env, stdout=fh, stderr=fh)
        r = json.loads(out.read_text())
    if r["rc"] not in (0, 3):
        raise RuntimeError(f"{cmd[:3]} failed ({r['rc']}): {log.read_text(errors='replace')[-2000:]}")
    return {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"], "load_before": load0,
            "load_after": os.getloadavg()[0]}


def store_facts(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as con:
        return {"models": sorted(r[0] for r in con.execute(
                    "SELECT backend || ':' || ifnull(json_extract(config_json, '$.output'), '') FROM models")),
                "n_tracks": con.execute("SELECT COUNT(*) FROM tracks").fetchone()[0],
                "n_embedded": con.execute("SELECT COUNT(DISTINCT track_id) FROM embeddings").fetchone()[0],
                "failures": con.execute("SELECT COUNT(*) FROM failures").fetchone()[0]}


def max_vector_diff(a: Path, b: Path) -> dict[str, float]:
    """Largest absolute difference per model key between the window vectors of two stores."""
    import numpy as np

    out = {}
    with sqlite3.connect(a) as ca, sqlite3.connect(b) as cb:
        keys = [r[0] for r in ca.execute("SELECT model_key FROM models")]
        for k in keys:
            q = "SELECT track_id, window, layer, vector FROM embeddings WHERE model_key=?"
            va = {r[:3]: np.frombuffer(r[3], "<f4") for r in ca.execute(q, (k,))}
            vb = {r[:3]: np.frombuffer(r[3], "<f4") for r in cb.execute(q, (k,))}
            if va.keys() != vb.keys():
                out[k] = float("inf")
                continue
            out[k] = max((float(np.abs(va[x] - vb[x]).max()) for x in va), default=0.0)
    return out


def old_source(ref: str, work: Path) -> Path:
    """``src/`` of commit `ref`, unpacked from ``git archive`` (the repository is only read)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True).stdout
    dest = work / "old"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def beets_library(lib: Path, work: Path, env: dict) -> Path:
    base = work / "beets"
    base.mkdir()
    (base / "config.yaml").write_text(f"""directory: {base / 'library'}
library: {base / 'beets.db'}
plugins: [soundalike]
import:
  copy: no
  write: no
  autotag: no
  duplicate_action: keep
""", encoding="utf-8")
    subprocess.run([beet_exe(), "import", "-A", "-C", "-W", "-q", str(lib)], env={**env, "BEETSDIR": str(base)},
                   check=True, capture_output=True)
    return base


def beet_exe() -> str:
    exe = shutil.which("beet", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not exe:
        raise SystemExit("the `beet` program (PyPI beets) is not installed next to this Python")
    return exe


def progress_lines(log: Path) -> list[str]:
    """The last state of each progress bar and the summary lines a user saw."""
    text = log.read_text(errors="replace").replace("\r", "\n")
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    keep: dict[str, str] = {}
    for ln in lines:
        head = ln.strip().split(" ")[0]
        if ln.startswith(("ingest:", "embed:")):
            keep[ln.split(":")[0]] = ln.strip()
        elif ln.startswith("soundalike:"):  # the plugin's summary and its failure lines
            keep[ln] = ln.strip()
        elif head in ("ingest", "embed"):  # a progress bar's last state
            keep["bar " + head] = ln.strip()
    return list(keep.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--package", action="append", help="Debian music package(s) (default: wesnoth-1.16-music)")
    ap.add_argument("--transcode", type=int, default=0, help="tracks transcoded to each of MP3, FLAC, M4A")
    ap.add_argument("--limit", type=int, default=0, help="only the first N original tracks (a quick check)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", default="main", help="the commit compared with this checkout (default: main)")
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--skip-beets", action="store_true")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    files = fetch_library(args.cache, tuple(args.package or PACKAGES), args.transcode, args.limit)
    doc: dict[str, Any] = {"library": {"packages": list(args.package or PACKAGES), "n_files": len(files)},
                           "cpu_count": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="soundalike-path-") as tmp:
        work = Path(tmp)
        lib = link_library(files, work / "lib")
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        new_env = {**base_env, "PYTHONPATH": str(REPO / "src")}
        kinds: dict[str, dict] = {"new": new_env}
        if not args.skip_old:
            old = old_source(args.old, work)
            doc["old"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.old], check=True,
                                        capture_output=True, text=True).stdout.strip()
            kinds["old"] = {**base_env, "PYTHONPATH": str(old)}
        doc["new"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
        beets = None if args.skip_beets else beets_library(lib, work, new_env)
        if beets is not None:
            kinds["beets"] = {**new_env, "BEETSDIR": str(beets)}
        order = [k for k in ("old", "new", "beets") if k in kinds]
        for i in range(args.repeats):
            for kind in order[i % len(order):] + order[:i % len(order)]:  # rotate who goes first
                db, log = work / f"{kind}{i}.db", work / f"{kind}{i}.log"
                if kind == "beets":
                    cmd = [beet_exe(), "soundalike", "--db", str(db)]
                else:
                    cmd = [sys.executable, "-m", "soundalike", "run", str(lib), "--db", str(db), "--out",
                           str(work / f"report-{kind}{i}")]
                m = measured(cmd, kinds[kind], log)
                m.update(kind=kind, repeat=i, **store_facts(db))
                if kind == "beets":
                    m["progress"] = progress_lines(log)
                    m["vs_new_max_abs_diff"] = max_vector_diff(work / f"new{i}.db", db) if (work / f"new{i}.db").exists() else None
                print(json.dumps(m), file=sys.stderr, flush=True)
                doc["runs"].append(m)
                if args.json_out:
                    args.json_out.parent.mkdir(parents=True, exist_ok=True)
                    args.json_out.write_text(json.dumps(doc, indent=2))
        if beets is not None:
            for m in doc["runs"]:  # a beets run before its new run of the same repeat: compare now
                if m["kind"] == "beets" and m.get("vs_new_max_abs_diff") is None:
                    m["vs_new_max_abs_diff"] = max_vector_diff(work / f"new{m['repeat']}.db", work / f"beets{m['repeat']}.db")
    med = {k: {f: statistics.median(m[f] for m in doc["runs"] if m["kind"] == k) for f in ("wall_s", "cpu_s")}
           for k in order}
    doc["median"] = med
    if "old" in med:
        doc["new_vs_old_wall"] = med["new"]["wall_s"] / med["old"]["wall_s"]
        doc["new_vs_old_cpu"] = med["new"]["cpu_s"] / med["old"]["cpu_s"]
    if "beets" in med:
        doc["beets_vs_run_wall"] = med["beets"]["wall_s"] / med["new"]["wall_s"]
        doc["beets_vs_run_cpu"] = med["beets"]["cpu_s"] / med["new"]["cpu_s"]
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
