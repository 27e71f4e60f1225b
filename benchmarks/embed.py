"""End-to-end embedding throughput: decode + resample + front end + model, per backend.

For each backend two paths are timed on the same clips, each in its own fresh Python process
(so peak RSS and CPU time belong to that path alone):

``pipeline``
    what ``soundalike embed`` does: ``soundalike.pipeline.embed`` on a temporary store
    (window policy ``middle:30``; decode at the file's rate with libsndfile, soxr resampling to
    the backend rate, windows of many tracks stacked into one ``embed_layers`` call, vectors
    written to SQLite). The store is filled by ``pipeline.ingest`` *before* the clock starts.
``naive``
    the baseline a script would write: one clip at a time, ``librosa.load(path, sr=backend rate)``
    of the middle 30 s, then ``backend.embed_layers(y[None])``; no batching, nothing stored.

Model construction is timed apart (``load s``) and one 30 s noise clip is embedded before the
clock starts (warm-up: lazy imports, allocator, first-call kernels). Reported: wall seconds per
clip, clips/s, CPU seconds per clip (process plus decode workers), peak RSS of the process, and
for the naive loop the wall time spent decoding + resampling.

Backends whose real weights are missing here (VGGish, MERT) run with *random weights of the full
architecture* (``random_weights=True``) when ``--allow-random`` is on (the default): they cost
what the real models cost, and say nothing about quality. Every row names its weights kind.

Usage::

    python benchmarks/embed.py                                   # musicnn-msd, descriptors, vggish, mert-v1-95m:4
    python benchmarks/embed.py --backend musicnn-msd --backend mert-v1-95m:2 --clips 16 --threads 2
    python benchmarks/embed.py --device cuda --dtype bfloat16 --batch-size 128 --jobs 8 --json-out out/embed.json

``NAME:N`` limits that backend to N clips (MERT-v1-95M takes seconds per clip on a CPU).
The machine is usually shared: the load average before and after each run is recorded.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "demo" / "music"
DEFAULT_BACKENDS = ("musicnn-msd", "descriptors", "vggish", "mert-v1-95m:4")
AUDIO_EXT = (".ogg", ".flac", ".wav", ".mp3", ".opus")


# --- machine facts -------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3  # type: ignore[return-value]


def machine_info(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "device": device,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = None
    return info


# --- clips -----------------------------------------------------------------------------------
def pick_clips(root: Path, n: int) -> list[Path]:
    """`n` files spread evenly over the sorted library (so several artists/styles are covered)."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXT and p.is_file())
    if not files:
        raise SystemExit(f"no audio files under {root}; pass --root DIR")
    n = min(n, len(files))
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


# --- worker: one (backend, path) measurement in a fresh process ------------------------------
def _rss_mib(who: int) -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    v = resource.getrusage(who).ru_maxrss
    return v / (1024 * 1024) if sys.platform == "darwin" else v / 1024


