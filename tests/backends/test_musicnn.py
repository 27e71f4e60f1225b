"""musicnn: the TF-checkpoint reader, the torch port against musicnn's own TF outputs (golden),
and the backend contract (shapes, batching, padding, status)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from soundalike.backends import musicnn as mn
from soundalike.backends._tf_checkpoint import checkpoint_files, crc32c, is_optimizer_slot, read_tf_checkpoint
from soundalike.backends.registry import available_backends, backend_class, load_backend
from soundalike.errors import ParameterError, SoundalikeWarning, WeightsError

SR = 16000
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "musicnn_golden"
BACKENDS = {  # registry name -> (checkpoint, n model variables, n parameters, penultimate size)
    "musicnn-msd": ("MSD_musicnn", 64, 792_079, 200),
    "musicnn-mtt": ("MTT_musicnn", 64, 792_079, 200),
    "musicnn-msd-vgg": ("MSD_vgg", 36, 607_030, 256),
    "musicnn-mtt-vgg": ("MTT_vgg", 36, 607_030, 256),
}

needs_weights = pytest.mark.requires_import("musicnn")
needs_torch = pytest.mark.requires_import("torch")


def _checkpoint_dir(model: str) -> Path:
    folder = mn.find_musicnn_checkpoint(model)
    assert folder is not None, f"musicnn is importable but its {model} checkpoint is missing"
    return folder


@pytest.fixture
def tmp_checkpoint(tmp_path: Path):
    """A writable copy of a musicnn checkpoint folder."""

    def _copy(model: str = "MSD_musicnn") -> Path:
        dst = tmp_path / model
        shutil.copytree(_checkpoint_dir(model), dst)
        return dst

    return _copy


# --- crc32c ----------------------------------------------------------------------------------
def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue check value
    assert crc32c(b"") == 0


def test_crc32c_vectorised_path_equals_bytewise(rng):
    data = rng.integers(0, 256, size=5 * 1024 + 77, dtype=np.uint8).tobytes()
    reg = 0xFFFFFFFF
    for b in data:  # textbook bitwise CRC-32C (reflected polynomial 0x82F63B78)
        reg ^= b
        for _ in range(8):
            reg = (reg >> 1) ^ 0x82F63B78 if reg & 1 else reg >> 1
    assert crc32c(data) == reg ^ 0xFFFFFFFF


def test_optimizer_slot_names():
    for name in ("conv2d/kernel/Adam", "conv2d/kernel/Adam_1", "beta1_power", "beta2_power", "global_step"):
        assert is_optimizer_slot(name)
    for name in ("conv2d/kernel", "batch_normalization_10/moving_variance", "dense_1/bias", "1CNN/kernel"):
        assert not is_optimizer_slot(name)


# --- checkpoint reader on the real files ------------------------------------------------------
@needs_weights
@pytest.mark.parametrize("name", list(BACKENDS))
def test_reader_loads_every_model_variable(name):
    model, n_vars, n_params, _ = BACKENDS[name]
    variables = read_tf_checkpoint(_checkpoint_dir(model))
    assert len(variables) == n_vars
    assert sum(v.size for v in variables.values()) == n_params
    assert not any("Adam" in k or k.endswith("_power") for k in variables)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in variables.values())
    if "vgg" in model:
        assert variables["1CNN/kernel"].shape == (3, 3, 1, 128)
        assert variables["dense/kernel"].shape == (256, 50)
    else:
        assert variables["conv2d/kernel"].shape == (7, 38, 1, 204)
        assert variables["conv2d_1/kernel"].shape == (7, 67, 1, 204)
        assert variables["conv2d_2/kernel"].shape == (128, 1, 1, 51)
        assert variables["conv2d_5/kernel"].shape == (7, 561, 1, 64)
        assert variables["dense/kernel"].shape == (1506, 200)
        assert variables["dense_1/kernel"].shape == (200, 50)
        assert variables["batch_normalization_9/moving_variance"].shape == (1506,)
        assert (variables["batch_normalization_9/moving_variance"] > 0).all()


@needs_weights
def test_reader_keeps_optimizer_slots_on_request():
    folder = _checkpoint_dir("MSD_musicnn")
    everything = read_tf_checkpoint(folder, skip_optimizer=False)
    model_only = read_tf_checkpoint(folder)
    slots = set(everything) - set(model_only)
    assert slots == {f"{k}/Adam" for k in _trainable(model_only)} | {f"{k}/Adam_1" for k in _trainable(model_only)} | {"beta1_power", "beta2_power"}
    for k, v in model_only.items():  # same bytes either way
        np.testing.assert_array_equal(everything[k], v)


def _trainable(variables: dict) -> list[str]:
    return [k for k in variables if not k.endswith(("moving_mean", "moving_variance"))]


@needs_weights
def test_reader_accepts_folder_index_file_and_prefix():
    folder = _checkpoint_dir("MTT_vgg")
    index, data = checkpoint_files(folder)
    assert index == folder / ".index" and data == folder / ".data-00000-of-00001"
    assert checkpoint_files(folder / ".index") == (index, data)
    a, b = read_tf_checkpoint(folder), read_tf_checkpoint(folder / ".index")
    assert a.keys() == b.keys()


@needs_weights
def test_reader_detects_a_flipped_byte_in_the_data(tmp_checkpoint):
    folder = tmp_checkpoint("MSD_musicnn")
    data_path = folder / ".data-00000-of-00001"
    blob = bytearray(data_path.read_bytes())
    blob[12345] ^= 0x01
    data_path.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="crc32c"):
        read_tf_checkpoint(folder)
    assert read_tf_checkpoint(folder, verify=False)  # the check is what catches it


@needs_weights
@pytest.mark.parametrize("damage", ["truncate-index", "flip-index", "truncate-data", "missing-data", "not-a-table"])
def test_reader_refuses_damaged_files(tmp_checkpoint, damage):
    folder = tmp_checkpoint("MSD_vgg")
    index_path, data_path = folder / ".index", folder / ".data-00000-of-00001"
    if damage == "truncate-index":
        index_path.write_bytes(index_path.read_bytes()[:-10])
    elif damage == "flip-index":
        blob = bytearray(index_path.read_bytes())
        blob[40] ^= 0xFF
        index_path.write_bytes(bytes(blob))
    elif damage == "truncate-data":
        data_path.write_bytes(data_path.read_bytes()[: 1000])
    elif damage == "missing-data":
        data_path.unlink()
    else:
        index_path.write_bytes(b"not a checkpoint index" * 10)
    with pytest.raises(WeightsError, match="damaged|missing"):
        read_tf_checkpoint(folder)


def test_reader_names_the_missing_folder(tmp_path):
    with pytest.raises(WeightsError, match="No TensorFlow checkpoint"):
        read_tf_checkpoint(tmp_path)
    with pytest.raises(WeightsError, match="missing"):
        read_tf_checkpoint(tmp_path / "nothing" / "model.ckpt")


# --- golden: the port against musicnn's own TensorFlow outputs --------------------------------
@pytest.fixture(scope="module")
def golden_input() -> np.ndarray:
    return np.load(GOLDEN / "input_16k.npy")


@needs_torch
def test_front_end_matches_upstream_logmel(golden_input):
    from soundalike.backends._musicnn_net import log_mel

    ours = log_mel(golden_input[None])[0]
    np.testing.assert_allclose(ours, np.load(GOLDEN / "logmel.npy"), rtol=1e-6, atol=1e-6)


@needs_weights
@needs_torch
@pytest.mark.parametrize("name", list(BACKENDS))
def test_golden_against_upstream_tensorflow(name, golden_input):
    model, _, _, d = BACKENDS[name]
    ref = np.load(GOLDEN / f"{model}.npz", allow_pickle=False)
    tags = load_backend(name, output="taggram")
    assert tags.weights_kind == "real"
    got_tags, times = tags.get_timestamp_embeddings(golden_input[None])
    assert got_tags.shape == (1, 5, 50)
    np.testing.assert_allclose(got_tags[0], ref["taggram"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(times[0], 1488.0 + 2992.0 * np.arange(5))

    pen = load_backend(name)  # output="penultimate"
    got_pen, _ = pen.get_timestamp_embeddings(golden_input[None])
    assert got_pen.shape == (1, 5, d)
    np.testing.assert_allclose(got_pen[0], ref["penultimate"], rtol=1e-3, atol=1e-5)
    # the stored clip vector is the mean over the patches
    np.testing.assert_allclose(pen.embed_layers(golden_input[None])[0, 0], ref["penultimate"].mean(0), rtol=1e-3, atol=1e-5)
    if "mean_pool" in ref:
        pooled = load_backend(name, output="pooled").get_timestamp_embeddings(golden_input[None])[0]
        np.testing.assert_allclose(pooled[0], ref["mean_pool"], rtol=1e-3, atol=1e-4)


@needs_weights
@needs_torch
def test_real_msd_tags_a_metal_excerpt_as_metal(golden_input):
    model = load_backend("musicnn-msd")
    probs, names = model.tag_probabilities(golden_input)
    top = [names[i] for i in np.argsort(-probs[0])[:5]]
    assert top[0] == "metal" and "heavy metal" in top
    assert probs.shape == (1, 50) and ((probs > 0) & (probs < 1)).all()


# --- backend contract on random weights (tiny=True: same architecture) ------------------------
@needs_torch
@pytest.mark.parametrize("name", list(BACKENDS))
def test_tiny_shapes_and_sizes(name, gen):
    _, _, _, d = BACKENDS[name]
    x = gen.clips(SR, 7.0, n=2)  # 7 s: two whole 3 s patches
    sizes = {"penultimate": d, "taggram": 50} | ({} if "vgg" in name else {"pooled": 753})
    keys = set()
    for output, size in sizes.items():
        m = load_backend(name, tiny=True, output=output)
        assert m.weights_kind == "random" and m.sample_rate == SR and m.embedding_size == size
        assert m.config()["output"] == output and m.config()["tiny"] is True
        emb = m.embed_layers(x)
        assert emb.shape == (2, 1, size) and emb.dtype == np.float32 and np.isfinite(emb).all()
        ts, times = m.get_timestamp_embeddings(x)
        assert ts.shape == (2, 2, size) and times.shape == (2, 2) and times.dtype == np.float32
        assert (times > 0).all() and (times < 7000).all()
        np.testing.assert_allclose(emb[:, 0], ts.mean(axis=1), rtol=1e-5, atol=1e-6)
        keys.add(m.model_key)
    assert len(keys) == len(sizes)  # the output is part of the model key
    assert backend_class(name).default_embedding_size == d


@needs_torch
def test_tiny_taggram_is_probabilities(gen):
    m = load_backend("musicnn-mtt", tiny=True, output="taggram")
    p = m.embed_layers(gen.clips(SR, 3.5, n=3))
    assert ((p >= 0) & (p <= 1)).all()


@needs_torch
def test_vgg_has_no_pooled_output():
    with pytest.raises(ParameterError, match="output='pooled'.*'penultimate', 'taggram'"):
        load_backend("musicnn-msd-vgg", tiny=True, output="pooled")


@needs_torch
@pytest.mark.parametrize("name", ["musicnn-msd", "musicnn-mtt-vgg"])
def test_batch_equals_one_by_one(name, gen):
    x = gen.clips(SR, 6.5, n=3)
    m = load_backend(name, tiny=True)
    batch = m.embed_layers(x)
    single = np.concatenate([m.embed_layers(x[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)
    small = load_backend(name, tiny=True, max_batch=1).embed_layers(x)  # patches one at a time
    np.testing.assert_allclose(batch, small, rtol=1e-5, atol=1e-6)


@needs_torch
def test_deterministic_and_seeded(gen):
    x = gen.clips(SR, 3.2, n=1)
    a = load_backend("musicnn-msd", tiny=True).embed_layers(x)
    b = load_backend("musicnn-msd", tiny=True).embed_layers(x)
    c = load_backend("musicnn-msd", tiny=True, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.embed_layers(x))
    assert c.weights_sha256 != load_backend("musicnn-msd", tiny=True).weights_sha256


@needs_torch
def test_short_clip_is_padded_with_a_warning(gen):
    m = load_backend("musicnn-msd", tiny=True)
    short = gen.sine(440.0, 1.0, SR)[None, :]
    with pytest.warns(SoundalikeWarning, match="shorter than one musicnn patch.*padded"):
        emb = m.embed_layers(short)
    padded = np.pad(short, ((0, 0), (0, mn.MIN_SAMPLES - short.shape[1])))
    np.testing.assert_allclose(emb, m.embed_layers(padded), rtol=1e-6, atol=1e-7)
    assert mn.n_patches_for(mn.MIN_SAMPLES) == 1 and mn.n_patches_for(mn.MIN_SAMPLES - 1) == 0


@needs_torch
def test_rejects_bad_audio_and_options(gen):
    m = load_backend("musicnn-msd", tiny=True)
    with pytest.raises(Exception, match="dtype|dimensions|NaN"):
        m.embed_layers(np.zeros((1, 1, 50000), dtype=np.float32))
    with pytest.raises(Exception, match="NaN"):
        m.embed_layers(np.full((1, 50000), np.nan, dtype=np.float32))
    with pytest.raises(ParameterError, match="output='mfcc'"):
        load_backend("musicnn-msd", tiny=True, output="mfcc")
    with pytest.raises(ParameterError, match="max_batch"):
        load_backend("musicnn-msd", tiny=True, max_batch=0)
    with pytest.raises(ParameterError, match="either weights"):
        load_backend("musicnn-msd", tiny=True, weights="/nonexistent")


def test_patch_times():
    np.testing.assert_allclose(mn.patch_times_ms(3), [1488.0, 4480.0, 7472.0])
    assert mn.n_patches_for(30 * SR) == 10  # a 30 s clip: 10 patches, as upstream


# --- weights lookup and status --------------------------------------------------------------
@needs_weights
@needs_torch
def test_weights_path_and_digest(tmp_checkpoint, tmp_path, golden_input):
    folder = tmp_checkpoint("MTT_musicnn")
    by_path = load_backend("musicnn-mtt", weights=folder)
    by_parent = load_backend("musicnn-mtt", weights=tmp_path)  # a folder holding MTT_musicnn/
    digest = hashlib.sha256((folder / ".data-00000-of-00001").read_bytes()).hexdigest()
    assert by_path.weights_sha256 == by_parent.weights_sha256 == digest
    assert by_path.weights_kind == "real"
    assert by_path.model_key == load_backend("musicnn-mtt").model_key  # same bytes, same key
    with pytest.raises(WeightsError, match="No MSD_musicnn checkpoint"):
        load_backend("musicnn-msd", weights=tmp_path / "elsewhere")


@needs_weights
@needs_torch
def test_wrong_architecture_checkpoint_is_refused(tmp_checkpoint):
    vgg_folder = tmp_checkpoint("MSD_vgg")
    with pytest.raises(WeightsError, match="does not fit the MSD_musicnn architecture"):
        load_backend("musicnn-msd", weights=vgg_folder)


@needs_weights
def test_weights_dir_env_is_searched(tmp_checkpoint, tmp_path, monkeypatch):
    folder = tmp_checkpoint("MSD_musicnn")
    root = tmp_path / "weights"
    (root / "musicnn").mkdir(parents=True)
    folder.rename(root / "musicnn" / "MSD_musicnn")
    monkeypatch.setenv("SOUNDALIKE_WEIGHTS_DIR", str(root))
    assert mn.find_musicnn_checkpoint("MSD_musicnn") == root / "musicnn" / "MSD_musicnn"


def test_status_weights_missing_names_the_install_command(monkeypatch):
    monkeypatch.setattr(mn, "_package_dir", lambda: None)
    for name in BACKENDS:
        st = backend_class(name).status()
        if importlib.util.find_spec("torch") is None:
            assert st.status == "needs-extra"
            continue
        assert st.status == "weights-missing"
        assert "pip install --no-deps musicnn==0.1.0" in st.install_hint
        assert st.embedding_size == BACKENDS[name][3] and st.sample_rate == SR
    if importlib.util.find_spec("torch") is not None:
        with pytest.raises(WeightsError, match=r"pip install --no-deps musicnn==0\.1\.0"):
            load_backend("musicnn-msd")


def test_status_needs_extra_without_torch(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real_find_spec(n, *a))
    st = backend_class("musicnn-msd").status()
    assert st.status == "needs-extra" and "soundalike[torch]" in st.install_hint


@needs_weights
@needs_torch
def test_status_ready_with_the_real_weights():
    for name in BACKENDS:
        st = backend_class(name).status()
        assert st.status == "ready" and st.weights_kind == "real", st


# --- registry / tags / import hygiene ---------------------------------------------------------
def test_registered_names_and_tag_names():
    assert set(BACKENDS) <= set(available_backends())
    assert backend_class("musicnn-msd").tag_names == mn.MSD_TAGS
    assert backend_class("musicnn-mtt-vgg").tag_names == mn.MTT_TAGS
    assert len(mn.MSD_TAGS) == len(set(mn.MSD_TAGS)) == 50 and len(mn.MTT_TAGS) == len(set(mn.MTT_TAGS)) == 50


@needs_weights
def test_tag_names_match_upstream_configuration():
    from musicnn import configuration  # plain constants; importing it does not import TensorFlow

    assert mn.MSD_TAGS == tuple(configuration.MSD_LABELS)
    assert mn.MTT_TAGS == tuple(configuration.MTT_LABELS)


def test_module_imports_without_torch():
    code = "import sys, soundalike.backends.musicnn; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_torch
def test_tiny_needs_no_musicnn_package(monkeypatch, gen):
    monkeypatch.setattr(mn, "_package_dir", lambda: None)
    m = load_backend("musicnn-msd", tiny=True)
    assert m.embed_layers(gen.clips(SR, 3.0, n=1)).shape == (1, 1, 200)


@needs_weights
@needs_torch
def test_bfloat16_agrees_with_float32(golden_input):
    # CONTRACTS.md: half-precision paths report cosine agreement with fp32 (>= 0.999)
    a = load_backend("musicnn-msd").get_timestamp_embeddings(golden_input[None])[0][0]
    half = load_backend("musicnn-msd", dtype="bfloat16")
    assert half.config()["dtype"] == "bfloat16"
    b = half.get_timestamp_embeddings(golden_input[None])[0][0]
    assert b.dtype == np.float32
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.999


@needs_weights
@needs_torch
def test_factorised_front_end_equals_the_reference(golden_input):
    """The default CPU runtime (exact low-rank factorisation of the trained filters) gives the
    reference port's outputs: far inside the fp32 equality tolerance of CONTRACTS."""
    fast = load_backend("musicnn-msd")
    ref = load_backend("musicnn-msd", runtime="reference")
    assert fast.runtime == "factorised" and ref.runtime == "reference"
    assert fast.model_key == ref.model_key  # same function of the same weights: same stored vectors
    assert fast._runner.ranks[:4] == [23, 14, 3, 7]  # the trained filter banks' ranks
    x = np.stack([golden_input, golden_input[::-1].copy()])
    for out in ("penultimate", "taggram", "pooled"):
        a = ref.with_output(out).get_timestamp_embeddings(x)[0]
        b = fast.with_output(out).get_timestamp_embeddings(x)[0]
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() >= 0.999999


