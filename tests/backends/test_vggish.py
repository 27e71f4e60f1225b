"""VGGish: front end against independent computations, postprocessing formula, loader."""

from __future__ import annotations

import hashlib
import logging
import shutil

import numpy as np
import pytest
from ci_support import import_or_skip

from soundalike.backends import vggish as vg
from soundalike.backends.registry import backend_class, load_backend
from soundalike.errors import InvalidAudioError, ParameterError, SoundalikeWarning, WeightsError

pytestmark = pytest.mark.usefixtures("isolated_weights")

SR = 16000


# --- front end ------------------------------------------------------------------------------
def _reference_mel_matrix() -> np.ndarray:
    """mel_features.spectrogram_to_mel_matrix written out band by band, as upstream does."""
    nyq = SR / 2.0
    bins_hz = np.linspace(0.0, nyq, 257)

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    bins_mel = mel(bins_hz)
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    m = np.empty((257, 64))
    for i in range(64):
        lo, c, hi = edges[i : i + 3]
        m[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (hi - bins_mel) / (hi - c)))
    m[0, :] = 0.0
    return m


def test_mel_matrix_matches_upstream_construction():
    np.testing.assert_allclose(vg.mel_matrix(), _reference_mel_matrix(), rtol=0, atol=1e-12)


def test_log_mel_matches_scipy_stft(gen):
    scipy_signal = import_or_skip("scipy.signal")
    x = gen.clips(SR, 2.0, n=2)
    ours = vg.log_mel_examples(x)
    for c in range(2):
        # independent STFT: scipy's periodic Hann, no centring, no padding, magnitude
        _, _, z = scipy_signal.stft(
            x[c].astype(np.float64), window=scipy_signal.get_window("hann", 400), nperseg=400,
            noverlap=240, nfft=512, boundary=None, padded=False, scaling="spectrum",
        )
        mag = np.abs(z).T * scipy_signal.get_window("hann", 400).sum()  # undo scipy's 1/sum(window)
        ref = np.log(mag @ _reference_mel_matrix() + 0.01)[: 96 * ours.shape[1]].reshape(-1, 96, 64)
        np.testing.assert_allclose(ours[c], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_sine_energy_lands_in_its_mel_band(freq, gen):
    librosa = import_or_skip("librosa")
    ex = vg.log_mel_examples(gen.sine(freq, 1.0, SR)[None, :])
    band = int(np.argmax(ex[0, 0].mean(axis=0)))
    centres = librosa.mel_to_hz(np.linspace(librosa.hz_to_mel(125.0, htk=True), librosa.hz_to_mel(7500.0, htk=True), 66), htk=True)[1:-1]
    # the loudest band is one of the two whose centres bracket the tone
    nearest = np.argsort(np.abs(centres - freq))[:2]
    assert band in nearest, (band, nearest, centres[nearest])


def test_example_count_and_times():
    assert vg.log_mel_examples(np.zeros((1, 30 * SR), np.float32)).shape == (1, 31, 96, 64)
    assert vg.log_mel_examples(np.zeros((2, vg.MIN_SAMPLES), np.float32)).shape == (2, 1, 96, 64)
    assert vg.log_mel_examples(np.zeros((1, vg.MIN_SAMPLES - 1 + 96 * 160), np.float32)).shape[1] == 1
    np.testing.assert_allclose(vg.example_times_ms(3), [487.5, 1447.5, 2407.5])
    # silence gives log(0.01) everywhere
    np.testing.assert_allclose(vg.log_mel_examples(np.zeros((1, SR), np.float32)), np.log(0.01), rtol=1e-6)


def test_postprocess_matches_formula(rng):
    emb = rng.standard_normal((5, 128)) * 3
    vec = rng.standard_normal((128, 128)) / 8
    means = rng.standard_normal(128)
    out = vg.postprocess_embeddings(emb, vec, means)
    pca = vec @ (emb.T - means[:, None])  # upstream's column-vector form
    q = ((np.clip(pca.T, -2, 2) + 2) * (255.0 / 4)).astype(np.uint8)
    assert out.dtype == np.float32 and out.shape == (5, 128)
    np.testing.assert_allclose(out, q * (4 / 255.0) - 2, atol=1e-6)
    assert out.min() >= -2 and out.max() <= 2
    # on the quantisation grid, and something was clipped at both ends
    codes = (out + 2) * 255 / 4
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
    assert (out == -2).any() and np.isclose(out, 2).any()


# --- backend --------------------------------------------------------------------------------
def test_tiny_backend_shapes_and_timestamps(gen):
    gen.need("torch")
    b = load_backend("vggish", tiny=True)
    x = gen.clips(SR, 3.0, n=2)
    e = b.embed_layers(x)
    assert e.shape == (2, 1, 128) and e.dtype == np.float32 and np.isfinite(e).all()
    ts, times = b.get_timestamp_embeddings(x)
    assert ts.shape == (2, 3, 128) and times.shape == (2, 3)
    np.testing.assert_allclose(ts.mean(axis=1), e[:, 0], rtol=1e-5, atol=1e-6)
    assert b.weights_kind == "random" and b.postprocess is False


def test_short_audio_is_padded_with_warning(gen):
    gen.need("torch")
    b = load_backend("vggish", tiny=True)
    with pytest.warns(SoundalikeWarning, match="shorter"):
        e = b.embed_layers(gen.sine(440, 0.5, SR)[None, :])
    assert e.shape == (1, 1, 128)


def test_bad_options_and_audio(gen):
    gen.need("torch")
    with pytest.raises(ParameterError, match="dtype"):
        load_backend("vggish", tiny=True, dtype="int8")
    b = load_backend("vggish", tiny=True)
    with pytest.raises(InvalidAudioError):
        b.embed_layers(np.zeros((1, SR), np.int16))
    with pytest.raises(WeightsError, match="postprocess=True"):
        load_backend("vggish", tiny=True, postprocess=True)


def test_model_key_follows_options(gen):
    gen.need("torch")
    keys = {
        load_backend("vggish", tiny=True).model_key,
        load_backend("vggish", tiny=True, final_relu=True).model_key,
        load_backend("vggish", tiny=True, seed=1).model_key,
        load_backend("vggish", tiny=True, dtype="bfloat16").model_key,
    }
    assert len(keys) == 4
    assert load_backend("vggish", tiny=True).model_key == load_backend("vggish", tiny=True).model_key


def test_bfloat16_agrees_with_float32(gen):
    gen.need("torch")
    x = gen.clips(SR, 2.0, n=2)
    a = load_backend("vggish", tiny=True).embed_layers(x)[:, 0]
    b = load_backend("vggish", tiny=True, dtype="bfloat16").embed_layers(x)[:, 0]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert b.dtype == np.float32 and (cos > 0.99).all(), cos


# --- weights ------------------------------------------------------------------------------
def test_missing_weights_error_and_status(tmp_path, monkeypatch, gen):
    gen.need("torch")
    monkeypatch.setenv("SOUNDALIKE_WEIGHTS_DIR", str(tmp_path / "w"))
    with pytest.raises(WeightsError, match=r"vggish-10086976\.pth.*w/vggish"):
        load_backend("vggish")
    st = backend_class("vggish").status()
    assert st.status == "weights-missing"
    assert str(tmp_path / "w" / "vggish") in st.install_hint and "vggish_pca_params-970ea276.pth" in st.install_hint


def test_digest_in_name_is_checked(tmp_path, gen):
    gen.need("torch")
    bad = tmp_path / "vggish-deadbeef.pth"
    bad.write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="does not match the digest in its name"):
        load_backend("vggish", weights=bad)


