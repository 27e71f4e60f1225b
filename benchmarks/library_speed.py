"""Library speed: soundalike's default main job vs bliss-rs on real full-length tracks.

What it does, in one run (see the "Library speed" section of benchmarks/RESULTS.md):

1. **Library.** Fetches Debian game-music packages with ``apt-get download`` and unpacks them
   with ``dpkg-deb -x`` into ``--cache`` (outside git; never committed): by default
   ``wesnoth-1.16-music`` (41 Ogg Vorbis tracks, 44.1 kHz stereo). A few tracks are transcoded
   with ffmpeg to MP3, FLAC and M4A (AAC), so each format's seeking is part of the timing.
2. **Speed**, interleaved ``--repeats`` times on the same files (bliss-rs, soundalike, bliss-rs,
   ...; the median of each is reported): (a) bliss-rs through ``bliss-audio==0.2.0`` over 2
   processes (a benchmark-only dependency; its wheel needs AVX-512, so on a CPU without it the
   script makes a venv in ``--cache`` with ``bliss-audio==0.1.11``, the newest wheel built for
   any x86-64 CPU, wrapping bliss-rs 0.6.11, and says so); (b) ``soundalike run`` with the default backends,
   **cold**: a fresh process, an empty store, model loading and the report included. Each is a
   child process measured with ``os.wait4``: wall time, CPU seconds (user + system, its worker
   processes included), peak RSS of the largest process.
3. **Stages** (in this process, on ``--stage-tracks`` tracks): decode, resample, musicnn log-mel,
   musicnn net (reference fp32 port and the default factorised runtime), descriptors, store
   write; CPU seconds per 30 s window (one thread, so the figures do not depend on the load).
4. **Quality and agreement** on ``--dev`` (the development clips): same-artist mAP of the
   default (musicnn-msd, calibration ``center``) for the reference and the default runtime,
   per-clip cosine between them, and bliss-rs's mAP with its own (Euclidean) distance.

Usage::

    python benchmarks/library_speed.py --json-out out/library_speed.json

The machine is usually shared: the load average before and after each run is recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # the stage table measures this checkout, as the timed runs do
DEFAULT_CACHE = Path(os.environ.get("SOUNDALIKE_BENCH_CACHE", Path.home() / ".cache" / "soundalike-bench"))
PACKAGES = ("wesnoth-1.16-music",)
TRANSCODES = (("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]), ("flac", ["-c:a", "flac"]),
              ("m4a", ["-c:a", "aac", "-b:a", "160k"]))

BLISS_CHILD = r"""
import sys, json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

def analyse(path):
    from bliss_audio import Song  # imported in each worker: a forked copy of its state hangs
    try:
        return path, list(Song(path).analysis)
    except Exception as exc:  # a file bliss cannot read is reported, not fatal
        return path, str(exc)

if __name__ == "__main__":
    paths = json.load(open(sys.argv[1]))
    # a pool that raises (instead of hanging) when a worker dies, e.g. of SIGILL
    with ProcessPoolExecutor(int(sys.argv[3]), mp_context=get_context("spawn")) as pool:
        out = dict(pool.map(analyse, paths, chunksize=1))
    json.dump(out, open(sys.argv[2], "w"))