def _cpu_s() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _build_backend(name: str, device: str, allow_random: bool, dtype: str = "float32"):
    from soundalike.backends.registry import backend_class, load_backend
    from soundalike.errors import SoundalikeError

    cls = backend_class(name)
    params = inspect.signature(cls.__init__).parameters
    if "torch" not in getattr(cls, "requires", ()):  # --device/--dtype concern the torch backends only
        device, dtype = "cpu", "float32"
    opts = {"dtype": dtype} if dtype != "float32" else {}
    try:
        return load_backend(name, device=device, **opts)
    except SoundalikeError as exc:
        if not allow_random or "random_weights" not in params:
            raise SystemExit(f"{name}: {exc}")
        # Full-size random weights: same architecture and cost as the real model.
        return load_backend(name, device=device, random_weights=True, **opts)


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one path for one backend; returns a row (printed as JSON by ``--_worker``)."""
    import numpy as np

    if spec["threads"]:
        import torch

        torch.set_num_threads(spec["threads"])
    clips = [Path(p) for p in spec["clips"]]
    t0 = time.perf_counter()
    backend = _build_backend(spec["backend"], spec["device"], spec["allow_random"], spec.get("dtype", "float32"))
    load_s = time.perf_counter() - t0
    sr = backend.sample_rate
    # warm-up on noise (not timed)
    rng = np.random.default_rng(0)
    backend.embed_layers((0.1 * rng.standard_normal((1, 30 * sr))).astype(np.float32))

    row: dict[str, Any] = {
        "backend": backend.name, "weights_kind": backend.weights_kind, "path": spec["path"],
        "clips": len(clips), "sample_rate": sr, "dim": backend.embedding_size, "n_layers": backend.n_layers,
        "load_s": round(load_s, 3), "device": spec["device"], "threads": spec["threads"] or os.cpu_count(),
    }
    if spec["path"] == "naive":
        import librosa

        from soundalike.audio import WindowPolicy

        policy = WindowPolicy()
        decode_s = 0.0
        cpu0, w0 = _cpu_s(), time.perf_counter()
        for p in clips:
            d0 = time.perf_counter()
            dur = librosa.get_duration(path=str(p))
            start, length = policy.starts(dur)[0]
            y, _ = librosa.load(str(p), sr=sr, mono=True, offset=start, duration=length)
            decode_s += time.perf_counter() - d0
            backend.embed_layers(np.ascontiguousarray(y, dtype=np.float32)[None, :])
        wall = time.perf_counter() - w0
        cpu = _cpu_s() - cpu0
        # decode + resample share of the naive loop (the rest is front end + model)
        row["decode_s_per_clip"] = round(decode_s / len(clips), 4)
    else:
        from soundalike.pipeline import embed, ingest
        from soundalike.store import Store

        with tempfile.TemporaryDirectory(prefix="sa-bench-") as tmp:
            manifest = Path(tmp) / "manifest.csv"
            with manifest.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["path", "artist", "title"])
                for p in clips:
                    w.writerow([str(p.resolve()), p.parent.name, p.stem])
            with Store(Path(tmp) / "bench.db") as store:
                ing = ingest(store, clips[0].parent.parent, manifest=manifest)
                if ing.n_failed:
                    raise SystemExit(f"ingest failed: {ing.as_json()['failures']}")
                cpu0, w0 = _cpu_s(), time.perf_counter()
                summary = embed(store, [backend], jobs=spec["jobs"], batch_size=spec["batch_size"])
                wall = time.perf_counter() - w0
                cpu = _cpu_s() - cpu0
                if summary.n_failed or summary.done != len(clips):
                    raise SystemExit(f"embed did not embed every clip: {summary.as_json()}")
    row.update(
        wall_s=round(wall, 3),
        s_per_clip=round(wall / len(clips), 4),
        clips_per_s=round(len(clips) / wall, 3),
        cpu_s_per_clip=round(cpu / len(clips), 4),
        peak_rss_mib=round(_rss_mib(resource.RUSAGE_SELF), 1),
        peak_rss_children_mib=round(_rss_mib(resource.RUSAGE_CHILDREN), 1),
    )
    return row


# --- driver ------------------------------------------------------------------------------------
def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    if spec["threads"]:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(spec["threads"])
    before = loadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--_worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"backend": spec["backend"], "path": spec["path"], "error": " | ".join(tail)}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["loadavg_1m_before"] = round(before, 2)
    row["loadavg_1m_after"] = round(loadavg()[0], 2)
    return row


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ("| backend | weights | path | clips | s / clip | clips/s | CPU s / clip | decode s / clip "
            "| peak RSS MiB | load s | load avg (1 min) before→after |")
    lines = [head, "|" + "|".join(["---"] * 11) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | – | {r['path']} | – | error: {r['error']} | | | | | | |")
            continue
        kind = r["weights_kind"] + (" (cost only)" if r["weights_kind"] == "random" else "")
        dec = f"{r['decode_s_per_clip']:.3f}" if "decode_s_per_clip" in r else "–"
        lines.append(
            f"| {r['backend']} | {kind} | {r['path']} | {r['clips']} | {r['s_per_clip']:.3f} "
            f"| {r['clips_per_s']:.2f} | {r['cpu_s_per_clip']:.3f} | {dec} | {r['peak_rss_mib']:.0f} | {r['load_s']:.2f} "
            f"| {r['loadavg_1m_before']:.2f}→{r['loadavg_1m_after']:.2f} |"
        )
    # speed-up of the pipeline over the naive loop, per backend
    ups = []
    by = {(r["backend"], r["path"]): r for r in rows if "error" not in r}
    for (name, path), r in by.items():
        if path == "pipeline" and (name, "naive") in by:
            ups.append(f"{name}: ×{by[(name, 'naive')]['s_per_clip'] / r['s_per_clip']:.2f}")
    if ups:
        lines.append("")
        lines.append("Pipeline speed-up over the naive loop (naive s/clip ÷ pipeline s/clip): " + ", ".join(ups) + ".")
    lines.append("")
    lines.append("decode s / clip: wall time of librosa decode + resample inside the naive loop (the rest is "
                 "front end + model). Random-weight rows measure cost only, never quality.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", action="append", default=None,
                    help="backend name, optionally NAME:N to cap its clips (repeatable; default: "
                         + ", ".join(DEFAULT_BACKENDS) + ")")
    ap.add_argument("--clips", type=int, default=16, help="clips per backend (default 16)")
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of audio files (default demo/music)")
    ap.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (default: all cores)")
    ap.add_argument("--jobs", type=int, default=1, help="decoding worker processes of the pipeline path (default 1)")
    ap.add_argument("--batch-size", type=int, default=16, help="tracks per pipeline batch (default 16)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (needs torch.cuda)")
    ap.add_argument("--dtype", default="float32", help="autocast precision of the torch backends (bfloat16 on a GPU)")
    ap.add_argument("--paths", default="naive,pipeline", help="which paths to time, comma-separated")
    ap.add_argument("--no-random", dest="allow_random", action="store_false",
                    help="fail instead of falling back to full-size random weights when real ones are missing")
    ap.add_argument("--json-out", type=Path, default=None, help="write machine facts and rows as JSON here")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.clips < 1:
        ap.error(f"--clips must be >= 1, got {args.clips}")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    bad = [p for p in paths if p not in ("naive", "pipeline")]
    if bad or not paths:
        ap.error(f"--paths takes naive and/or pipeline, got {args.paths!r}")
    args.paths = paths
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._worker is not None:
        print(json.dumps(worker(json.loads(args._worker))))
        return 0
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: torch.cuda is not available on this machine; use --device cpu")
    info = machine_info(args.device)
    info["loadavg_start"] = [round(x, 2) for x in loadavg()]
    rows: list[dict[str, Any]] = []
    for item in args.backend or DEFAULT_BACKENDS:
        name, _, cap = item.partition(":")
        n = min(args.clips, int(cap)) if cap else args.clips
        clips = [str(p) for p in pick_clips(args.root, n)]
        for path in args.paths:
            spec = {"backend": name, "path": path, "clips": clips, "device": args.device, "threads": args.threads,
                    "jobs": args.jobs, "batch_size": args.batch_size, "allow_random": args.allow_random,
                    "dtype": args.dtype}
            row = run_one(spec)
            rows.append(row)
            print(f"# {name} {path}: " + (row.get("error") or f"{row['s_per_clip']:.3f} s/clip"), file=sys.stderr, flush=True)
    info["loadavg_end"] = [round(x, 2) for x in loadavg()]
    print(f"Machine: {info['nproc']} × {info['cpu_model']}, device {info['device']}, {info['date_utc']}, "
          f"load average at start {info['loadavg_start']}, at end {info['loadavg_end']}\n")
    print(markdown_table(rows))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
