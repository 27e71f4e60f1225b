"""The neural backends on an accelerator, end to end and network alone: one prepared command.

Builds MERT-v1-95M, MERT-v1-330M, VGGish and musicnn-msd with **random weights of the real
shapes** (cost only: the vectors mean nothing), feeds synthetic 30 s clips at each model's rate
and measures, per model and precision (fp32, bf16, then ``torch.compile`` last):

- **end to end**: decoded PCM in host memory -> vectors in host memory, through the backend's
  own front end and batching, in calls of ``--group`` windows as ``embed`` makes them
  (``pipeline.embed(batch_size=16)`` on an accelerator, one track per call on the CPU), and on an
  accelerator also in calls of 128 (README's ``--batch-size 128`` for a GPU; ``e2e_by_group``);
- **network alone**: the front end's output already on the device, one batch of the size the
  backend chooses (MERT ``max_batch="auto"``: from free memory on CUDA, 1 on the CPU; VGGish 256
  examples; musicnn 32 patches), synchronised;
- time to the first batch (model to the device and, for MERT, the batch-size probe included),
  peak memory, bf16-vs-fp32 cosine (every layer, every clip compared), the device's name, the
  host's process CPU seconds per clip (all threads: on a GPU, what feeding the device costs);
- beside them the stock implementation: transformers' ``HubertModel`` with eager attention at
  fp32, batch 1, fed as MERT's model card does (``Wav2Vec2FeatureExtractor``, then
  ``torch.stack(hidden_states).mean(-2)``), where transformers is importable.

On an accelerator the front ends run there in torch (``backends/_torch_frontends.py``, checked
against the CPU ones in ``tests/backends/test_torch_frontends.py``); musicnn's backend computes its
log-mel with librosa on the host, so its rows here use the torch front end with the backend's
network whenever the device is not the CPU or librosa is missing (``front_end`` says which).

Runs from a plain checkout with only numpy and torch (transformers for MERT): nothing here
imports librosa, soundfile, PyAV, Ray or FastAPI; a model whose dependency is missing is skipped
with the reason. The JSON is rewritten after every row, the most important row (MERT-95M bf16)
runs first, and no row starts when ``--budget-s`` would be overrun (compile rows need
``COMPILE_RESERVE_S`` left). Usage::

    timeout 560 python benchmarks/gpu.py --budget-s 480 --json-out out/gpu.json   # a GPU machine
    python benchmarks/gpu.py --device cpu --budget-s 900 --json-out benchmarks/results/gpu_cpu.json
    python benchmarks/gpu.py --smoke --json-out /tmp/gpu_smoke.json                  # tiny, seconds
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

#: windows per ``embed_with_companions`` call on an accelerator: ``pipeline.embed``'s default
#: ``batch_size`` (tests/backends/test_gpu_benchmark.py checks that they agree)
EMBED_GROUP = 16
#: the group README.md recommends on a GPU (``embed --batch-size 128``), timed beside EMBED_GROUP
README_GPU_GROUP = 128
COMPILE_RESERVE_S = 240.0  # compiling MERT took minutes on an H100 (PERFORMANCE.md)
RATES = {"mert-v1-95m": 24000, "mert-v1-330m": 24000, "vggish": 16000, "musicnn-msd": 16000}
NEEDS = {"mert-v1-95m": ("torch", "transformers"), "mert-v1-330m": ("torch", "transformers"),
         "vggish": ("torch",), "musicnn-msd": ("torch",)}
#: (model, mode) in order of importance; "stock" is transformers' eager MERT
PLAN = [
    ("mert-v1-95m", "bf16"), ("mert-v1-95m", "fp32"), ("mert-v1-95m", "stock"),
    ("mert-v1-330m", "bf16"), ("mert-v1-330m", "fp32"),
    ("vggish", "bf16"), ("vggish", "fp32"), ("musicnn-msd", "bf16"), ("musicnn-msd", "fp32"),
    ("mert-v1-95m", "compile"), ("vggish", "compile"), ("musicnn-msd", "compile"), ("mert-v1-330m", "compile"),
]


# --- inputs -----------------------------------------------------------------------------------
def synthetic_clips(n: int, seconds: float, rate: int, *, seed: int = 0) -> list[np.ndarray]:
    """`n` different clips: a few tones with vibrato and a noise floor, at random gains."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    out = []
    for _ in range(n):
        y = 0.02 * rng.standard_normal(t.size)
        for f in rng.uniform(60.0, min(4000.0, rate / 3), size=3):
            y += rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * rng.uniform(0.1, 6) * t))
        out.append((y * rng.uniform(0.2, 1.0) / max(np.abs(y).max(), 1e-9)).astype(np.float32))
    return out


