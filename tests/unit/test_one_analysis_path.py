"""One analysis path (issue 23): every way in analyses one small library (good, bad and truncated
files) the same way — `soundalike run`, `ingest` + `embed`, `embed --ray` on a local Ray, the
service's rescan and `beet soundalike` store the same vectors (CONTRACTS tolerance), the same
failure kinds and the same summaries; an upload of a library file gives its stored vector; and
only the analysis package calls the kernel."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from soundalike.cli import app
from soundalike.store import Store
from tests.conftest import SR, chirp, noise, tone

pytestmark = pytest.mark.slow
runner = CliRunner()
BACKEND = "descriptors"  # DSP, no weights: the beets plugin and the service build it by name
SRC = Path(__file__).resolve().parents[2] / "src"


def _write_library(lib: Path) -> None:
    good = {"Tone Artist": [tone(220, 4), tone(330, 4)], "Noise Artist": [noise(4, seed=1), noise(4, seed=2, amp=0.3)],
            "Chirp Artist": [chirp(4), chirp(4, f0=300, f1=6000)]}
    for artist, ys in good.items():
        for i, y in enumerate(ys):
            p = lib / artist / "Album" / f"{i:02d} Song.{'flac' if i else 'wav'}"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), y, SR)
    bad = lib / "Bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "corrupt.ogg").write_bytes(np.random.default_rng(3).bytes(3000))
    sf.write(str(bad / "silent.wav"), np.zeros(SR * 2, np.float32), SR)
    sf.write(str(bad / "short.wav"), noise(0.2), SR)
    (bad / "song.mid").write_bytes(b"MThd")
    cut = lib / "Cut" / "Album" / "01 Cut.flac"  # decodes in part: embedded from what decodes, reported
    cut.parent.mkdir(parents=True)
    sf.write(str(cut), noise(6, seed=6, amp=0.25), SR)
    data = cut.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])


def _state(db: Path, lib: Path) -> dict:
    """Tracks (relative path), vectors per (path, model, layer, window) and every failure recorded."""
    with Store(db, readonly=True) as s:
        rel = {t.track_id: os.path.relpath(t.path, lib) for t in s.tracks()}
        vectors = {}
        for m in s.models():
            for layer in range(m.n_layers):
                tids, windows, X = s.window_embeddings(m.model_key, layer=layer)
                for tid, w, x in zip(tids, windows, X):
                    vectors[(rel[tid], m.model_key, layer, int(w))] = x
        # distinct (path, kind): a run records a file once per kind, ingest + embed are two runs
        failures = sorted({(os.path.relpath(p, lib), k) for p, k in s.execute("SELECT path, kind FROM failures")})
    return {"tracks": sorted(rel.values()), "vectors": vectors, "failures": failures}


def _same(got: dict, ref: dict, *, only: set[str] | None = None) -> None:
    keep = (lambda p: p in only) if only is not None else (lambda p: True)
    assert [p for p in got["tracks"] if keep(p)] == [p for p in ref["tracks"] if keep(p)]
    assert [f for f in got["failures"] if keep(f[0])] == [f for f in ref["failures"] if keep(f[0])]
    want = {k: v for k, v in ref["vectors"].items() if keep(k[0])}
    assert got["vectors"].keys() == want.keys()
    for k, v in want.items():
        np.testing.assert_allclose(got["vectors"][k], v, rtol=1e-5, atol=1e-6)


def _summary(doc: dict) -> tuple:
    """What a user reads of a summary: counts, failure kinds per path, reports per path."""
    return (doc["stage"], doc["done"], doc["cached"], doc["failed"], doc["reported"],
            sorted((Path(f["path"]).name, f["kind"]) for f in doc["failures"]),
            sorted((Path(f["path"]).name, f["kind"]) for f in doc["reports"]))


def _cli(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("one-path") / "lib"
    _write_library(root)
    return root


@pytest.fixture(scope="module")
def reference(lib, tmp_path_factory) -> dict:
    """`soundalike run` (worker processes): the store and its two summaries."""
    base = tmp_path_factory.mktemp("run")
    _cli("run", str(lib), "--db", str(base / "run.db"), "--out", str(base / "out"), "--backend", BACKEND, "--jobs", "2")
    runs = json.loads((base / "out" / "report.json").read_text())["runs"]
    return {"db": base / "run.db", "state": _state(base / "run.db", lib), "ingest": runs[0], "embed": runs[1]}


def test_run_reports_every_failure_kind_and_the_truncated_file(reference):
    st = reference["state"]
    assert len(st["tracks"]) == 7  # 6 good + the truncated one
    assert _summary(reference["ingest"])[:5] == ("ingest", 7, 0, {"decode": 1, "empty": 1, "silent": 1,
                                                                     "too-short": 1, "unsupported": 1},
                                                   {"truncated": 1})
    assert _summary(reference["embed"])[:5] == ("embed", 7, 0, {}, {"truncated": 1})


def test_ingest_then_embed_equal_run(lib, reference, tmp_path):
    db = str(tmp_path / "two.db")
    s1 = json.loads(_cli("ingest", str(lib), "--db", db, "--jobs", "1", "--json"))
    s2 = json.loads(_cli("embed", "--db", db, "--backend", BACKEND, "--jobs", "1", "--json"))
    _same(_state(tmp_path / "two.db", lib), reference["state"])
    assert _summary(s1) == _summary(reference["ingest"])
    assert _summary(s2) == _summary(reference["embed"])


def test_embed_ray_on_a_local_cluster_equals_run(lib, reference, tmp_path, ray_cluster):
    db = str(tmp_path / "ray.db")
    _cli("ingest", str(lib), "--db", db, "--json")
    s2 = json.loads(_cli("embed", "--ray", "--workers", "2", "--db", db, "--backend", BACKEND, "--batch-size", "3",
                         "--json"))
    _same(_state(tmp_path / "ray.db", lib), reference["state"])
    assert _summary(s2) == _summary(reference["embed"])


def test_embed_ray_is_embed_with_ray_on():
    import typer.main

    def params(name: str) -> dict:
        cmd = typer.main.get_command(app).commands[name]
        return {p.name: p.default for p in cmd.params}

    a, b = params("embed"), params("embed-ray")
    assert a.pop("ray") is False and b.pop("ray") is True
    assert a == b  # the same options with the same defaults (backends, batch size, workers)


def test_service_rescan_equals_run(lib, reference, tmp_path):
    from fastapi.testclient import TestClient

    from soundalike.analysis import Folder, analyse
    from soundalike.backends import load_backend
    from soundalike.serve import Settings, create_app

    db = tmp_path / "serve.db"
    first = sorted(lib.rglob("00 Song.wav"))[0]
    with Store(db) as s:  # a served library of one track (a watcher's batch of one file)
        out = analyse(s, Folder(lib, paths=[first]), [load_backend(BACKEND)], run_id=s.start_run(["seed"]))
        assert (out.ingest.done, out.embed.done) == (1, 1)
    with TestClient(create_app(Settings(db=db, api_token="tok", library_root=lib)), base_url="http://localhost") as c:
        assert c.post("/api/admin/rescan", headers={"Authorization": "Bearer tok"}).status_code == 202
        deadline = time.monotonic() + 300
        while c.get("/api/health").json()["n_tracks"] < 7:
            assert time.monotonic() < deadline, "rescan did not finish"
            time.sleep(0.5)
        while c.app.state.rescan_thread.is_alive():
            time.sleep(0.2)
    _same(_state(db, lib), reference["state"])


def test_upload_of_a_library_file_gives_its_stored_vector(lib, reference):
    from fastapi.testclient import TestClient

    from soundalike.analysis import model_key
    from soundalike.audio import WindowPolicy
    from soundalike.backends import load_backend
    from soundalike.serve import Settings, create_app
    from soundalike.serve.upload import Embedder, decode_upload

    path = sorted(lib.rglob("01 Song.flac"))[0]
    key = model_key(load_backend(BACKEND), WindowPolicy())[0]
    with Store(reference["db"], readonly=True) as s:
        tids, X = s.track_embeddings(key)  # the window mean
        tid = s.track_ids_by_path()[str(path)]
        emb = Embedder(s.model(key), 0)
    stored = X[tids.index(tid)]
    data = path.read_bytes()
    clip = emb.embed(decode_upload(data, max_bytes=1 << 24, policy=emb.policy, sample_rate=emb.sample_rate))
    np.testing.assert_allclose(clip.vector, stored, rtol=1e-5, atol=1e-6)
    with TestClient(create_app(Settings(db=reference["db"])), base_url="http://localhost") as c:
        r = c.post("/api/query", files={"file": ("x.flac", data, "audio/flac")}, params={"k": 3})
    assert r.status_code == 200, r.text
    assert r.json()["tracks"][0]["track_id"] == tid  # its own stored vector is the nearest


@pytest.mark.requires_import("beets")
def test_beet_soundalike_equals_run(lib, reference, tmp_path):
    base = tmp_path / "beets"
    base.mkdir()
    (base / "config.yaml").write_text(f"""directory: {base / 'library'}
