"""benchmarks/gpu.py --smoke: the accelerator benchmark runs on the CPU without the host-only
modules (the GPU machine has torch, numpy and transformers, and none of librosa, soundfile, PyAV,
Ray or FastAPI), so the one prepared command cannot rot."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ci_support import import_or_skip

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu.py"
ABSENT = ("librosa", "soundfile", "av", "ray", "fastapi")
# sys.modules[name] = None: importing fails and importlib.util.find_spec answers None, as when the
# module is not installed (transformers probes its optional dependencies that way)
BOOT = (
    "import runpy, sys\n"
    f"for name in {ABSENT!r}:\n"
    "    sys.modules[name] = None\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    f"leaked = sorted(m for m in sys.modules if m.split('.')[0] in {ABSENT!r} and sys.modules[m] is not None)\n"
    "assert not leaked, leaked\n"
)


@pytest.fixture(autouse=True)
def _needs():
    import_or_skip("torch")
    import_or_skip("transformers")


def _run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": ""}  # the script finds src/ itself, as in a plain checkout
    proc = subprocess.run([sys.executable, "-c", BOOT, str(SCRIPT), "--smoke", "--device", "cpu",
                           "--json-out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _module():
    """benchmarks/gpu.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_runs_every_row_without_the_host_only_modules(tmp_path):
    doc = _run(tmp_path, "--more-groups", "2")
    gpu = _module()
    assert doc["skipped"] == [], doc["skipped"]
    assert [(r["model"], r["mode"]) for r in doc["rows"]] == [p for p in gpu.PLAN if p[1] != "stock" or "mert" in p[0]]
    assert doc["rows"][0]["model"] == "mert-v1-95m" and doc["rows"][0]["mode"] == "bf16"  # most important first
    assert doc["rows"][-1]["mode"] == "compile" and doc["environment"]["librosa_importable"] is False
    assert doc["environment"]["soundfile_importable"] is False and doc["weights"].startswith("random")
    for r in doc["rows"]:
        assert r["weights"] == "random" and r["e2e_clips"] >= 1 and r["e2e_clips_per_s"] > 0, r
        assert r["first_batch_s"] > 0 and r["peak_mem_mib"] > 0 and r["build_s"] >= 0, r
        assert r["e2e_host_cpu_s_per_clip"] > 0, r
        if r["mode"] != "stock":
            assert r["net_clips_per_s"] > 0 and r["batch"] >= 1, r
            assert set(r["e2e_by_group"]) == {"1", "2"} and r["e2e_by_group"]["2"]["clips"] >= 2, r
        if r["mode"] in ("bf16", "compile"):
            # CONTRACTS: half precision agrees with fp32 at cosine >= 0.999, every layer of every clip
            assert r[f"{r['mode']}_vs_fp32"]["cos_min"] >= 0.999, r
    by = {(r["model"], r["mode"]): r for r in doc["rows"]}
    assert by[("musicnn-msd", "fp32")]["front_end"].startswith("torch")  # librosa is absent
    assert by[("mert-v1-95m", "fp32")]["batch"] == 1  # max_batch="auto" on the CPU, as embed
    # the stock model (transformers' eager HubertModel, same seed) computes what ours computes
    assert by[("mert-v1-95m", "stock")]["stock_vs_ours_fp32"]["cos_min"] > 0.99999


def test_budget_keeps_the_first_row_and_skips_the_rest_with_a_reason(tmp_path):
    out = tmp_path / "gpu.json"  # in this process: torch is imported already, the budget is the rows'
    assert _module().main(["--smoke", "--device", "cpu", "--row-s", "1", "--budget-s", "4", "--models",
                           "mert-v1-95m,vggish", "--modes", "bf16,fp32", "--json-out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [(r["model"], r["mode"]) for r in doc["rows"]] == [("mert-v1-95m", "bf16")]
    assert doc["rows"][0]["e2e_s"] >= 1.0
    assert [s["reason"].split(":")[0] for s in doc["skipped"]] == ["budget"] * 3


def test_a_missing_dependency_skips_its_models_with_the_reason(tmp_path, monkeypatch):
    gpu = _module()
    monkeypatch.setattr(gpu, "_has", lambda m: m != "transformers")
    args = type("A", (), {"budget_s": 100.0, "row_s": 0.0, "smoke": True})()
    reason = gpu.skip_reason("mert-v1-330m", "fp32", args, {"skipped": []}, time.monotonic())
    assert reason == "needs transformers (not importable here)"
    assert gpu.skip_reason("vggish", "bf16", args, {"skipped": []}, time.monotonic()) is None


def test_embed_group_is_the_pipelines_batch_size():
    from soundalike.pipeline import embed

    assert _module().EMBED_GROUP == inspect.signature(embed).parameters["batch_size"].default