# --- models -----------------------------------------------------------------------------------
def build(model: str, mode: str, device: str, *, smoke: bool, compile_backend: str):
    """The backend of `model` (random weights of the real shapes; the tiny layouts with --smoke)."""
    import torch

    dtype = "float32" if mode == "fp32" else "bfloat16"
    size = {"tiny": True} if smoke else {"random_weights": True}
    if model.startswith("mert"):
        from soundalike.backends.mert import MertV1_95M, MertV1_330M

        cls = MertV1_95M if model == "mert-v1-95m" else MertV1_330M
        b = cls(device=device, dtype=dtype, **size)
    elif model == "vggish":
        from soundalike.backends.vggish import VGGish

        b = VGGish(device=device, dtype=dtype, **size)
    else:
        from soundalike.backends.musicnn import MusicnnMSD

        # the public constructor; tiny=True is musicnn's full network with seeded random weights
        b = MusicnnMSD(device=device, dtype=dtype, tiny=True, runtime="reference")
    if mode == "compile":
        b._bench_compiled = torch.compile(_network(b), backend=compile_backend, dynamic=False)
    return b


def _network(b) -> Any:
    """The backend's torch module (MERT's HubertModel, VGGish's and musicnn's nets)."""
    model = getattr(b, "_model", None)  # (a module's truth value is its length: compare with None)
    return b._net if model is None else model


def _forward(b) -> Any:
    compiled = getattr(b, "_bench_compiled", None)
    return _network(b) if compiled is None else compiled


def _autocast(b):
    import torch

    dev = torch.device(b.device).type
    return torch.autocast(device_type=dev, dtype=getattr(torch, b.dtype), enabled=b.dtype != "float32")


def musicnn_on_device(b, x_np: np.ndarray) -> list[np.ndarray]:
    """musicnn-msd with the torch front end: [penultimate, taggram] means, as embed_with_companions."""
    import torch

    from soundalike.backends import _torch_runtime
    from soundalike.backends._torch_frontends import musicnn_log_mel

    frames = 187
    net = _forward(b)
    net.to(b.device)
    with torch.inference_mode():
        mel = musicnn_log_mel(_torch_runtime.to_device(x_np, b.device))
        n_p = (mel.shape[1]) // frames
        patches = mel[:, : n_p * frames].reshape(-1, frames, mel.shape[-1])
        pen, tag = [], []
        with _autocast(b):
            for part in patches.split(b.max_batch):
                got = net(part)
                pen.append(got["penultimate"].float())
                tag.append(torch.sigmoid(got["logits"].float()))
        n = x_np.shape[0]
        return [torch.cat(v).reshape(n, n_p, -1).mean(1, dtype=torch.float64)[:, None].float().cpu().numpy()
                for v in (pen, tag)]


def end_to_end(b, model: str, batch: np.ndarray, torch_front_end: bool) -> list[np.ndarray]:
    """PCM in host memory -> vectors in host memory, as ``embed_decoded`` calls the backend."""
    if model == "musicnn-msd" and torch_front_end:
        return musicnn_on_device(b, batch)
    if hasattr(b, "_bench_compiled"):  # the compiled network in the backend's own path
        if model.startswith("mert"):
            b._forward = b._bench_compiled
            b._model.to(b.device)
        else:
            b._net.to(b.device)
            b._forward, b._on_device = b._bench_compiled, True
    return b.embed_with_companions(batch)