def test_missing_keys_and_unsafe_pickles_are_refused(tmp_path):
    torch = import_or_skip("torch")
    partial = tmp_path / "vggish.pth"
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3)}, partial)
    with pytest.raises(WeightsError, match=r"lack 17 tensors.*embeddings.0.bias"):
        load_backend("vggish", weights=partial)
    evil = tmp_path / "evil" / "vggish.pth"
    evil.parent.mkdir()
    torch.save({"x": logging.getLogger("x")}, evil)  # an arbitrary object: weights_only refuses it
    with pytest.raises(WeightsError, match="Cannot read"):
        load_backend("vggish", weights=evil)


def _save_named(torch, obj, folder, stem):
    """Save like torch hub releases: ``<stem>-<first 8 hex of sha256>.pth``."""
    tmp = folder / f"{stem}.tmp"
    torch.save(obj, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    final = folder / f"{stem}-{digest}.pth"
    tmp.rename(final)
    return final


@pytest.fixture(scope="module")
def full_size_files(tmp_path_factory):
    """A random full-size VGGish saved in the torchvggish layout, with random PCA params."""
    torch = import_or_skip("torch")
    from soundalike.backends import _vggish_net

    folder = tmp_path_factory.mktemp("vggish_weights")
    net = _vggish_net.build(seed=3)
    model = _save_named(torch, net.state_dict(), folder, "vggish")
    g = torch.Generator().manual_seed(0)
    pca = {"pca_eigen_vectors": torch.randn(128, 128, generator=g, dtype=torch.float64) * 2,
           "pca_means": torch.randn(128, generator=g, dtype=torch.float64) * 0.01}
    pca_path = _save_named(torch, pca, folder, "vggish_pca_params")
    return folder, model, pca_path, pca


@pytest.mark.slow
def test_full_size_loader_reproduces_in_memory_model(full_size_files, tmp_path, monkeypatch, gen):
    gen.need("torch")
    folder, model, pca_path, pca = full_size_files
    x = gen.clips(SR, 3.0, n=2)
    ref = load_backend("vggish", random_weights=True, seed=3)
    raw_examples = ref._embed_examples(x)

    # explicit file, no postprocessing: bit-for-bit the in-memory network
    b = load_backend("vggish", weights=model, postprocess=False)
    assert b.weights_kind == "real" and b.weights_sha256.startswith(model.stem.split("-")[1])
    np.testing.assert_array_equal(b._embed_examples(x), raw_examples)

    # folder: PCA found beside, postprocessing on by default and equal to the formula
    b = load_backend("vggish", weights=folder)
    assert b.postprocess and b.pca_path == pca_path
    expect = vg.postprocess_embeddings(
        raw_examples.reshape(-1, 128), pca["pca_eigen_vectors"].numpy(), pca["pca_means"].numpy()
    ).reshape(2, -1, 128)
    np.testing.assert_allclose(b.embed_layers(x)[:, 0], expect.mean(axis=1), rtol=1e-5, atol=1e-6)

    # $SOUNDALIKE_WEIGHTS_DIR/vggish/ and the torch hub cache find the same files
    env = tmp_path / "weights"
    shutil.copytree(folder, env / "vggish")
    monkeypatch.setenv("SOUNDALIKE_WEIGHTS_DIR", str(env))
    assert backend_class("vggish").status().status == "ready"
    np.testing.assert_allclose(load_backend("vggish").embed_layers(x), b.embed_layers(x), rtol=1e-6)
    monkeypatch.delenv("SOUNDALIKE_WEIGHTS_DIR")
    hub = tmp_path / "torch_home"
    shutil.copytree(folder, hub / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(hub))
    assert load_backend("vggish").model_key == b.model_key


@pytest.mark.slow
def test_full_size_wrong_shapes_and_extra_keys(full_size_files, tmp_path, caplog):
    torch = import_or_skip("torch")
    _, model, _, _ = full_size_files
    state = torch.load(model, weights_only=True)
    state["embeddings.9.weight"] = torch.zeros(2)
    with_extra = tmp_path / "vggish.pth"
    torch.save(state, with_extra)
    with caplog.at_level(logging.INFO, logger="soundalike.backends._vggish_net"):
        load_backend("vggish", weights=with_extra)
    assert "embeddings.9.weight" in caplog.text
    state["features.0.weight"] = torch.zeros(64, 1, 5, 5)
    torch.save(state, with_extra)
    with pytest.raises(WeightsError, match="wrong shape.*features.0.weight"):
        load_backend("vggish", weights=with_extra)


def test_device_front_end_gives_the_numpy_front_end_vectors(gen):
    # the accelerator path (PCM to the device, torch log-mel there) forced on the CPU
    x = gen.clips(16000, 5.0, n=3)
    b = load_backend("vggish", tiny=True, max_batch=8)  # several slices of clips
    host = b.embed_layers(x)
    e1, _ = b.get_timestamp_embeddings(x)
    b._device_front_end = True
    np.testing.assert_allclose(b.embed_layers(x), host, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.get_timestamp_embeddings(x)[0], e1, rtol=1e-5, atol=1e-6)


def test_runtime_options_change_speed_not_vectors(gen):
    # load_backend passes max_batch="auto" and compile=True to every torch backend
    x = gen.clips(16000, 2.0, n=2)
    ref = load_backend("vggish", tiny=True)
    auto = load_backend("vggish", tiny=True, max_batch="auto")
    assert auto.max_batch == vg.DEFAULT_MAX_BATCH and auto.model_key == ref.model_key
    compiled = load_backend("vggish", tiny=True, compile=True, max_batch=3)
    assert compiled.model_key == ref.model_key
    np.testing.assert_allclose(compiled.embed_layers(x), ref.embed_layers(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ParameterError, match="max_batch"):
        load_backend("vggish", tiny=True, max_batch=0)