"""


#: bliss-audio releases and the bliss-rs each wraps (read from the wheels' crate paths)
BLISS_RS = {"0.2.0": "0.11.2", "0.1.11": "0.6.11"}
#: the newest wheel built for any x86-64 CPU: 0.2.0's uses AVX-512 (SIGILL on an AVX2-only CPU)
BLISS_PORTABLE = "0.1.11"


def bliss_problem(sample: Path, python: str = sys.executable) -> str | None:
    """Why bliss-rs cannot run with `python` (None when it can): its wheel may use CPU
    instructions this machine lacks (the 0.2.0 wheel dies of SIGILL on an AVX2-only CPU)."""
    code = f"from bliss_audio import Song; Song({str(sample)!r}).analysis"
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "bliss-rs did not finish one track in 300 s"
    if r.returncode == -4 or r.returncode == 132:
        return "dies of SIGILL (illegal instruction) on this CPU"
    if r.returncode != 0:
        return f"failed: {r.stderr.decode(errors='replace')[-300:]}"
    return None


def bliss_version(python: str) -> str:
    r = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('bliss-audio'))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "not installed"


def find_bliss(sample: Path, cache: Path) -> tuple[str | None, dict[str, Any]]:
    """The Python that runs bliss-rs here: this one (``[bench]`` extra, bliss-audio 0.2.0), else a
    venv in `cache` with bliss-audio 0.2.0 (its wheel needs AVX-512), else one with the portable
    wheel (each made once). Returns (python or None, what was found)."""
    info: dict[str, Any] = {}
    version = bliss_version(sys.executable)
    problem = bliss_problem(sample) if version != "not installed" else "not installed"
    info["tried"] = [f"bliss-audio {version} (this Python): {problem or 'runs'}"]
    if problem is None:
        info.update(version=version, bliss_rs=BLISS_RS.get(version, "?"))
        return sys.executable, info
    for wanted in ("0.2.0", BLISS_PORTABLE):
        venv = cache / f"bliss-audio-{wanted}"
        python = str(venv / "bin" / "python")
        if not Path(python).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            r = subprocess.run([python, "-m", "pip", "install", "-q", f"bliss-audio=={wanted}"], capture_output=True)
            if r.returncode != 0:
                info["tried"].append(f"bliss-audio {wanted}: pip failed")
                continue
        problem = bliss_problem(sample, python)
        info["tried"].append(f"bliss-audio {wanted}: {problem or 'runs'}")
        if problem is None:
            info.update(version=wanted, bliss_rs=BLISS_RS[wanted])
            return python, info
    return None, info


# --- library -------------------------------------------------------------------------------
def fetch_library(cache: Path, packages: tuple[str, ...], n_transcode: int, limit: int = 0) -> list[Path]:
    """Download + unpack the packages once; transcode the first `n_transcode` tracks per format."""
    debs, root = cache / "debs", cache / "extracted"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        if not list(debs.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, capture_output=True)
        deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
        dest = root / pkg
        if not dest.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    originals = sorted(p for pkg in packages for p in (root / pkg).rglob("*")
                       if p.suffix.lower() in (".ogg", ".opus", ".flac", ".mp3", ".wav"))
    if limit:
        originals = originals[:limit]
    out = list(originals)
    tdir = root / "transcodes"
    for ext, args in TRANSCODES:
        (tdir / ext).mkdir(parents=True, exist_ok=True)
        for src in originals[:n_transcode]:
            dst = tdir / ext / f"{src.stem}.{ext}"
            if not dst.exists():
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
            out.append(dst)
    return out


def link_library(files: list[Path], folder: Path) -> Path:
    """A folder of symlinks (one artist folder per format) for ``soundalike run``."""
    for f in files:
        d = folder / (f.suffix.lstrip(".") or "audio")
        d.mkdir(parents=True, exist_ok=True)
        link = d / f.name
        if not link.exists():
            link.symlink_to(f)
    return folder


def durations(files: list[Path]) -> list[float]:
    import av

    out = []
    for f in files:
        with av.open(str(f)) as c:
            out.append(float(c.duration or 0) / 1e6)
    return out


# --- child processes ---------------------------------------------------------------------------
# Runs the command as a "child subreaper" (prctl PR_SET_CHILD_SUBREAPER): every descendant, even
# one orphaned when the command exits (a forkserver and its workers), is reaped here, so the CPU
# seconds and peak RSS of the whole process tree are counted. Wall time ends when the command does.
MEASURE_CHILD = r"""
import ctypes, json, os, resource, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - t0
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"wall_s": wall, "rc": os.waitstatus_to_exitcode(status), "cpu_s": ru.ru_utime + ru.ru_stime,
           "peak_rss_mb": ru.ru_maxrss / 1024.0}, open(sys.argv[1], "w"))
