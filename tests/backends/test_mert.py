"""MERT-v1: config mapping, windows, normalisation, layer stack, checkpoint loading."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import numpy as np
import pytest

from soundalike.backends.registry import backend_class, load_backend
from soundalike.errors import InvalidAudioError, ParameterError, WeightsError

pytestmark = pytest.mark.usefixtures("isolated_weights")

SR = 24000
HEAD_KEYS = ("final_proj.weight", "final_proj.bias", "label_embs_concat")


@pytest.fixture(autouse=True)
def _needs(gen):
    gen.need("torch", "transformers", "safetensors")


def _audio(gen, n=3, dur=2.0):
    return gen.clips(SR, dur, n=n)


# --- pure helpers ---------------------------------------------------------------------------------
def test_window_starts():
    from soundalike.backends.mert import window_starts

    assert window_starts(100, 200, 200) == [0]
    assert window_starts(600, 200, 200) == [0, 200, 400]
    assert window_starts(650, 200, 200) == [0, 200, 400, 450]  # last window aligned to the end
    assert window_starts(600, 200, 100) == [0, 100, 200, 300, 400]


def test_normalisation_matches_wav2vec2_feature_extractor(gen):
    from transformers import Wav2Vec2FeatureExtractor

    from soundalike.backends.mert import normalize_chunks

    x = _audio(gen, n=2) * np.array([[0.1], [3.0]], dtype=np.float32) + 0.05
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    ref = np.stack([fe(row, sampling_rate=SR, return_tensors="np")["input_values"][0] for row in x])
    np.testing.assert_allclose(normalize_chunks(x), ref, rtol=1e-5, atol=1e-5)


def test_config_mapping_of_both_layouts():
    from soundalike.backends import _mert_net

    small = _mert_net.hubert_config(_mert_net.mert_config("MERT-v1-95M"))
    assert (small.hidden_size, small.num_hidden_layers, small.do_stable_layer_norm) == (768, 12, False)
    assert small.conv_kernel == [10, 3, 3, 3, 3, 2, 2] and small.conv_stride == [5, 2, 2, 2, 2, 2, 2]
    assert small.conv_bias is False and small.feat_proj_layer_norm and small.feat_extract_norm == "group"
    assert (small.num_conv_pos_embeddings, small.num_conv_pos_embedding_groups) == (128, 16)
    assert small.mask_time_prob == 0.0 and small.layerdrop == 0.0
    large = _mert_net.hubert_config(_mert_net.mert_config("MERT-v1-330M"))
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads) == (1024, 24, 16)
    assert large.do_stable_layer_norm is True
    for bad in ({"feature_extractor_cqt": True}, {"deepnorm": True}, {"sample_rate": 16000}, {"model_type": "bert"}):
        with pytest.raises(WeightsError):
            _mert_net.hubert_config({**_mert_net.mert_config("MERT-v1-95M"), **bad})


# --- backend behaviour ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mert-v1-95m", "mert-v1-330m"])
def test_every_layer_is_stored_and_top_is_after_final_layernorm(name, gen):
    import torch

    b = load_backend(name, tiny=True)
    x = _audio(gen)
    e = b.embed_layers(x)
    assert e.shape == (3, b.n_layers, 32) and b.n_layers == 3 and e.dtype == np.float32
    assert 0 < b.default_layer < b.n_layers
    from soundalike.backends.mert import normalize_chunks

    with torch.inference_mode():
        out = b._model(torch.from_numpy(normalize_chunks(x)), output_hidden_states=True)
    np.testing.assert_allclose(e[:, -1], out.last_hidden_state.mean(1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e[:, 0], out.hidden_states[0].mean(1).numpy(), rtol=1e-5, atol=1e-5)
    assert b._model.config.do_stable_layer_norm is (name == "mert-v1-330m")


def test_outputs_do_not_depend_on_gain(gen):
    b = load_backend("mert-v1-95m", tiny=True)
    x = _audio(gen)
    np.testing.assert_allclose(b.embed_layers(0.3 * x), b.embed_layers(x), rtol=1e-4, atol=1e-5)


def test_windows_average_their_pooled_states(gen):
    b = load_backend("mert-v1-95m", tiny=True, chunk_s=5)
    x = gen.clips(SR, 12.0, n=1)
    whole = b.embed_layers(x)
    parts = [b.embed_layers(x[:, s : s + 5 * SR]) for s in (0, 5 * SR, 7 * SR)]
    np.testing.assert_allclose(whole, np.mean(parts, axis=0), rtol=1e-5, atol=1e-5)
    ts, times = b.get_timestamp_embeddings(x)
    assert ts.shape[:2] == times.shape and (np.diff(times[0]) > 0).all()
    assert 0 < times[0, 0] and times[0, -1] < 12000


def test_meanstd_doubles_d_and_keeps_the_mean(gen):
    x = _audio(gen)
    m = load_backend("mert-v1-95m", tiny=True).embed_layers(x)
    ms = load_backend("mert-v1-95m", tiny=True, pooling="meanstd").embed_layers(x)
    assert ms.shape == (3, 3, 64)
    np.testing.assert_allclose(ms[..., :32], m, rtol=1e-6)
    assert (ms[..., 32:] > 0).all()


def test_options_are_validated_and_change_the_model_key():
    for bad in ({"chunk_s": 7}, {"pooling": "max"}, {"dtype": "int8"}, {"overlap": 1.5}, {"attention": "flash"}):
        with pytest.raises(ParameterError):
            load_backend("mert-v1-95m", tiny=True, **bad)
    keys = {load_backend("mert-v1-95m", tiny=True, **kw).model_key
            for kw in ({}, {"chunk_s": 10}, {"overlap": 0.5}, {"pooling": "meanstd"}, {"dtype": "bfloat16"})}
    assert len(keys) == 5


def test_bad_audio_is_refused():
    b = load_backend("mert-v1-95m", tiny=True)
    with pytest.raises(InvalidAudioError):
        b.embed_layers(np.ones((1, SR), dtype=np.int32))
    with pytest.raises(ParameterError, match="at least 400"):
        b.embed_layers(np.zeros((1, 100), np.float32))


@pytest.mark.parametrize("name", ["mert-v1-95m", "mert-v1-330m"])
def test_bfloat16_agrees_with_float32(name, gen):
    # CONTRACTS: half-precision paths agree with fp32 at cosine >= 0.999 (every layer, every clip)
    x = _audio(gen)
    a = load_backend(name, tiny=True).embed_layers(x).reshape(-1, 32)
    b = load_backend(name, tiny=True, dtype="bfloat16").embed_layers(x).reshape(-1, 32)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert (cos >= 0.999).all(), cos.min()


def test_positional_convolution_runs_in_float32_under_cpu_autocast(gen):
    # oneDNN's bf16 grouped conv1d (8 channels per group, kernel 16: the tiny layout) is wrong on
    # the CPU; the guarded module gives the fp32 result under autocast, and keeps its state dict
    import torch

    b = load_backend("mert-v1-95m", tiny=True)
    pos = b._model.encoder.pos_conv_embed
    assert type(pos).__name__.startswith("Fp32OnCpu") and "conv.parametrizations.weight.original0" in pos.state_dict()
    h = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 150, 32)).astype(np.float32))
    with torch.inference_mode():
        ref = pos(h)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = pos(h.bfloat16())
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-2, atol=1e-2)  # input rounded to bf16


# --- checkpoints ----------------------------------------------------------------------------------
def _save_release(backend, folder, *, fmt="bin", prefix="", gv=True, extra=True, drop=None):
    """Write config.json (MERT's format) and the weights as the HF repo holds them."""
    import torch
    from safetensors.torch import save_file

    from soundalike.backends import _mert_net

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(backend._cfg, indent=2))
    heads = {}
    if extra:
        d = backend._model.config.hidden_size
        heads = {"masked_spec_embed": torch.rand(d), "final_proj.weight": torch.randn(8, d),
                 "final_proj.bias": torch.zeros(8), "label_embs_concat": torch.randn(16, 8)}
    state = _mert_net.export_checkpoint(backend._model, weight_norm_gv=gv, extra=heads)
    state = {(prefix + k if k not in heads else k): v for k, v in state.items()}
    for k in drop or ():
        state.pop(k)
    if fmt == "bin":
        path = folder / "pytorch_model.bin"
        torch.save(state, path)
    else:
        path = folder / "model.safetensors"
        save_file(state, str(path))
    return path