def network_alone(b, model: str, clips: list[np.ndarray]) -> tuple[Callable[[], Any], int, float]:
    """(one forward pass on a device-resident batch, its batch size, clips per pass)."""
    import torch

    from soundalike.backends import _mert_net, _torch_frontends, _torch_runtime

    with torch.inference_mode():
        if model.startswith("mert"):
            b._ready(clips[0].shape[0])  # the batch size as embed chooses it
            size = int(b.max_batch)
            x = _torch_frontends.normalize_windows(_torch_runtime.to_device(_take(clips, size), b.device))
            net = _forward(b)
            return (lambda: _mert_net.pooled_hidden_states(net, x)), size, float(size)
        net = _forward(b)
        net.to(b.device)
        size = int(b.max_batch)
        pcm = _torch_runtime.to_device(_take(clips, max(1, min(len(clips), size))), b.device)
        if model == "vggish":
            units = _torch_frontends.vggish_log_mel_examples(pcm).reshape(-1, 1, 96, 64)
        else:
            mel = _torch_frontends.musicnn_log_mel(pcm)
            units = mel[:, : (mel.shape[1] // 187) * 187].reshape(-1, 187, mel.shape[-1])
        per_clip = units.shape[0] / pcm.shape[0]
        units = units.repeat(-(-size // units.shape[0]), *([1] * (units.dim() - 1)))[:size]
        return (lambda: net(units)), size, size / per_clip


def _take(clips: list[np.ndarray], n: int) -> np.ndarray:
    return np.stack([clips[i % len(clips)] for i in range(n)])


# --- measurement --------------------------------------------------------------------------------
def _sync(device: str) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: str) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: str) -> tuple[float, str]:
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS so far (CPU)"


def cosine_report(a: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Minimum over clips and layers of the raw cosine, and of the cosine after subtracting the
    reference's mean vector per layer (mean-pooled states share a large common direction)."""
    a = a.reshape(a.shape[0], -1, a.shape[-1]).astype(np.float64)
    ref = ref.reshape(ref.shape[0], -1, ref.shape[-1]).astype(np.float64)

    def cos(u, v):
        return (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-30)

    mu = ref.mean(axis=0, keepdims=True)
    out = {"cos_min": float(cos(a, ref).min()), "clips": int(a.shape[0]), "layers": int(a.shape[1])}
    if a.shape[0] > 1:
        out["cos_centred_min"] = float(cos(a - mu, ref - mu).min())
    return out


def run_row(model: str, mode: str, args, clips: list[np.ndarray], kept: dict) -> dict[str, Any]:
    """One row: build, first batch, timed end-to-end calls, timed network passes."""
    import torch

    device, group = args.device, args.group
    row: dict[str, Any] = {"model": model, "mode": mode, "weights": "random", "device": device,
                           "precision": "float32" if mode in ("fp32", "stock") else "bfloat16",
                           "compiled": mode == "compile", "clip_s": args.clip_s, "group": group,
                           "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    cpu0 = time.process_time()
    _peak_reset(device)
    if mode == "stock":
        return _stock_row(model, args, clips, kept, row, cpu0)
    t0 = time.perf_counter()
    b = build(model, mode, device, smoke=args.smoke, compile_backend=args.compile_backend)
    row["build_s"] = round(time.perf_counter() - t0, 3)
    torch_fe = model == "musicnn-msd" and (torch.device(device).type != "cpu" or not _has("librosa"))
    row["front_end"] = ("torch on the device (_torch_frontends)" if torch_fe or (model != "musicnn-msd" and device != "cpu")
                        else "the backend's CPU front end")
    first = [clips[i % len(clips)] for i in range(group)]
    t1 = time.perf_counter()
    out = end_to_end(b, model, np.stack(first), torch_fe)
    row["first_batch_s"] = round(time.perf_counter() - t1, 3)
    row["first_batch_from_build_s"] = round(time.perf_counter() - t0, 3)
    kept[(model, mode)] = out[0]
    # end to end: whole calls of `group` windows until --row-s or --max-clips, per group size
    row["e2e_by_group"] = {}
    for g in [group, *args.more_groups]:
        if g != group:
            end_to_end(b, model, _take(clips, g), torch_fe)  # a new shape (cuDNN plans, compiled graph)
        n, t2, c2, i = 0, time.perf_counter(), time.process_time(), g
        while True:
            batch = np.stack([clips[(i + k) % len(clips)] for k in range(g)])  # embed stacks each call
            end_to_end(b, model, batch, torch_fe)
            n, i = n + g, i + g
            if time.perf_counter() - t2 >= (args.row_s if g == group else args.row_s / 2) or n >= args.max_clips:
                break
        e2e = time.perf_counter() - t2
        row["e2e_by_group"][str(g)] = {"clips": n, "s": round(e2e, 3), "clips_per_s": round(n / e2e, 3),
                                       "host_cpu_s_per_clip": round((time.process_time() - c2) / n, 4)}
    first_g = row["e2e_by_group"][str(group)]
    row.update(e2e_clips=first_g["clips"], e2e_s=first_g["s"], e2e_clips_per_s=first_g["clips_per_s"],
               e2e_host_cpu_s_per_clip=first_g["host_cpu_s_per_clip"])
    # the network alone, on a device-resident batch of the backend's batch size
    fn, size, clips_per_pass = network_alone(b, model, clips)
    row.update(batch=size, batch_unit={"mert-v1-95m": "windows", "mert-v1-330m": "windows"}.get(model, "examples" if model == "vggish" else "patches"))
    with torch.inference_mode(), _autocast(b):
        fn()  # warm (a compiled graph for this shape, cuDNN plans)
        _sync(device)
        passes, t3, c3 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            passes += 1
            _sync(device)
            if time.perf_counter() - t3 >= args.row_s / 2 or passes * clips_per_pass >= args.max_clips:
                break
    net = time.perf_counter() - t3
    row.update(net_clips=round(passes * clips_per_pass, 2), net_s=round(net, 3),
               net_clips_per_s=round(passes * clips_per_pass / net, 3),
               net_host_cpu_s_per_clip=round((time.process_time() - c3) / (passes * clips_per_pass), 4))
    peak, kind = _peak_mib(device)
    row.update(peak_mem_mib=round(peak, 1), peak_mem_kind=kind)
    _compare(model, mode, kept, row)
    row["cpu_s"] = round(time.process_time() - cpu0, 2)
    row["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return row


def _stock_row(model, args, clips, kept, row, cpu0) -> dict[str, Any]:
    """transformers' HubertModel, eager attention, fp32, batch 1, as MERT's model card runs it."""
    import torch
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    from soundalike.backends import _mert_net

    layout = "MERT-v1-95M" if model == "mert-v1-95m" else "MERT-v1-330M"
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the seed of our random instance: the same weights
        net = HubertModel(_mert_net.hubert_config(_mert_net.mert_config(layout, tiny=args.smoke), attention="eager"))
    net = net.eval().to(args.device)
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    row.update(build_s=round(time.perf_counter() - t0, 3), front_end="Wav2Vec2FeatureExtractor (numpy, host)",
               group=1, batch=1, batch_unit="windows", precision="float32")

    def one(clip):
        inputs = fe(clip, sampling_rate=24000, return_tensors="pt")
        with torch.inference_mode():
            out = net(inputs["input_values"].to(args.device), output_hidden_states=True)
            return torch.stack(out.hidden_states).squeeze(1).mean(-2).cpu().numpy()

    t1 = time.perf_counter()
    vecs = [one(clips[0])]
    row["first_batch_s"] = round(time.perf_counter() - t1, 3)
    n_ref = kept.get((model, "fp32"), np.zeros((0,))).shape[0]
    n, t2, c2 = 0, time.perf_counter(), time.process_time()
    while True:
        v = one(clips[(n + 1) % len(clips)])
        n += 1
        if len(vecs) < max(n_ref, 1):
            vecs.append(v)
        if time.perf_counter() - t2 >= args.row_s or n >= args.max_clips:
            break
    e2e = time.perf_counter() - t2
    row.update(e2e_clips=n, e2e_s=round(e2e, 3), e2e_clips_per_s=round(n / e2e, 3),
               e2e_host_cpu_s_per_clip=round((time.process_time() - c2) / n, 4))
    peak, kind = _peak_mib(args.device)
    row.update(peak_mem_mib=round(peak, 1), peak_mem_kind=kind)
    ref = kept.get((model, "fp32"))
    if ref is not None and len(vecs) >= ref.shape[0]:
        # the same weights and clips: the stock model and ours agree (95M: post-LN, same top layer)
        row["stock_vs_ours_fp32"] = cosine_report(np.stack(vecs[: ref.shape[0]]), ref)
    row["cpu_s"] = round(time.process_time() - cpu0, 2)
    row["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return row


def _compare(model: str, mode: str, kept: dict, row: dict) -> None:
    """bf16 (and compiled bf16) vectors against fp32 ones of the same clips, once both exist."""
    fp32 = kept.get((model, "fp32"))
    if fp32 is None:
        return
    for other in ("bf16", "compile"):
        vec = kept.get((model, other))
        if vec is not None and (mode == other or mode == "fp32"):
            (row if mode == other else row.setdefault("backfill", {}))[f"{other}_vs_fp32" if mode == other else other] = \
                cosine_report(vec, fp32)


# --- driver -------------------------------------------------------------------------------------
def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "transformers": _version("transformers"), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(), "cpu": _cpu_name(),
        "librosa_importable": _has("librosa"), "soundfile_importable": _has("soundfile"),
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    else:
        env["gpu"] = None
    return env


def _version(module: str) -> str | None:
    if not _has(module):
        return None
    try:
        return __import__(module).__version__
    except Exception as exc:  # a broken install is worth a line in the JSON, not a crash
        return f"import failed: {exc}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def skip_reason(model: str, mode: str, args, doc: dict, started: float) -> str | None:
    """Why a row does not run: a missing dependency, a failed model, or the time budget."""
    missing = [m for m in NEEDS[model] + (("transformers",) if mode == "stock" else ()) if not _has(m)]
    if missing:
        return f"needs {', '.join(missing)} (not importable here)"
    if any(r["model"] == model and r.get("reason", "").startswith("failed") for r in doc["skipped"]):
        return "an earlier row of this model failed"
    left = args.budget_s - (time.monotonic() - started)
    need = COMPILE_RESERVE_S if mode == "compile" and not args.smoke else 2.5 * args.row_s
    if left < need:
        return f"budget: {left:.0f} s of --budget-s {args.budget_s:.0f} left, this row needs about {need:.0f} s"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    ap.add_argument("--budget-s", type=float, default=480.0, help="no row starts that would end past this")
    ap.add_argument("--row-s", type=float, default=None, help="timed seconds per row (default 10; smoke 0)")
    ap.add_argument("--max-clips", type=int, default=4096, help="at most this many clips timed per row")
    ap.add_argument("--pool", type=int, default=None, help="distinct synthetic clips per rate (default 32)")
    ap.add_argument("--group", type=int, default=None,
                    help=f"windows per embed call (default: {EMBED_GROUP} on an accelerator, 1 on the CPU, as embed)")
    ap.add_argument("--more-groups", default=None,
                    help=f"further group sizes timed end to end (default on an accelerator: {README_GPU_GROUP}, "
                         "README's `--batch-size` for a GPU; none on the CPU)")
    ap.add_argument("--clip-s", type=float, default=None, help="clip length (default 30; smoke 3)")
    ap.add_argument("--models", default=",".join(RATES), help="comma-separated subset of " + ",".join(RATES))
    ap.add_argument("--modes", default="bf16,fp32,stock,compile", help="comma-separated subset of bf16,fp32,stock,compile")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend (smoke: eager)")
    ap.add_argument("--smoke", action="store_true", help="tiny layouts, 3 s clips, one pass per row (the test)")
    ap.add_argument("--json-out", type=Path, required=True)
    args = ap.parse_args(argv)
    started = time.monotonic()
    if args.smoke:
        args.row_s = 0.0 if args.row_s is None else args.row_s
        args.clip_s = args.clip_s or 3.0
        args.pool = args.pool or 3
        args.compile_backend = "eager" if args.compile_backend == "inductor" else args.compile_backend
    args.row_s = 10.0 if args.row_s is None else args.row_s
    args.clip_s = args.clip_s or 30.0
    args.pool = args.pool or 32
    doc: dict[str, Any] = {"benchmark": "benchmarks/gpu.py", "argv": sys.argv[1:] if argv is None else argv,
                           "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "smoke": args.smoke, "weights": "random (real shapes; tiny layouts with --smoke)",
                           "rows": [], "skipped": []}

    def save() -> None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_out.with_suffix(args.json_out.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, args.json_out)

    if not _has("torch"):
        doc["error"] = "torch is not importable: nothing to measure"
        save()
        print(doc["error"], file=sys.stderr)
        return 1
    from soundalike.backends import _torch_runtime

    args.device = _torch_runtime.resolve_device(args.device)
    on_cpu = _torch_runtime.device_type(args.device) == "cpu"
    if args.group is None:
        args.group = 1 if on_cpu else EMBED_GROUP
    if args.more_groups is None:
        args.more_groups = "" if on_cpu else str(README_GPU_GROUP)
    args.more_groups = [int(g) for g in args.more_groups.split(",") if g.strip() and int(g) != args.group]
    doc["environment"] = environment(args.device)
    doc["settings"] = {k: getattr(args, k) for k in ("device", "budget_s", "row_s", "max_clips", "pool", "group", "more_groups",
                                                   "clip_s", "compile_backend")}
    save()
    models, modes = args.models.split(","), args.modes.split(",")
    pools: dict[int, list[np.ndarray]] = {}
    kept: dict = {}
    for model, mode in PLAN:
        if model not in models or mode not in modes or (mode == "stock" and not model.startswith("mert")):
            continue
        reason = skip_reason(model, mode, args, doc, started)
        if reason is None:
            rate = RATES[model]
            if rate not in pools:
                pools[rate] = synthetic_clips(args.pool, args.clip_s, rate)
            print(f"[gpu.py] {model} {mode} ...", file=sys.stderr, flush=True)
            try:
                row = run_row(model, mode, args, pools[rate], kept)
            except Exception as exc:  # one broken model must not lose the other rows
                reason = f"failed: {type(exc).__name__}: {exc}"
            else:
                for back in row.pop("backfill", {}).items():
                    target = next(r for r in doc["rows"] if r["model"] == model and r["mode"] == back[0])
                    target[f"{back[0]}_vs_fp32"] = back[1]
                doc["rows"].append(row)
                print(f"[gpu.py]   {json.dumps(row)}", file=sys.stderr, flush=True)
        if reason is not None:
            doc["skipped"].append({"model": model, "mode": mode, "reason": reason})
            print(f"[gpu.py] {model} {mode} skipped: {reason}", file=sys.stderr, flush=True)
        _free(args.device)
        save()
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    save()
    return 0


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
