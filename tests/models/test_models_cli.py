"""``soundalike models list|pull|import`` against a local hub (tests/models/conftest.py): no network.

MERT is a random checkpoint in the official key layout (``pytorch_model.bin`` with
``weight_g``/``weight_v`` and pre-training heads, MERT's own ``config.json``); the fast tests use
the narrow 2-layer layout, one ``slow`` test the full-size MERT-v1-95M.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soundalike.backends import _sources, load_backend
from soundalike.cli import app

from _weights_hub import COMMIT, HubFile  # tests/models is on sys.path (pytest prepend mode)

pytestmark = [pytest.mark.requires_import("torch", "transformers", "huggingface_hub")]

runner = CliRunner()
REPO = "m-a-p/MERT-v1-95M"


def _cli(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _save_mert(folder: Path, *, random_layers: int | None = None, tiny: bool = True, seed: int = 0):
    """A MERT release folder as the hub repo holds it; returns the in-memory reference backend."""
    import torch

    from soundalike.backends import _mert_net

    kw = {"tiny": True} if tiny else {"random_weights": True}
    ref = load_backend("mert-v1-95m", seed=seed, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(ref._cfg, indent=2))
    d = ref._model.config.hidden_size
    heads = {"final_proj.weight": torch.randn(8, d), "final_proj.bias": torch.zeros(8)}
    torch.save(_mert_net.export_checkpoint(ref._model, weight_norm_gv=True, extra=heads), folder / "pytorch_model.bin")
    return ref


@pytest.fixture(scope="module")
def tiny_mert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mert_repo")
    ref = _save_mert(folder)
    return folder, ref


def _named(folder: Path, stem: str, obj) -> Path:
    import torch

    tmp = folder / f"{stem}.tmp"
    torch.save(obj, tmp)
    final = folder / f"{stem}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(final)
    return final


@pytest.fixture(scope="module")
def vggish_release(tmp_path_factory):
    """Narrow random VGGish + PCA saved as torchvggish releases (sha256 prefix in the names)."""
    import torch

    from soundalike.backends import _vggish_net

    folder = tmp_path_factory.mktemp("vggish_release")
    model = _named(folder, "vggish", _vggish_net.build(tiny=True, seed=1).state_dict())
    g = torch.Generator().manual_seed(0)
    pca = _named(folder, "vggish_pca_params", {"pca_eigen_vectors": torch.randn(128, 128, generator=g, dtype=torch.float64),
                                               "pca_means": torch.zeros(128, dtype=torch.float64)})
    return folder, model, pca


@pytest.fixture
def served(hub, weights_env, tiny_mert, vggish_release, monkeypatch):
    """The hub serves the tiny MERT repo and the VGGish release; the sources table points at it."""
    folder, _ = tiny_mert
    hub.repos[REPO] = {"config.json": HubFile(folder / "config.json", lfs=False),
                       "pytorch_model.bin": HubFile(folder / "pytorch_model.bin", lfs=True)}
    vfolder, model, pca = vggish_release
    hub.releases = {model.name: model, pca.name: pca}
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setitem(_sources.SOURCES, "vggish",
                        replace(_sources.SOURCES["vggish"], base_url=hub.release_base, files=(model.name, pca.name)))
    return hub


def _status(name: str) -> dict:
    code, out, _ = _cli("models", "list", "--json")
    assert code == 0
    return next(r for r in json.loads(out) if r["name"] == name)


def _backend(name: str) -> dict:
    code, out, _ = _cli("backends", "--json")
    assert code == 0
    return next(r for r in json.loads(out) if r["name"] == name)


def _audio(n=2, seconds=1.0, sr=24000):
    t = np.arange(int(seconds * sr)) / sr
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) for i in range(n)]).astype(np.float32)


# --- the shipped table ----------------------------------------------------------------------------
def test_shipped_table_keeps_the_real_sources():
    s = _sources.SOURCES
    assert s["mert-v1-95m"].repo_id == "m-a-p/MERT-v1-95M" and s["mert-v1-330m"].repo_id == "m-a-p/MERT-v1-330M"
    assert s["mert-v1-95m"].licence == "CC BY-NC 4.0" and s["mert-v1-95m"].non_commercial
    assert s["vggish"].files == ("vggish-10086976.pth", "vggish_pca_params-970ea276.pth")
    assert s["vggish"].base_url == "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
    assert s["vggish"].licence == "Apache-2.0" and not s["vggish"].non_commercial
    assert s["musicnn-msd"].licence == "ISC"


def test_list_on_a_fresh_install(weights_env):
    code, out, _ = _cli("models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and {"mert-v1-95m", "mert-v1-330m", "vggish"} <= set(rows)
    for name in ("mert-v1-95m", "mert-v1-330m", "vggish"):
        r = rows[name]
        assert set(r) >= {"name", "status", "path", "size_bytes", "source", "licence", "revision", "sha256"}
        assert (r["status"], r["sha256"], r["revision"]) == ("missing", None, None)
    code, out, _ = _cli("models", "list")
    assert code == 0 and "mert-v1-95m" in out and "missing" in out and "CC BY-NC 4.0" in out


# --- pulls that succeed --------------------------------------------------------------------------
def test_pull_mert_into_weights_dir_then_backends_ready_and_loads(served, tiny_mert, weights_env):
    folder, ref = tiny_mert
    assert _backend("mert-v1-95m")["status"] == "weights-missing"
    code, out, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence")
    assert code == 0, err
    assert "CC BY-NC 4.0" in err.splitlines()[0]  # the licence comes first
    sha = hashlib.sha256((folder / "pytorch_model.bin").read_bytes()).hexdigest()
    assert sha in out
    row = _status("mert-v1-95m")
    assert (row["status"], row["revision"], row["sha256"]) == ("ready", COMMIT, sha)
    assert row["path"] == str(weights_env / "weights" / "MERT-v1-95M")
    manifest = json.loads((weights_env / "weights" / "MERT-v1-95M" / "soundalike-weights.json").read_text())
    assert manifest["revision"] == COMMIT and manifest["files"]["pytorch_model.bin"]["sha256"] == sha
    assert not (weights_env / "weights" / ".partial" / "MERT-v1-95M").exists()
    b = _backend("mert-v1-95m")
    assert (b["status"], b["weights_kind"]) == ("ready", "real")
    loaded = load_backend("mert-v1-95m")
    assert loaded.weights_kind == "real" and loaded.weights_sha256 == sha
    np.testing.assert_allclose(loaded.embed_layers(_audio()), ref.embed_layers(_audio()), rtol=1e-5, atol=1e-6)
    # only the loader's files were fetched, at the resolved commit
    fetched = {p.rsplit("/", 1)[-1] for m, p, _ in served.log if m == "GET" and "/api/" not in p}
    assert fetched == {"config.json", sha}
    # pulling the same revision again checks what is there and fetches nothing
    served.log.clear()
    assert _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")[0] == 0
    assert [p for m, p, _ in served.log if "/api/" not in p] == []


def test_pull_mert_into_hf_cache(served, weights_env, monkeypatch):
    monkeypatch.delenv("SOUNDALIKE_WEIGHTS_DIR")
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 0, err
    snap = weights_env / "hf_cache" / "models--m-a-p--MERT-v1-95M" / "snapshots" / COMMIT
    assert (snap / "pytorch_model.bin").is_symlink() and (snap / "config.json").exists()
    row = _status("mert-v1-95m")
    assert (row["status"], row["revision"], row["path"]) == ("ready", COMMIT, str(snap))
    assert _backend("mert-v1-95m")["status"] == "ready"


def test_pull_vggish_release_files(served, vggish_release, weights_env):
    _, model, pca = vggish_release
    code, out, err = _cli("models", "pull", "vggish")
    assert code == 0, err
    assert "Apache-2.0" in err.splitlines()[0]
    target = weights_env / "weights" / "vggish"
    assert sorted(p.name for p in target.iterdir()) == sorted([model.name, pca.name, "soundalike-weights.json"])
    row = _status("vggish")
    assert (row["status"], row["revision"]) == ("ready", "v0.1")
    b = _backend("vggish")
    assert (b["status"], b["weights_kind"], b["install_hint"]) == ("ready", "real", "")  # PCA found beside it


# --- resume ----------------------------------------------------------------------------------------
def test_cut_mert_download_resumes_with_a_range_request(served, tmp_path):
    """huggingface_hub hands data on in 10 MiB chunks and resumes after the last one it wrote, so
    the served checkpoint carries a 13 MB pre-training head (dropped by the loader, as upstream's)."""
    import torch

    from soundalike.backends import _mert_net

    ref = load_backend("mert-v1-95m", tiny=True, seed=3)
    folder = tmp_path / "padded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(ref._cfg))
    state = _mert_net.export_checkpoint(ref._model, extra={"label_embs_concat": torch.randn(3_300_000, 1)})
    torch.save(state, folder / "pytorch_model.bin")
    served.repos[REPO] = {"config.json": HubFile(folder / "config.json", lfs=False),
                          "pytorch_model.bin": HubFile(folder / "pytorch_model.bin", lfs=True)}
    size = (folder / "pytorch_model.bin").stat().st_size
    served.cut_once["pytorch_model.bin"] = 12_000_000
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 0, err
    ranges = [r for m, p, r in served.log if m == "GET" and "/cdn/" in p]
    assert len(ranges) == 2 and ranges[0] is None
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 12_000_000 < size  # the second request continued, it did not start again
    assert _status("mert-v1-95m")["status"] == "ready"
    x = _audio(n=1)
    np.testing.assert_allclose(load_backend("mert-v1-95m").embed_layers(x), ref.embed_layers(x), rtol=1e-5, atol=1e-6)


def test_cut_vggish_download_resumes_in_the_run_and_in_the_next_one(served, vggish_release, weights_env):
    _, model, pca = vggish_release
    served.cut_once[model.name] = 1000
    assert _cli("models", "pull", "vggish", "--no-progress")[0] == 0
    assert [r for m, p, r in served.log if m == "GET" and p.endswith(model.name)] == [None, "bytes=1000-"]
    # a partial file left by an interrupted run is continued, not restarted
    target = weights_env / "weights" / "vggish"
    for p in target.iterdir():
        p.unlink()
    (target / (pca.name + ".part")).write_bytes(pca.read_bytes()[:500])
    served.log.clear()
    assert _cli("models", "pull", "vggish", "--no-progress")[0] == 0
    assert [r for m, p, r in served.log if p.endswith(pca.name)] == ["bytes=500-"]
    assert _status("vggish")["status"] == "ready"


# --- failures: one line each, nothing registered ------------------------------------------------------
def test_corrupted_mert_download_is_refused_and_nothing_registered(served, tiny_mert, weights_env):
    folder, _ = tiny_mert
    served.corrupt.add("pytorch_model.bin")
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    line = _error_line(err)
    want = hashlib.sha256((folder / "pytorch_model.bin").read_bytes()).hexdigest()
    assert code == 1 and "pytorch_model.bin" in line and f"expected sha256 {want}" in line and "got " in line
    assert _status("mert-v1-95m")["status"] == "missing"
    assert not (weights_env / "weights" / "MERT-v1-95M").exists()
    assert not list((weights_env / "weights").rglob("pytorch_model.bin"))
    assert not (weights_env / "weights" / ".partial" / "MERT-v1-95M").exists()


def test_corrupted_mert_download_into_hf_cache_leaves_no_blob(served, weights_env, monkeypatch):
    monkeypatch.delenv("SOUNDALIKE_WEIGHTS_DIR")
    served.corrupt.add("pytorch_model.bin")
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 1 and "expected sha256" in _error_line(err)
    repo = weights_env / "hf_cache" / "models--m-a-p--MERT-v1-95M"
    assert not [p for p in (repo / "blobs").iterdir() if p.stat().st_size > 10_000]
    assert _status("mert-v1-95m")["status"] == "missing" and _backend("mert-v1-95m")["status"] == "weights-missing"


def test_corrupted_vggish_download_is_refused(served, vggish_release, weights_env):
    _, model, _ = vggish_release
    served.corrupt.add(model.name)
    code, _, err = _cli("models", "pull", "vggish", "--no-progress")
    line = _error_line(err)
    assert code == 1 and model.name in line and f"expected sha256 {model.name[7:15]}" in line and "got " in line
    assert not (weights_env / "weights" / "vggish" / model.name).exists()
    assert not (weights_env / "weights" / "vggish" / "soundalike-weights.json").exists()
    assert _status("vggish")["status"] == "missing"


def test_not_found_gives_one_line(served, monkeypatch):
    code, _, err = _cli("models", "pull", "mert-v1-330m", "--accept-licence", "--no-progress")  # not served
    assert code == 1 and "m-a-p/MERT-v1-330M: repository not found (HTTP 404)" in _error_line(err)
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--revision", "v9", "--no-progress")
    assert code == 1 and "revision 'v9' not found" in _error_line(err)
    served.missing.add("/releases/")
    code, _, err = _cli("models", "pull", "vggish", "--no-progress")
    assert code == 1 and "HTTP 404" in _error_line(err)


def test_refused_connection_gives_one_line(weights_env, monkeypatch, vggish_release):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 1 and "cannot connect" in _error_line(err) and str(port) in _error_line(err)
    monkeypatch.setitem(_sources.SOURCES, "vggish", replace(_sources.SOURCES["vggish"], base_url=f"http://127.0.0.1:{port}/"))
    code, _, err = _cli("models", "pull", "vggish", "--no-progress")
    assert code == 1 and "connection refused" in _error_line(err)


def test_time_out_gives_one_line(served):
    served.stall["/api/"] = 4.0
    t0 = time.monotonic()
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 1 and "no answer within 2 s" in _error_line(err)
    served.stall = {"/releases/": 4.0}
    code, _, err = _cli("models", "pull", "vggish", "--no-progress")
    assert code == 1 and "no answer within 2 s" in _error_line(err)
    assert time.monotonic() - t0 < 20


def test_refusing_the_licence_fetches_nothing(served, weights_env, monkeypatch):
    code, _, err = _cli("models", "pull", "mert-v1-95m")  # no terminal, no --accept-licence
    assert code == 1 and "not accepted" in _error_line(err) and "--accept-licence" in _error_line(err)
    assert served.log == []
    assert not (weights_env / "weights").exists() and not (weights_env / "hf_cache").exists()
    from soundalike.cli import models_cmds

    monkeypatch.setattr(models_cmds, "_stdin_is_terminal", lambda: True)  # as if typed at a terminal
    result = runner.invoke(app, ["models", "pull", "mert-v1-95m"], input="n\n")
    assert result.exit_code == 1 and "Accept the CC BY-NC 4.0 licence" in result.stderr and served.log == []
    result = runner.invoke(app, ["models", "pull", "mert-v1-95m", "--no-progress"], input="y\n")
    assert result.exit_code == 0, result.stderr
    assert _status("mert-v1-95m")["status"] == "ready"


# --- import ------------------------------------------------------------------------------------------
def test_import_snapshot_folder_and_release_files(weights_env, tiny_mert, vggish_release):
    folder, ref = tiny_mert
    code, _, err = _cli("models", "import", str(folder), "--name", "mert-v1-95m")
    assert code == 0, err
    row = _status("mert-v1-95m")
    assert row["status"] == "ready" and row["revision"] == "imported"
    assert _backend("mert-v1-95m")["status"] == "ready"
    vfolder, model, _ = vggish_release
    code, _, err = _cli("models", "import", str(vfolder), "--link")
    assert code == 0, err
    assert (weights_env / "weights" / "vggish" / model.name).is_symlink()
    assert _status("vggish")["status"] == "ready"


def test_import_of_a_corrupted_file_is_refused(weights_env, vggish_release, tmp_path):
    _, model, pca = vggish_release
    bad = tmp_path / "dl"
    bad.mkdir()
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    (bad / model.name).write_bytes(bytes(data))
    (bad / pca.name).write_bytes(pca.read_bytes())
    code, _, err = _cli("models", "import", str(bad))
    line = _error_line(err)
    assert code == 1 and model.name in line and f"expected {model.name[7:15]}" in line
    assert not (weights_env / "weights" / "vggish").exists()
    assert _status("vggish")["status"] == "missing"


def test_a_file_changed_after_the_pull_is_bad_checksum(served, weights_env):
    assert _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")[0] == 0
    f = weights_env / "weights" / "MERT-v1-95M" / "pytorch_model.bin"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    row = _status("mert-v1-95m")
    assert row["status"] == "bad-checksum" and "pytorch_model.bin" in row["detail"]
    from soundalike.errors import WeightsError

    with pytest.raises(WeightsError, match="soundalike-weights.json"):
        load_backend("mert-v1-95m")


# --- model key ---------------------------------------------------------------------------------------
def test_model_key_carries_the_weights_digest(tmp_path, weights_env):
    from soundalike.audio import WindowPolicy
    from soundalike.pipeline import model_key

    _save_mert(tmp_path / "a", seed=1)
    _save_mert(tmp_path / "b", seed=2)
    a = load_backend("mert-v1-95m", weights=tmp_path / "a")
    b = load_backend("mert-v1-95m", weights=tmp_path / "b")
    a2 = load_backend("mert-v1-95m", weights=tmp_path / "a")
    policy = WindowPolicy.parse("middle")
    assert a.weights_sha256 != b.weights_sha256
    assert a.model_key != b.model_key and model_key(a, policy)[0] != model_key(b, policy)[0]
    assert a.model_key == a2.model_key and model_key(a, policy)[0] == model_key(a2, policy)[0]


# --- full size ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_size_mert_95m_pull_and_load(hub, weights_env, tmp_path, monkeypatch):
    folder = tmp_path / "full"
    ref = _save_mert(folder, tiny=False, seed=5)
    assert ref.n_layers == 13 and ref.embedding_size == 768
    size = (folder / "pytorch_model.bin").stat().st_size
    assert size > 300e6, size
    hub.repos[REPO] = {"config.json": HubFile(folder / "config.json", lfs=False),
                       "pytorch_model.bin": HubFile(folder / "pytorch_model.bin", lfs=True)}
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, _, err = _cli("models", "pull", "mert-v1-95m", "--accept-licence", "--no-progress")
    assert code == 0, err
    assert _status("mert-v1-95m")["status"] == "ready"
    loaded = load_backend("mert-v1-95m")
    x = _audio(n=1, seconds=1.0)
    np.testing.assert_allclose(loaded.embed_layers(x), ref.embed_layers(x), rtol=1e-5, atol=1e-6)