def test_bin_with_weight_norm_gv_and_heads_loads_exactly(gen, tmp_path, caplog):
    ref = load_backend("mert-v1-95m", tiny=True, seed=5)
    path = _save_release(ref, tmp_path / "release")
    with open(path, "rb") as fh:  # the release layout really has weight_g/weight_v
        import torch

        keys = torch.load(fh, weights_only=True).keys()
    assert "encoder.pos_conv_embed.conv.weight_g" in keys
    with caplog.at_level(logging.INFO, logger="soundalike.backends._mert_net"):
        b = load_backend("mert-v1-95m", weights=tmp_path / "release")
    for k in HEAD_KEYS + ("masked_spec_embed",):
        assert k in caplog.text
    assert b.weights_kind == "real" and b.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    x = _audio(gen)
    np.testing.assert_array_equal(b.embed_layers(x), ref.embed_layers(x))
    assert b.model_key != ref.model_key


def test_prefixed_safetensors_loads_exactly(gen, tmp_path):
    ref = load_backend("mert-v1-330m", tiny=True, seed=2)
    path = _save_release(ref, tmp_path / "st", fmt="safetensors", prefix="mert_model.", gv=False)
    b = load_backend("mert-v1-330m", weights=path)  # the file itself; config.json beside it
    x = _audio(gen)
    np.testing.assert_array_equal(b.embed_layers(x), ref.embed_layers(x))