@needs_torch
def test_companion_taggram_comes_from_the_same_pass(gen):
    m = load_backend("musicnn-msd", tiny=True)
    (tag_view,) = m.companions()
    assert tag_view.output == "taggram" and tag_view.embedding_size == 50 and tag_view._net is m._net
    assert tag_view.model_key != m.model_key and tag_view.config()["output"] == "taggram"
    x = gen.clips(SR, 7.0, n=2)
    pen, tags = m.embed_with_companions(x)
    np.testing.assert_allclose(pen, m.embed_layers(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tags[:, 0], m.tag_probabilities(x)[0], rtol=1e-6, atol=1e-7)
    assert m.with_output("taggram").companions() == []
    with pytest.raises(ParameterError):
        load_backend("musicnn-msd-vgg", tiny=True, runtime="factorised")


@needs_weights
@needs_torch
def test_model_keys_need_no_torch_and_the_network_is_built_once():
    """A process that only names model keys (the parent of analysis workers) never imports
    torch; the first embedding builds the network once, shared with the taggram view."""
    code = (
        "import sys\n"
        "from soundalike.backends import load_backend\n"
        "m = load_backend('musicnn-msd')\n"
        "keys = (m.model_key, m.companions()[0].model_key)\n"
        "assert 'torch' not in sys.modules, 'torch was imported to name model keys'\n"
        "import numpy as np\n"
        "tags = m.companions()[0]\n"
        "pen, tg = m.embed_with_companions(np.zeros((1, 16000 * 4), np.float32) + 0.01)\n"
        "assert tags._net is m._net and pen.shape == (1, 1, 200) and tg.shape == (1, 1, 50)\n"
        "print(keys)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_backend("musicnn-msd").model_key in r.stdout
