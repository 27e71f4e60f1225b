"""VGGish (Hershey et al. 2017, the AudioSet embedding model), ported to torch.

Front end (exactly as ``tensorflow/models research/audioset/vggish``: ``mel_features.py`` and
``vggish_input.py``): 16 kHz mono; STFT magnitude with a 25 ms (400-sample) periodic Hann window,
10 ms (160-sample) hop and a 512-point FFT; 64 HTK-mel bands from 125 to 7500 Hz (triangles in
the mel domain, DC bin zeroed); ``log(mel + 0.01)``; non-overlapping examples of 96 frames
(0.96 s). Network: the torchvggish port's module layout (see ``_vggish_net``).

Postprocessing (``postprocess=True``, the default when the PCA file is present), as in
``vggish_postprocess.py``: PCA with whitening ``(x - means) @ eigen_vectors.T``, clip to
[-2, 2], quantise to uint8 with ``(x + 2) * 255 / 4`` truncated (numpy's ``astype(np.uint8)``;
the torch port rounds instead). The stored vector maps the uint8 code back to the clipped
scale, ``q * 4 / 255 - 2`` in [-2, 2], as float32: the codes themselves are all positive, which
would push every cosine towards 1. The clip vector is the mean over its 0.96 s examples.

Departure from the torch port, on purpose: no ReLU after the 128-d layer (``final_relu=False``).
Google's model has none (its README: "the embedding value is pre-activation") and the PCA
parameters were fitted to those values; ``final_relu=True`` reproduces the port.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_audio, check_option
from ..errors import ParameterError, SoundalikeWarning, WeightsError
from . import _weights
from .base import Backend, BackendStatus
from .registry import register_backend

__all__ = ["VGGish", "log_mel_examples", "mel_matrix", "postprocess_embeddings", "find_vggish_weights"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s
MIN_SAMPLES = WINDOW + (EXAMPLE_FRAMES - 1) * HOP  # 15600 samples = 0.975 s for one example
QUANT_MIN, QUANT_MAX = -2.0, 2.0
DEFAULT_MAX_BATCH = 256  # examples per forward pass

MODEL_FILE = "vggish-10086976.pth"
PCA_FILE = "vggish_pca_params-970ea276.pth"
_MODEL_NAMES = (MODEL_FILE, "vggish.pth", "vggish.safetensors")
_MODEL_PATTERNS = ("vggish-*.pth",)
_PCA_NAMES = (PCA_FILE, "vggish_pca_params.pth", "vggish_pca_params.safetensors")
_PCA_PATTERNS = ("vggish_pca_params*.pth",)
_RELEASE = "https://github.com/harritaylor/torchvggish/releases/tag/v0.1"

_DTYPES = ("float32", "bfloat16", "float16")


# --- front end (numpy) ------------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + f / 700.0)


@functools.lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """VGGish's mel weights, built as ``mel_features.spectrogram_to_mel_matrix``.

    Returns
    -------
    np.ndarray [shape=(257, 64), dtype=float64]
        Post-multiplies STFT magnitude rows; row 0 (DC) is zero, as in HTK.
    """
    n_bins = N_FFT // 2 + 1
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, n_bins))
    edges = np.linspace(_hz_to_mel(np.array(FMIN)), _hz_to_mel(np.array(FMAX)), N_MELS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (bins_mel[:, None] - lower) / (centre - lower)
    down = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    weights[0, :] = 0.0
    weights.setflags(write=False)
    return weights


def log_mel_examples(audio: np.ndarray) -> np.ndarray:
    """VGGish input patches of a batch of 16 kHz clips.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_clips, n_samples), n_samples >= 15600]

    Returns
    -------
    np.ndarray [shape=(n_clips, n_examples, 96, 64), dtype=float32]
        ``n_examples = n_frames // 96`` with ``n_frames = 1 + (n_samples - 400) // 160``; the
        frames after the last whole example are dropped, as upstream does.
    """
    x = np.asarray(audio, dtype=np.float64)
    n_frames = 1 + (x.shape[1] - WINDOW) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW, axis=1)[:, ::HOP][:, :n_frames]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi / WINDOW * np.arange(WINDOW))  # periodic Hann
    spec = np.abs(np.fft.rfft(frames * window, N_FFT, axis=-1))
    log_mel = np.log(spec @ mel_matrix() + LOG_OFFSET)
    n_ex = n_frames // EXAMPLE_FRAMES
    out = log_mel[:, : n_ex * EXAMPLE_FRAMES].reshape(x.shape[0], n_ex, EXAMPLE_FRAMES, N_MELS)
    return out.astype(np.float32)


def example_times_ms(n_examples: int) -> np.ndarray:
    """Centre time (ms) of each 0.96 s example: first sample of its first frame to last of its last."""
    start = np.arange(n_examples) * EXAMPLE_FRAMES * HOP
    end = start + (EXAMPLE_FRAMES - 1) * HOP + WINDOW
    return ((start + end) / 2.0 / SAMPLE_RATE * 1000.0).astype(np.float32)


def postprocess_embeddings(emb: np.ndarray, pca_vectors: np.ndarray, pca_means: np.ndarray) -> np.ndarray:
    """PCA + whitening, clip to [-2, 2], 8-bit quantisation, mapped back to [-2, 2].

    Parameters
    ----------
    emb : np.ndarray [shape=(n, 128)]        raw VGGish outputs
    pca_vectors : np.ndarray [shape=(128, 128)]
    pca_means : np.ndarray [shape=(128,)]

    Returns
    -------
    np.ndarray [shape=(n, 128), dtype=float32]
        ``q * 4 / 255 - 2`` where ``q = uint8((clip(P (x - m), -2, 2) + 2) * 255 / 4)``.
    """
    pca = (np.asarray(emb, dtype=np.float64) - pca_means.reshape(1, -1)) @ pca_vectors.T
    clipped = np.clip(pca, QUANT_MIN, QUANT_MAX)
    q = ((clipped - QUANT_MIN) * (255.0 / (QUANT_MAX - QUANT_MIN))).astype(np.uint8)
    return (q.astype(np.float64) * ((QUANT_MAX - QUANT_MIN) / 255.0) + QUANT_MIN).astype(np.float32)


# --- weights --------------------------------------------------------------------------------------
def _search_folders() -> list[tuple[Path, str]]:
    folders: list[tuple[Path, str]] = []
    env = _weights.weights_dir()
    if env is not None:
        folders.append((env / "vggish", f"${_weights.WEIGHTS_ENV}/vggish"))
    folders.append((_weights.torch_hub_checkpoints(), "the torch hub cache"))
    return folders


def find_vggish_weights(weights: str | os.PathLike[str] | None = None) -> tuple[Path | None, Path | None]:
    """Locate ``(state dict, PCA params)``; either may be None when not found.

    `weights` is the state dict file or a folder holding both files; without it
    ``$SOUNDALIKE_WEIGHTS_DIR/vggish/`` and then torch hub's cache are searched. The PCA file is
    looked for beside the state dict.
    """
    if weights is not None:
        p = Path(weights).expanduser()
        if p.is_dir():
            model = _weights.find_named(p, _MODEL_NAMES, _MODEL_PATTERNS)
            folder = p
        elif p.is_file():
            model, folder = p, p.parent
        else:
            raise WeightsError(f"VGGish weights path {str(p)!r} does not exist; {_install_hint()}")
        return model, _weights.find_named(folder, _PCA_NAMES, _PCA_PATTERNS)
    for folder, _ in _search_folders():
        model = _weights.find_named(folder, _MODEL_NAMES, _MODEL_PATTERNS)
        if model is not None:
            return model, _weights.find_named(folder, _PCA_NAMES, _PCA_PATTERNS)
    return None, None


def _install_hint() -> str:
    env = _weights.weights_dir()
    target = str(env / "vggish") if env is not None else f"${_weights.WEIGHTS_ENV}/vggish/"
    return (
        f"run `soundalike models pull vggish`, or download {MODEL_FILE} and {PCA_FILE} from {_RELEASE} into "
        f"{target} (or into {_weights.torch_hub_checkpoints()}), or pass weights=PATH / --weights PATH"
    )


# --- backend ----------------------------------------------------------------------------------
@register_backend("vggish")
class VGGish(Backend):
    """VGGish embeddings: one 128-d vector per 0.96 s example, averaged per clip.

    Parameters
    ----------
    weights : path, optional
        The torchvggish state dict (``vggish-10086976.pth``) or a folder with it and
        ``vggish_pca_params-970ea276.pth``; else ``$SOUNDALIKE_WEIGHTS_DIR/vggish/`` or torch
        hub's cache.
    device : {"auto", "cpu", "cuda", "cuda:N", ...}
        Where the network runs (``auto``: CUDA when present); it is moved there on first use,
        not in the constructor; batches travel through pinned memory on CUDA. On an accelerator
        the PCM is sent and the log-mel front end runs there too (``_torch_frontends``, the
        same numbers as the numpy one, in float64).
    dtype : {"float32", "bfloat16", "float16"}
        Autocast precision of the network; outputs are float32.
    postprocess : bool, optional
        PCA + quantisation as in the AudioSet release (see the module docstring). Default: on
        when the PCA file is found, else off.
    final_relu : bool
        Reproduce the torch port's ReLU after the embedding layer (default False, as Google's).
    tiny, random_weights : bool
        Random weights (``weights_kind="random"``) instead of files: ``tiny`` narrows every
        layer (tests), ``random_weights`` keeps the full size (loader and speed tests).
    seed : int
        Seed of the random weights.
    max_batch : int or "auto"
        Examples per forward pass (bounds memory; does not change the outputs); ``auto`` is 256.
    compile : bool
        Run the network through ``torch.compile`` (static shapes; not part of the model key).
    """

    sample_rate = SAMPLE_RATE
    extra = "torch"
    requires = ("torch",)
    description = "VGGish (AudioSet, 2017): 128-d per 0.96 s, PCA-whitened; general audio"
    default_embedding_size = 128
    min_duration_s = MIN_SAMPLES / SAMPLE_RATE

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        postprocess: bool | None = None,
        final_relu: bool = False,
        tiny: bool = False,
        random_weights: bool = False,
        seed: int = 0,
        max_batch: int | str = DEFAULT_MAX_BATCH,
        compile: bool = False,
    ) -> None:
        from . import _vggish_net as net_mod

        from . import _torch_runtime

        self.dtype = check_option("dtype", dtype, _DTYPES)
        self.device = _torch_runtime.resolve_device(device)
        self.final_relu = bool(final_relu)
        self.tiny = bool(tiny)
        self.seed = int(seed)
        batch = _torch_runtime.check_max_batch(max_batch)
        # "auto" (as load_backend passes it to every torch backend): 256 examples, ~8 clips of 30 s
        self.max_batch = DEFAULT_MAX_BATCH if batch == _torch_runtime.AUTO else int(batch)
        self.compile = bool(compile)
        random = self.tiny or bool(random_weights)
        self._pca: tuple[np.ndarray, np.ndarray] | None = None
        if random:
            if weights is not None:
                raise ParameterError("Pass either weights=PATH or tiny/random_weights=True, not both.")
            self._net = net_mod.build(tiny=self.tiny, final_relu=self.final_relu, seed=self.seed)
            self.weights_kind = "random"
            self.weights_sha256 = None
            self.weights_path: Path | None = None
            self.pca_path: Path | None = None
        else:
            model_path, pca_path = find_vggish_weights(weights)
            if model_path is None:
                raise WeightsError(f"VGGish weights not found; {_install_hint()}.")
            digest = _weights.check_file_digest(model_path)
            self._net = net_mod.load_net(model_path, final_relu=self.final_relu)
            pca_digest = ""
            if pca_path is not None and postprocess is not False:
                pca_digest = _weights.check_file_digest(pca_path)
                vectors, means = net_mod.load_pca(pca_path)
                self._pca = (vectors.numpy(), means.numpy())
            self.weights_kind = "real"
            self.weights_path, self.pca_path = model_path, pca_path if self._pca is not None else None
            self.weights_sha256 = digest if not pca_digest else f"{digest}+{pca_digest}"
        if postprocess and self._pca is None:
            raise WeightsError(
                f"postprocess=True needs the PCA parameters {PCA_FILE} beside the VGGish weights; "
                f"{_install_hint()} (or use postprocess=False)."
            )
        self.postprocess = self._pca is not None if postprocess is None else bool(postprocess)
        self.embedding_size = 128
        self.n_layers = 1
        self.default_layer = 0
        self._on_device = False
        # log-mel on the device (torch) on accelerators, with numpy on the host on the CPU
        self._device_front_end = _torch_runtime.device_type(self.device) != "cpu"

    # --- identity ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "postprocess": self.postprocess,
            "final_relu": self.final_relu,
            "dtype": self.dtype,
            "front_end": "vggish-v1",
        }
        if self.weights_kind == "random":
            cfg.update(random_seed=self.seed, tiny=self.tiny)
        return cfg

    @classmethod
    def expected_weights_kind(cls) -> str | None:
        return "real"

    @classmethod
    def weights_hint(cls) -> str | None:
        if find_vggish_weights()[0] is not None:
            return None
        hint = _install_hint()
        return hint[0].upper() + hint[1:]

    @classmethod
    def status(cls) -> BackendStatus:
        base = super().status()
        model, pca = find_vggish_weights() if base.status == "ready" else (None, None)
        if model is None or pca is not None:
            return base
        note = f"PCA file {PCA_FILE} not found beside {model}: embeddings are not postprocessed"
        return BackendStatus(cls.name, "ready", "real", cls.default_embedding_size, cls.sample_rate, note, cls.description)

    # --- inference -----------------------------------------------------------------------
    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        audio = check_audio(audio)
        if audio.ndim == 1:
            audio = audio[None, :]
        if audio.shape[1] < MIN_SAMPLES:
            warnings.warn(
                f"Audio of {audio.shape[1] / SAMPLE_RATE:.3f} s is shorter than VGGish's {self.min_duration_s:.3f} s "
                "example; it is padded with silence.",
                SoundalikeWarning,
                stacklevel=3,
            )
            audio = np.pad(audio, ((0, 0), (0, MIN_SAMPLES - audio.shape[1])))
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _embed_examples(self, audio: np.ndarray) -> np.ndarray:
        """(n_clips, n_samples) -> (n_clips, n_examples, 128) float32, postprocessed if enabled."""
        import torch

        from . import _torch_runtime

        if not self._on_device:
            self._net.to(self.device)
            self._forward = _torch_runtime.compile_model(self._net) if self.compile else self._net
            self._on_device = True
        dev_type = torch.device(self.device).type
        autocast = torch.autocast(device_type=dev_type, dtype=getattr(torch, self.dtype), enabled=self.dtype != "float32")
        n_clips = audio.shape[0]
        n_ex = (1 + (audio.shape[1] - WINDOW) // HOP) // EXAMPLE_FRAMES
        outs = []
        if self._device_front_end:
            from ._torch_frontends import vggish_log_mel_examples

            # the PCM goes to the device and the log-mel is computed there, a few clips at a time
            # (about max_batch examples, bounding the STFT's memory); outputs stay there until the end
            per = max(1, self.max_batch // max(n_ex, 1))
            with torch.inference_mode():
                for start in range(0, n_clips, per):
                    x = _torch_runtime.to_device(audio[start : start + per], self.device)
                    ex = vggish_log_mel_examples(x).reshape(-1, 1, EXAMPLE_FRAMES, N_MELS)
                    with autocast:
                        for part in ex.split(self.max_batch):  # a clip longer than max_batch examples
                            outs.append(self._forward(part).float())
            emb = torch.cat(outs).cpu().numpy()
        else:
            examples = log_mel_examples(audio)
            flat = torch.from_numpy(examples.reshape(n_clips * n_ex, 1, EXAMPLE_FRAMES, N_MELS))
            with torch.inference_mode(), autocast:
                # all examples of all clips go through the net together, in slices of max_batch
                for start in range(0, flat.shape[0], self.max_batch):
                    part = _torch_runtime.to_device(flat[start : start + self.max_batch].numpy(), self.device)
                    outs.append(self._forward(part).float().cpu())
            emb = torch.cat(outs).numpy()
        if self.postprocess:
            assert self._pca is not None
            emb = postprocess_embeddings(emb, *self._pca)
        return emb.reshape(n_clips, n_ex, -1).astype(np.float32, copy=False)

    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Mean of the example embeddings.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]   16 kHz mono

        Returns
        -------
        np.ndarray [shape=(n_clips, 1, 128), dtype=float32]
        """
        per_example = self._embed_examples(self._prepare(audio))
        return per_example.mean(axis=1, dtype=np.float64)[:, None, :].astype(np.float32)

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One embedding per 0.96 s example and its centre time in ms.

        Returns
        -------
        embeddings : np.ndarray [shape=(n_clips, n_examples, 128), dtype=float32]
        times_ms : np.ndarray [shape=(n_clips, n_examples), dtype=float32]
            ``960 * i + 487.5``.
        """
        per_example = self._embed_examples(self._prepare(audio))
        times = np.broadcast_to(example_times_ms(per_example.shape[1]), per_example.shape[:2]).copy()
        return per_example, times