def test_missing_tensor_is_an_error(tmp_path):
    ref = load_backend("mert-v1-95m", tiny=True)
    _save_release(ref, tmp_path / "r", drop=["encoder.layers.1.feed_forward.output_dense.weight"])
    with pytest.raises(WeightsError, match=r"lacks 1 tensors.*layers.1.feed_forward.output_dense.weight"):
        load_backend("mert-v1-95m", weights=tmp_path / "r")


def test_weights_dir_and_hf_cache_layouts(gen, tmp_path, monkeypatch):
    ref = load_backend("mert-v1-95m", tiny=True, seed=9)
    x = _audio(gen)
    expect = ref.embed_layers(x)

    assert backend_class("mert-v1-95m").status().status == "weights-missing"
    monkeypatch.setenv("SOUNDALIKE_WEIGHTS_DIR", str(tmp_path / "w"))
    st = backend_class("mert-v1-95m").status()
    assert st.status == "weights-missing" and str(tmp_path / "w" / "MERT-v1-95M") in st.install_hint
    with pytest.raises(WeightsError, match="MERT-v1-95M weights not found"):
        load_backend("mert-v1-95m")
    _save_release(ref, tmp_path / "w" / "MERT-v1-95M", fmt="safetensors")
    assert backend_class("mert-v1-95m").status().status == "ready"
    np.testing.assert_array_equal(load_backend("mert-v1-95m").embed_layers(x), expect)
    monkeypatch.delenv("SOUNDALIKE_WEIGHTS_DIR")

    # Hugging Face cache: snapshots/<rev>/ files link to blobs named by their sha256
    staging = tmp_path / "staging"
    weights = _save_release(ref, staging)
    repo = tmp_path / "_hf_cache" / "models--m-a-p--MERT-v1-95M"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for f, name in ((staging / "config.json", hashlib.sha1(b"cfg").hexdigest()),
                    (weights, hashlib.sha256(weights.read_bytes()).hexdigest())):
        shutil.copy(f, repo / "blobs" / name)
        os.symlink(os.path.join("..", "..", "blobs", name), snap / f.name)
    assert backend_class("mert-v1-95m").status().status == "ready"
    b = load_backend("mert-v1-95m")
    assert b.weights_path == snap / "pytorch_model.bin"
    np.testing.assert_array_equal(b.embed_layers(x), expect)

    # a blob whose bytes do not match its sha256 name is refused
    blob = (snap / "pytorch_model.bin").resolve()
    os.chmod(blob, 0o644)
    with open(blob, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(WeightsError, match="Hugging Face blob name"):
        load_backend("mert-v1-95m")


def test_bad_config_is_refused(tmp_path):
    ref = load_backend("mert-v1-95m", tiny=True)
    _save_release(ref, tmp_path / "r")
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    cfg["feature_extractor_cqt"] = True
    (tmp_path / "r" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="CQT"):
        load_backend("mert-v1-95m", weights=tmp_path / "r")
    (tmp_path / "r" / "config.json").unlink()
    with pytest.raises(WeightsError, match="config.json"):
        load_backend("mert-v1-95m", weights=tmp_path / "r")


def test_330m_layout_with_two_layers_round_trips(gen, tmp_path):
    ref = load_backend("mert-v1-330m", random_layers=2, seed=1)
    assert ref.embedding_size == 1024 and ref.n_layers == 3
    assert ref._model.config.do_stable_layer_norm and ref._model.config.num_attention_heads == 16
    _save_release(ref, tmp_path / "r")
    b = load_backend("mert-v1-330m", weights=tmp_path / "r")
    x = _audio(gen, n=2, dur=1.0)
    np.testing.assert_array_equal(b.embed_layers(x), ref.embed_layers(x))


@pytest.mark.slow
def test_full_size_95m_bin_and_safetensors(gen, tmp_path):
    ref = load_backend("mert-v1-95m", random_weights=True, seed=4)
    assert (ref.n_layers, ref.embedding_size, ref.default_layer) == (13, 768, 7)
    n_params = sum(p.numel() for p in ref._model.parameters())
    assert 90e6 < n_params < 100e6, n_params
    x = _audio(gen, n=2, dur=2.0)
    expect = ref.embed_layers(x)
    _save_release(ref, tmp_path / "bin")
    _save_release(ref, tmp_path / "st", fmt="safetensors", gv=False, extra=False)
    for folder in ("bin", "st"):
        b = load_backend("mert-v1-95m", weights=tmp_path / folder)
        np.testing.assert_array_equal(b.embed_layers(x), expect)


def test_accelerator_path_gives_the_cpu_path_vectors(gen):
    # the accelerator path (PCM pinned a batch ahead, normalised on the device) forced on the CPU:
    # several batches, several windows per clip, timestamps; CONTRACTS fp32 equality
    x = gen.clips(SR, 12.0, n=5)
    host = load_backend("mert-v1-95m", tiny=True, chunk_s=5, max_batch=2)
    dev = load_backend("mert-v1-95m", tiny=True, chunk_s=5, max_batch=2)
    assert host._device_front_end is False
    dev._device_front_end = True
    np.testing.assert_allclose(dev.embed_layers(x), host.embed_layers(x), rtol=1e-5, atol=1e-6)
    (e1, t1), (e2, t2) = host.get_timestamp_embeddings(x), dev.get_timestamp_embeddings(x)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_allclose(e2, e1, rtol=1e-5, atol=1e-6)


def test_attention_runs_through_sdpa_by_default_and_eager_agrees(gen):
    # SDPA (flash/memory-efficient kernels on a GPU) is the default; eager is the reference
    x = _audio(gen)
    sdpa = load_backend("mert-v1-95m", tiny=True)
    eager = load_backend("mert-v1-95m", tiny=True, attention="eager")
    assert sdpa._model.config._attn_implementation == "sdpa"
    assert eager._model.config._attn_implementation == "eager"
    np.testing.assert_allclose(sdpa.embed_layers(x), eager.embed_layers(x), rtol=1e-4, atol=1e-5)