"""


def measured(cmd: list[str], env: dict | None = None) -> dict[str, float]:
    """Run `cmd`; wall s, CPU s (user + sys of its whole process tree), peak RSS (MB, largest process)."""
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as log:  # a file: a chatty child never blocks
        out = Path(tmp) / "usage.json"
        subprocess.run([sys.executable, "-c", MEASURE_CHILD, str(out), *cmd], env=env, stdout=log, stderr=log)
        r = json.loads(out.read_text())
        if r["rc"] not in (0, 3):
            log.seek(0)
            raise RuntimeError(f"{cmd[:3]} failed ({r['rc']}): {log.read().decode(errors='replace')[-2000:]}")
    return {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"],
            "load_before": load0, "load_after": os.getloadavg()[0]}


def run_bliss(python: str, files: list[Path], work: Path, procs: int) -> tuple[dict, dict]:
    lst, out, script = work / "bliss_in.json", work / "bliss_out.json", work / "bliss_child.py"
    lst.write_text(json.dumps([str(f) for f in files]))
    script.write_text(BLISS_CHILD)
    m = measured([python, str(script), str(lst), str(out), str(procs)])
    return m, json.loads(out.read_text())


def run_soundalike(lib: Path, work: Path, i: int) -> dict:
    db, rep = work / f"run{i}.db", work / f"report{i}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    exe = [sys.executable, "-m", "soundalike", "run", str(lib), "--db", str(db), "--out", str(rep)]
    m = measured(exe, env)
    import sqlite3

    with sqlite3.connect(db) as con:
        m["models"] = [r[0] for r in con.execute("SELECT backend || ':' || json_extract(config_json, '$.output') FROM models")]
        m["n_vectors"] = con.execute("SELECT COUNT(DISTINCT track_id) FROM embeddings").fetchone()[0]
        m["failures"] = con.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    return m


# --- stages ----------------------------------------------------------------------------------------
def stages(files: list[Path], work: Path) -> dict[str, float]:
    """CPU seconds per 30 s window of each stage, one thread (robust to the machine's load)."""
    import numpy as np
    import torch

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)  # numpy's BLAS too, as in the analysis workers
    from soundalike.audio import WindowPolicy, load_windows
    from soundalike.backends import load_backend
    from soundalike.backends._musicnn_net import log_mel
    from soundalike.store import Store

    pol = WindowPolicy()
    fast = load_backend("musicnn-msd")
    ref = load_backend("musicnn-msd", runtime="reference")
    desc = load_backend("descriptors")
    acc: dict[str, float] = {}

    def clock(name, fn, *a, **kw):
        c = time.process_time()
        r = fn(*a, **kw)
        acc[name] = acc.get(name, 0.0) + time.process_time() - c
        return r

    fast.embed_layers(np.zeros((1, 16000 * 4), np.float32) + 0.01)  # first-call set-up outside
    ref.embed_layers(np.zeros((1, 16000 * 4), np.float32) + 0.01)
    warm = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 22050 * 30)).astype(np.float32)
    desc.embed_layers(warm)  # numba compilation and librosa's caches, paid once per process
    store = Store(work / "stages.db")
    for k, f in enumerate(files):
        w = clock(f"decode ({f.suffix.lstrip('.')})", load_windows, f, policy=pol)
        w16 = clock("resample to 16 kHz (soxr HQ)", w.resampled, 16000)
        w22 = clock("resample to 22.05 kHz (soxr HQ)", w.resampled, 22050)
        x16 = np.stack(w16.clips)
        clock("musicnn log-mel (librosa)", log_mel, x16)
        clock("musicnn-msd net, reference fp32 port", ref.embed_with_companions, x16)
        pen, tags = clock("musicnn-msd, default (factorised; log-mel included)", fast.embed_with_companions, x16)
        dv = clock("descriptors", desc.embed_layers, np.stack(w22.clips))

        def write():
            with store.transaction() as db:
                for key, v in (("a", pen), ("b", tags), ("c", dv)):
                    store.put_embeddings(db, track_id=f"t{k}", model_key=key, vectors=v)

        if k == 0:
            store.add_track(track_id="t0", path="x", artist="bench")
            for key, dim in (("a", 200), ("b", 50), ("c", dv.shape[-1])):
                store.register_model(model_key=key, backend=key, config={}, weights_sha256=None, weights_kind="none",
                                     dim=dim)
        else:
            store.add_track(track_id=f"t{k}", path=f"x{k}", artist="bench")
        clock("store write (3 rows)", write)
    by_fmt = {k: v for k, v in acc.items() if k.startswith("decode (")}
    counts: dict[str, int] = {}
    for f in files:
        key = f"decode ({f.suffix.lstrip('.')})"
        counts[key] = counts.get(key, 0) + 1
    out = {k: v / len(files) for k, v in acc.items() if k not in by_fmt}
    out.update({k: v / counts[k] for k, v in by_fmt.items()})
    return out