library: {base / 'beets.db'}
plugins: [soundalike]
soundalike:
  db: {base / 'soundalike.db'}
  backend: {BACKEND}
import:
  copy: no
  write: no
  autotag: no
  duplicate_action: keep
""", encoding="utf-8")  # keep: untagged albums would look like duplicates of one another
    env = {**os.environ, "BEETSDIR": str(base), "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    exe = shutil.which("beet", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert exe, "the `beet` program of PyPI beets is not on PATH"
    subprocess.run([exe, "import", "-A", "-C", "-W", "-q", str(lib)], env=env, check=True, capture_output=True,
                   timeout=600)
    listed = subprocess.run([exe, "ls", "-p"], env=env, check=True, capture_output=True, text=True).stdout.split("\n")
    items = {os.path.relpath(p, lib) for p in listed if p.strip()}
    assert {p for p in reference["state"]["tracks"]} <= items  # beets reads every file run analysed
    res = subprocess.run([exe, "soundalike"], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "embed" in res.stderr and "ingest" in res.stderr  # progress bars, as `soundalike run` draws them
    _same(_state(base / "soundalike.db", lib), reference["state"], only=items)
    ing, emb = (line for line in res.stdout.splitlines() if line.startswith(("ingest:", "embed:")))
    n_bad = sum(1 for p in items for f in reference["ingest"]["failures"] if os.path.relpath(f["path"], lib) == p)
    assert ing.startswith(f"ingest: 7 done, 0 cached, {n_bad} failed") and n_bad >= 2  # as run's, for beets' items (silent, too short)
    assert emb == "embed: 7 done, 0 cached, 0 failed"


def _kernel_calls(path: Path) -> list[str]:
    names = {"decode_track", "embed_decoded", "commit"}
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(m in (node.module or "") for m in ("analysis", "pipeline", "kernel")):
            imported |= {a.asname or a.name for a in node.names if a.name in names}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in imported or (isinstance(f, ast.Attribute) and f.attr in names
                                    and isinstance(f.value, ast.Name) and f.value.id in ("pipeline", "analysis", "kernel")):
                out.append(f"{path.name}:{node.lineno} calls {name}")
    return out


def test_only_the_analysis_package_calls_the_kernel(tmp_path):
    pkg = SRC / "soundalike" / "analysis"
    outside = [p for p in [*SRC.rglob("*.py")] if pkg not in p.parents]
    bad = [c for p in outside for c in _kernel_calls(p)]
    assert not bad, bad
    # the rule sees a call: a module calling the kernel (imported or as an attribute) would be caught
    probe = tmp_path / "probe.py"
    probe.write_text("from ..pipeline import decode_track\nfrom .. import pipeline\n\ndecode_track('x', None, ())\n"
                     "pipeline.commit(None, [], None)\n")
    assert _kernel_calls(probe) == ["probe.py:4 calls decode_track", "probe.py:5 calls commit"]
    assert any(_kernel_calls(p) for p in pkg.rglob("*.py"))  # and it sees the package's own calls


def test_the_analysis_package_never_imports_the_query_layer_or_surfaces():
    bad = []
    for p in (SRC / "soundalike" / "analysis").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and (node.module or "").split(".")[0] in (
                    "query", "cli", "serve", "reports", "evaluate"):
                bad.append(f"{p.name} imports {node.module}")
    assert not bad, bad


def test_the_query_layer_never_starts_an_analysis():
    """Query modules may read what the analysis stored (the taggram model), never run it."""
    starts = {"analyse", "ingest", "embed", "ingest_and_embed", "fill_taggrams", "decode_track", "embed_decoded",
              "commit", "embed_clip", "decode_clip"}
    bad = []
    for p in (SRC / "soundalike" / "query").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and any(m in (node.module or "") for m in ("analysis", "pipeline",
                                                                                          "track_workers", "distributed")):
                bad += [f"{p.name} imports {a.name}" for a in node.names if a.name in starts or a.name == "*"]
            elif isinstance(node, ast.Import):
                bad += [f"{p.name} imports {a.name}" for a in node.names
                        if a.name.startswith(("soundalike.pipeline", "soundalike.track_workers"))]
    assert not bad, bad
