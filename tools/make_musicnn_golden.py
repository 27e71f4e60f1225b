"""Make the golden reference outputs of musicnn (run once, by hand; never in CI).

Runs musicnn 0.1.0's *own* TensorFlow code on a fixed 16 kHz excerpt and stores what it
returns, so ``tests/backends/test_musicnn.py`` can check the PyTorch port against it.

Setup (a scratch environment outside the repository; TensorFlow is not a soundalike dependency)::

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa==0.11.0 soundfile
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tools/make_musicnn_golden.py

Changes to upstream, all in this script (musicnn's files are not edited):

* ``librosa.load`` is replaced, for musicnn's extractor only, by a function returning the
  stored 16 kHz float32 excerpt, so both implementations see exactly the same samples;
* ``configuration.BATCH_SIZE`` is raised so all patches run in one ``sess.run`` (see
  ``run_upstream`` for the upstream slip this avoids);
* ``batch_data`` is upstream's, except that the mel spectrogram stays float32: upstream's
  ``astype(np.float16)`` before the log overflows to ``inf`` on loud bins (counted below and
  written to ``reference.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "musicnn_golden"
CLIP = ROOT / "demo" / "music" / "muldjord" / "muldjord__armygeddon.ogg"
START_S, DURATION_S = 7.5, 15.0
MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")


def make_input(path: Path) -> np.ndarray:
    """The excerpt, mono float32 at 16 kHz (soxr "HQ", librosa's default resampler)."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(str(CLIP), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    y = y[int(START_S * sr) : int((START_S + DURATION_S) * sr)]
    y16 = soxr.resample(y, sr, 16000, quality="HQ").astype(np.float32)
    np.save(path, y16)
    return y16


def run_upstream(audio: np.ndarray, model: str, *, mel_dtype: type = np.float32) -> dict[str, np.ndarray]:
    import librosa

    from musicnn import configuration as config
    from musicnn import extractor

    class _LibrosaShim:
        """librosa, except load() returns the stored excerpt (musicnn's extractor only)."""

        def __getattr__(self, name):
            return getattr(librosa, name)

        @staticmethod
        def load(_path, sr=None, **_kw):
            assert sr == config.SR
            return audio.copy(), sr

    def batch_data_float32(audio_file, n_frames, overlap):
        # upstream's batch_data with the float16 cast replaced by float32 (mel_dtype)
        y, sr = extractor.librosa.load(audio_file, sr=config.SR)
        audio_rep = librosa.feature.melspectrogram(
            y=y, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
        ).T
        audio_rep = audio_rep.astype(mel_dtype)
        audio_rep = np.log10(10000 * audio_rep + 1)
        last_frame = audio_rep.shape[0] - n_frames + 1
        batch = np.stack([audio_rep[t : t + n_frames] for t in range(0, last_frame, overlap)])
        return batch, audio_rep

    extractor.librosa = _LibrosaShim()
    extractor.batch_data = batch_data_float32
    # One sess.run for all patches: upstream's loop over later batches keeps concatenating the
    # *first* batch's penultimate/cnn1-3 arrays (a variable-name slip), so with its default
    # BATCH_SIZE = 1 every patch would get patch 0's penultimate vector. Tags and pools are
    # unaffected; one batch gives every patch its own features.
    config.BATCH_SIZE = 1_000_000
    taggram, _labels, features = extractor.extractor("golden-input", model=model, input_length=3, input_overlap=False, extract_features=True)
    _, logmel = batch_data_float32("golden-input", 187, 187)
    out = {"taggram": np.asarray(taggram, np.float32)}
    n = out["taggram"].shape[0]
    if "vgg" in model:
        # pool5 (n, 2, 1, 128) comes back squeezed and concatenated; the dense layer sees it
        # flattened in NHWC order, which is the port's "penultimate".
        out["penultimate"] = np.asarray(features["pool5"], np.float32).reshape(n, -1)
    else:
        for key in ("penultimate", "mean_pool", "max_pool"):
            out[key] = np.asarray(features[key], np.float32).reshape(n, -1)
    out["logmel"] = logmel.astype(np.float32)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("set TF_USE_LEGACY_KERAS=1 (musicnn uses tf.compat.v1.layers)", file=sys.stderr)
        return 2
    import librosa
    import musicnn
    import tensorflow as tf

    OUT.mkdir(parents=True, exist_ok=True)
    input_path = OUT / "input_16k.npy"
    audio = np.load(input_path) if input_path.exists() else make_input(input_path)

    # How many log-mel bins upstream's float16 path turns into inf on this input: 10000 * mel
    # is computed in float16 and overflows (> 65504) wherever mel > 6.55.
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96)
    with np.errstate(over="ignore"):
        f16 = np.log10(10000 * mel.astype(np.float16) + 1)
    n_inf = int(np.isinf(f16).sum())
    inf_frames = int(np.isinf(f16).any(axis=0).sum())

    logmel = None
    for model in args.models:
        out = run_upstream(audio, model)
        logmel = out.pop("logmel")
        np.savez_compressed(OUT / f"{model}.npz", **out)
        print(model, {k: v.shape for k, v in out.items()})
    if logmel is not None:
        np.save(OUT / "logmel.npy", logmel)
    # For the record: how far upstream as shipped (float16 cast) is from the float32 reference.
    f16_diff = {}
    for model in args.models:
        ref = np.load(OUT / f"{model}.npz")
        f16 = run_upstream(audio, model, mel_dtype=np.float16)
        f16_diff[model] = {
            "taggram_max_abs": float(np.abs(f16["taggram"] - ref["taggram"]).max()),
            "penultimate_max_abs": float(np.abs(f16["penultimate"] - ref["penultimate"]).max()),
        }
    meta = {
        "clip": str(CLIP.relative_to(ROOT)),
        "excerpt_s": [START_S, START_S + DURATION_S],
        "sample_rate": 16000,
        "n_samples": int(audio.size),
        "models": list(args.models),
        "tensorflow": tf.__version__,
        "musicnn": getattr(musicnn, "__version__", "0.1.0"),
        "librosa": librosa.__version__,
        "numpy": np.__version__,
        "float16_cast": "replaced by float32",
        "float16_inf_bins_on_this_input": n_inf,
        "float16_frames_with_inf_on_this_input": inf_frames,
        "n_frames": int(mel.shape[1]),
        "float16_upstream_vs_float32_reference": f16_diff,
        "input_length_s": 3,
        "input_overlap": False,
    }
    (OUT / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