# --- quality -----------------------------------------------------------------------------------------
def quality(dev: Path, bliss_procs: int, work: Path, *, bliss_python: str | None = None) -> dict[str, Any]:
    import numpy as np

    from soundalike.audio import WindowPolicy, load_windows
    from soundalike.backends import load_backend
    from soundalike.metrics import same_artist_map
    from soundalike.calibration import Centerer
    from soundalike.similarity import cosine_matrix

    rows = list(csv.DictReader(open(dev / "manifest.csv")))
    paths = [dev / r["path"] for r in rows]
    artists = [r["artist"] for r in rows]
    fast, ref = load_backend("musicnn-msd"), load_backend("musicnn-msd", runtime="reference")
    short = WindowPolicy.parse("middle:15")
    A, B, S15 = [], [], []
    for p in paths:
        x = np.stack(load_windows(p, policy=WindowPolicy(), sr=16000).clips)
        A.append(ref.embed_layers(x)[0, 0])
        B.append(fast.embed_layers(x)[0, 0])
        S15.append(fast.embed_layers(np.stack(load_windows(p, policy=short, sr=16000).clips))[0, 0])
    A, B, S15 = np.array(A), np.array(B), np.array(S15)
    cos = (A * B).sum(1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)

    def m(X):  # calibration "center": L2-normalise, subtract the library mean, cosine
        return float(same_artist_map(cosine_matrix(Centerer().fit_transform(X)), artists)["MAP"])

    out = {"n_clips": len(paths), "map_reference": m(A), "map_default": m(B), "map_default_middle15": m(S15),
           "cosine_min": float(cos.min()), "cosine_median": float(np.median(cos)),
           "max_abs_diff": float(np.abs(A - B).max()),
           "map_raw_cosine_default": float(same_artist_map(cosine_matrix(B), artists)["MAP"])}
    if bliss_python:
        _, feats = run_bliss(bliss_python, paths, work, bliss_procs)
        ok = [i for i, p in enumerate(paths) if isinstance(feats.get(str(p)), list)]
        F = np.array([feats[str(paths[i])] for i in ok], dtype=np.float64)
        D = np.sqrt(((F[:, None, :] - F[None, :, :]) ** 2).sum(-1))
        out.update(map_bliss=float(same_artist_map(-D, [artists[i] for i in ok])["MAP"]), bliss_analysed=len(ok))
    return out


# --- report -------------------------------------------------------------------------------------------
def render_markdown(doc: dict[str, Any]) -> str:
    """The RESULTS.md tables of one run's JSON."""
    lines = [f"Run {doc['date_utc']}: {doc['n_files']} files ({doc['formats']}), {doc['audio_minutes']:.0f} min of audio, "
             f"{doc['cpus']} CPUs (shared; load average {_loads(doc)})."]
    b = doc.get("bliss", {})
    if b.get("version"):
        lines.append(f"bliss-rs {b['bliss_rs']} through bliss-audio {b['version']} ({'; '.join(b['tried'])}).")
    elif b:
        lines.append(f"bliss-rs: not measured here ({'; '.join(b['tried'])}).")
    lines += ["", "| job (median of runs) | wall s | CPU s | s/track (wall) | CPU s/track | tracks/min | 10k tracks (h) | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in doc.get("summary", {}).items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['s_per_track']:.2f} | {r['cpu_s_per_track']:.2f} | "
                         f"{r['tracks_per_min']:.1f} | {r['hours_10k']:.1f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", "| stage (CPU s per 30 s window, one thread) | s |", "|---|---|"]
    for k, v in doc.get("stages_cpu_s_per_window", {}).items():
        lines.append(f"| {k} | {v:.3f} |")
    q = doc.get("quality")
    if q:
        lines += ["", "| development clips (n = %d) | value |" % q["n_clips"], "|---|---|"]
        for k in ("map_reference", "map_default", "map_default_middle15", "cosine_min", "cosine_median", "max_abs_diff",
                  "map_bliss"):
            if k in q:
                lines.append(f"| {k} | {q[k]:.6g} |")
    return "\n".join(lines)


def _loads(doc: dict[str, Any]) -> str:
    vals = [r[k] for rs in doc.get("runs", {}).values() for r in rs for k in ("load_before", "load_after")]
    return f"{min(vals):.1f}–{max(vals):.1f}" if vals else "n/a"


# --- main --------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--package", action="append", help="Debian music package(s) (default: wesnoth-1.16-music)")
    ap.add_argument("--transcode", type=int, default=4, help="tracks transcoded to each of MP3, FLAC, M4A")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bliss-procs", type=int, default=2)
    ap.add_argument("--stage-tracks", type=int, default=8, help="tracks of the stage table (0: no stage table)")
    ap.add_argument("--dev", type=Path, default=REPO.parent / "shared" / "data" / "music")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--quality-only", action="store_true", help="only the agreement and quality section")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N original tracks (a quick check)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--markdown", type=Path, help="print the RESULTS.md tables of a saved JSON and exit")
    args = ap.parse_args()
    if args.markdown:
        print(render_markdown(json.loads(args.markdown.read_text())))
        return

    if args.quality_only:
        with tempfile.TemporaryDirectory(prefix="library_speed_") as tmp:
            sample = next(p for p in args.dev.rglob("*") if p.suffix in (".mp3", ".ogg", ".flac", ".wav"))
            bliss_python, info = find_bliss(sample, args.cache)
            doc = {"bliss": info, "quality": quality(args.dev, args.bliss_procs, Path(tmp), bliss_python=bliss_python)}
        print(_save(doc, args.json_out))
        return
    files = fetch_library(args.cache, tuple(args.package or PACKAGES), args.transcode, args.limit)
    durs = durations(files)
    doc: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "n_files": len(files), "audio_minutes": sum(durs) / 60,
        "formats": {e: sum(f.suffix == f".{e}" for f in files) for e in ("ogg", "opus", "mp3", "flac", "m4a")},
    }
    print(json.dumps({k: doc[k] for k in ("n_files", "audio_minutes", "formats")}), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="library_speed_") as tmp:
        work = Path(tmp)
        lib = link_library(files, work / "library")
        runs: dict[str, list[dict]] = {"bliss": [], "soundalike": []}
        bliss_python, doc["bliss"] = find_bliss(files[0], args.cache)
        for i in range(args.repeats):
            if bliss_python:
                m, feats = run_bliss(bliss_python, files, work, args.bliss_procs)
                m["failed"] = sum(not isinstance(v, list) for v in feats.values())
                runs["bliss"].append(m)
                print(f"bliss-rs run {i + 1}: {m['wall_s']:.1f} s", file=sys.stderr)
            s = run_soundalike(lib, work, i)
            runs["soundalike"].append(s)
            print(f"soundalike run {i + 1}: {s['wall_s']:.1f} s", file=sys.stderr)
        doc["runs"] = runs
        n = len(files)
        summary = {}
        for name, rs in runs.items():
            if not rs:
                continue
            wall = statistics.median(r["wall_s"] for r in rs)
            cpu = statistics.median(r["cpu_s"] for r in rs)
            summary[name] = {"wall_s": wall, "cpu_s": cpu, "s_per_track": wall / n, "cpu_s_per_track": cpu / n,
                             "tracks_per_min": 60 * n / wall, "hours_10k": wall / n * 10_000 / 3600,
                             "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)}
        if "bliss" in summary:
            summary["ratio_wall"] = summary["soundalike"]["wall_s"] / summary["bliss"]["wall_s"]
        doc["summary"] = summary
        _save(doc, args.json_out)  # what is measured so far survives a later failure
        if args.stage_tracks:
            stage_files = [f for f in files if f.suffix == ".ogg"][: args.stage_tracks]
            stage_files += [f for f in files if f.suffix != ".ogg"][:: max(1, args.transcode)]
            doc["stages_cpu_s_per_window"] = stages(stage_files, work)
            _save(doc, args.json_out)
        if not args.skip_quality and args.dev.is_dir():
            doc["quality"] = quality(args.dev, args.bliss_procs, work, bliss_python=bliss_python)
    print(_save(doc, args.json_out))


def _save(doc: dict[str, Any], path: Path | None) -> str:
    text = json.dumps(doc, indent=2, default=float)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text


if __name__ == "__main__":
    main()
