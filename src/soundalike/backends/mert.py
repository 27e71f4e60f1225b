"""MERT-v1-95M and MERT-v1-330M (Li et al. 2023), self-supervised music transformers.

The architecture runs on transformers' own ``HubertModel`` (no ``trust_remote_code``; see
``_mert_net``). Input: 24 kHz mono, cut into windows of ``chunk_s`` seconds (default 30, i.e.
the whole clip the pipeline hands over), each normalised to zero mean and unit variance as
``Wav2Vec2FeatureExtractor(do_normalize=True)`` does, ``(x - mean) / sqrt(var + 1e-7)``.

Every hidden state is stored once: ``embed_layers`` returns ``(n_clips, n_layers, d)`` with
``n_layers`` = 13 for 95M / 25 for 330M — index 0 is the encoder input (CNN features plus
positional convolution), index i the output of transformer layer i, the last one after the
final LayerNorm. Each is pooled over time (``pooling="mean"``, or ``"meanstd"``: mean and
standard deviation concatenated, d doubles).

``default_layer`` is about 60 % of the depth (layer 7 of 12 for 95M, 14 of 24 for 330M): the
MERT paper and MARBLE report that upper-middle layers carry the most genre/artist information
while the top layers specialise in the pre-training targets. Choose another with ``--layer``
at read time (every layer is stored).

Windows: a clip no longer than ``chunk_s`` is one window. A longer one is cut into windows of
``chunk_s`` with hop ``chunk_s * (1 - overlap)``; when the last window would not reach the end
of the clip, one more window is aligned to the end (so every window has the same length and the
whole batch runs as one tensor). Pooled statistics are averaged over windows (equal frame
counts, so this is the mean over all frames).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._validation import check_audio, check_option
from ..errors import ParameterError, WeightsError
from . import _weights
from .base import Backend
from .registry import register_backend

__all__ = ["MertV1_95M", "MertV1_330M", "normalize_chunks", "window_starts", "find_mert_weights"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
FRAME_HOP = 320  # product of the conv strides: 75 frames per second
FRAME_FIELD = 400  # receptive field of one frame in samples
_CHUNKS = (5, 10, 30)
_POOLINGS = ("mean", "meanstd")
_DTYPES = ("float32", "bfloat16", "float16")
_ATTENTION = ("sdpa", "eager")
_QUANTIZE = ("none", "int8")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def normalize_chunks(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per row, as Wav2Vec2FeatureExtractor(do_normalize=True).

    Parameters
    ----------
    x : np.ndarray [shape=(n_chunks, n_samples)]

    Returns
    -------
    np.ndarray [shape=(n_chunks, n_samples), dtype=float32]
    """
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    var = x64.var(axis=1, keepdims=True)
    return ((x64 - mean) / np.sqrt(var + 1e-7)).astype(np.float32)


def window_starts(n_samples: int, win: int, hop: int) -> list[int]:
    """Start samples of the analysis windows of a clip (see the module docstring)."""
    if n_samples <= win:
        return [0]
    starts = list(range(0, n_samples - win + 1, hop))
    if starts[-1] + win < n_samples:
        starts.append(n_samples - win)
    return starts


# --- weights --------------------------------------------------------------------------------------
def find_mert_weights(variant: str, weights: str | os.PathLike[str] | None = None) -> tuple[Path, Path] | None:
    """``(config.json, weights file)`` of a MERT release, or None when not found.

    `weights` is a folder with ``config.json`` and ``model.safetensors`` or
    ``pytorch_model.bin``, or one of those files (``config.json`` beside it). Without it:
    ``$SOUNDALIKE_WEIGHTS_DIR/<variant>/``, then the Hugging Face cache
    (``models--m-a-p--<variant>/snapshots/<rev>/``). safetensors is preferred.
    """
    if weights is not None:
        p = Path(weights).expanduser()
        if p.is_file():
            folder, file = p.parent, p
        elif p.is_dir():
            folder, file = p, _weights.find_named(p, _WEIGHT_FILES)
        else:
            raise WeightsError(f"MERT weights path {str(p)!r} does not exist; {_install_hint(variant)}.")
        config = folder / "config.json"
        if file is None or not config.is_file():
            raise WeightsError(
                f"MERT weights folder {str(folder)!r} needs config.json and model.safetensors or "
                f"pytorch_model.bin; {_install_hint(variant)}."
            )
        return config, file
    folders: list[Path] = []
    env = _weights.weights_dir()
    if env is not None:
        folders.append(env / variant)
    snap = _weights.hf_snapshot(f"m-a-p/{variant}")
    if snap is not None:
        folders.append(snap)
    for folder in folders:
        file = _weights.find_named(folder, _WEIGHT_FILES)
        if file is not None and (folder / "config.json").is_file():
            return folder / "config.json", file
    return None


def _install_hint(variant: str) -> str:
    env = _weights.weights_dir()
    target = str(env / variant) if env is not None else f"${_weights.WEIGHTS_ENV}/{variant}/"
    return (
        f"run `soundalike models pull {variant.lower()}` (licence CC BY-NC 4.0), or put config.json and "
        f"model.safetensors (or pytorch_model.bin) of https://huggingface.co/m-a-p/{variant} in {target} "
        f"(`soundalike models import PATH`), or pass weights=PATH / --weights PATH"
    )


# --- backend ----------------------------------------------------------------------------------
class _MertV1(Backend):
    """MERT-v1 embeddings of every hidden layer, time-pooled.

    Parameters
    ----------
    weights : path, optional
        Folder with ``config.json`` + ``model.safetensors``/``pytorch_model.bin`` (or one of the
        files); else ``$SOUNDALIKE_WEIGHTS_DIR/<variant>/`` or the Hugging Face cache.
    device : {"auto", "cpu", "cuda", "cuda:N", ...}
        ``auto`` takes CUDA when present. The model moves there on first use (the constructor
        does not touch the GPU). On an accelerator the raw PCM travels through pinned memory,
        one batch ahead of the model, and is normalised on the device; the CPU path
        normalises on the host.
    dtype : {"float32", "bfloat16", "float16"}
        Autocast precision; outputs are float32. On a GPU use ``bfloat16`` (PERFORMANCE.md:
        2x fp32's throughput on an H100); on the CPU keep ``float32`` (bf16 measured slower on
        the 2-core development machine: 6.1 vs 4.4-5.1 s per 30 s clip).
    chunk_s : {5, 10, 30}
        Analysis window in seconds (30: the whole clip the pipeline passes).
    overlap : float in [0, 0.9]
        Fraction of a window shared with the next one.
    pooling : {"mean", "meanstd"}
    attention : {"sdpa", "eager"}
    tiny, random_weights : bool
        Random weights (``weights_kind="random"``): ``tiny`` is the same layout narrow and
        2 layers deep (tests); ``random_weights`` is full width.
    random_layers : int, optional
        Depth of a random instance (e.g. the 330M layout with 2 layers in tests).
    seed : int
    max_batch : int or "auto"
        Windows per forward pass (bounds memory; does not change the outputs). ``auto``: 1 on
        the CPU (batching measured slower there); on CUDA the largest power of two (<= 128) whose peak memory, measured on one
        window on first use, fits in the free memory.
    quantize : {"none", "int8"}
        ``int8``: dynamic int8 quantisation of every linear layer (CPU only; part of the model
        key, since the vectors change). Measured with random weights on 2 cores
        (benchmarks/RESULTS.md): 1.1x faster (1.6x with ``chunk_s=10``), raw cosine to fp32
        >= 0.9997 on every layer but centred cosine 0.93, so it is opt-in.
    compile : bool
        Run the network through ``torch.compile`` (static shapes). Off by default: compiling
        costs minutes and PERFORMANCE.md measured no gain on an H100 in the first iterations.
    """

    variant: ClassVar[str] = ""
    sample_rate = SAMPLE_RATE
    extra = "mert"
    requires = ("torch", "transformers")
    min_duration_s = 0.5

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        chunk_s: int = 30,
        overlap: float = 0.0,
        pooling: str = "mean",
        attention: str = "sdpa",
        tiny: bool = False,
        random_weights: bool = False,
        random_layers: int | None = None,
        seed: int = 0,
        max_batch: int | str = "auto",
        quantize: str = "none",
        compile: bool = False,
    ) -> None:
        from . import _mert_net, _torch_runtime

        self.dtype = check_option("dtype", dtype, _DTYPES)
        self.chunk_s = int(check_option("chunk_s", chunk_s, _CHUNKS))
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= overlap <= 0.9:
            raise ParameterError(f"overlap must be a number in [0, 0.9], got {overlap!r}.")
        self.overlap = float(overlap)
        self.pooling = check_option("pooling", pooling, _POOLINGS)
        self.attention = check_option("attention", attention, _ATTENTION)
        self.device = _torch_runtime.resolve_device(device)
        self.tiny = bool(tiny)
        self.seed = int(seed)
        self.max_batch = _torch_runtime.check_max_batch(max_batch)
        self.compile = bool(compile)
        self.quantize = check_option("quantize", quantize, _QUANTIZE)
        if self.quantize != "none" and not self.device.startswith("cpu"):
            raise ParameterError(f"quantize={quantize!r} runs on the CPU only; on {self.device} use dtype='bfloat16'.")
        random = self.tiny or bool(random_weights) or random_layers is not None
        if random:
            if weights is not None:
                raise ParameterError("Pass either weights=PATH or tiny/random_weights=True, not both.")
            self.random_layers = None if random_layers is None else int(random_layers)
            self._cfg = _mert_net.mert_config(self.variant, tiny=self.tiny, num_hidden_layers=self.random_layers)
            self._model = _mert_net.build_random(self._cfg, seed=self.seed, attention=self.attention)
            self.weights_kind = "random"
            self.weights_sha256 = None
            self.weights_path: Path | None = None
        else:
            self.random_layers = None
            found = find_mert_weights(self.variant, weights)
            if found is None:
                raise WeightsError(f"{self.variant} weights not found; {_install_hint(self.variant)}.")
            config_path, weights_path = found
            digest = _weights.check_file_digest(weights_path)
            self._model, self._cfg, self.dropped_keys = _mert_net.load_pretrained(
                config_path, weights_path, attention=self.attention
            )
            self.weights_kind = "real"
            self.weights_sha256 = digest
            self.weights_path = weights_path
        if self.quantize == "int8":
            self._model = _mert_net.quantize_linear_int8(self._model)
        hidden = int(self._model.config.hidden_size)
        depth = int(self._model.config.num_hidden_layers)
        self.n_layers = depth + 1
        self.default_layer = max(1, int(round(0.6 * depth)))
        self.embedding_size = hidden * (2 if self.pooling == "meanstd" else 1)
        self._kernels = tuple(self._model.config.conv_kernel)
        self._strides = tuple(self._model.config.conv_stride)
        self._forward = None  # the model on its device (compiled when asked), set on first use
        # on accelerators the windows are normalised on the device, from pinned host memory
        self._device_front_end = _torch_runtime.device_type(self.device) != "cpu"

    # --- identity ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "layout": self.variant,
            "chunk_s": self.chunk_s,
            "overlap": self.overlap,
            "pooling": self.pooling,
            "dtype": self.dtype,
            "attention": self.attention,
            "normalize": "per-window-zmuv",
            **({"quantize": self.quantize} if self.quantize != "none" else {}),
            "layers": "all-hidden-states+final-ln",
        }
        if self.weights_kind == "random":
            cfg.update(random_seed=self.seed, tiny=self.tiny, random_layers=self.random_layers)
        return cfg

    @classmethod
    def expected_weights_kind(cls) -> str | None:
        return "real"

    @classmethod
    def weights_hint(cls) -> str | None:
        if find_mert_weights(cls.variant) is not None:
            return None
        hint = _install_hint(cls.variant)
        return hint[0].upper() + hint[1:]

    # --- inference -----------------------------------------------------------------------
    def _windows(self, audio: np.ndarray, hop_s: float | None = None) -> tuple[np.ndarray, list[int]]:
        """(n_clips * n_windows, win) windows, not yet normalised, and the start samples."""
        n_clips, n = audio.shape
        win = self.chunk_s * SAMPLE_RATE
        hop = max(1, int(round(win * (1.0 - self.overlap)))) if hop_s is None else int(hop_s * SAMPLE_RATE)
        starts = window_starts(n, win, hop)
        length = min(win, n)
        if len(starts) == 1:  # the whole clip is the window (30 s clips): no copy
            return audio[:, :length], starts
        chunks = np.stack([audio[:, s : s + length] for s in starts], axis=1)  # (n_clips, n_win, length)
        return chunks.reshape(-1, length), starts

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        audio = check_audio(audio)
        if audio.ndim == 1:
            audio = audio[None, :]
        min_samples = FRAME_FIELD  # one CNN frame; the pipeline pads short clips to min_duration_s
        if audio.shape[1] < min_samples:
            raise ParameterError(
                f"audio has {audio.shape[1]} samples; MERT needs at least {min_samples} (pad the clip)."
            )
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _ready(self, window_length: int):
        """The model on its device (compiled when asked) and the batch size, set on first use."""
        from . import _mert_net, _torch_runtime

        if self._forward is None:
            self._model.to(self.device)
            self._forward = _torch_runtime.compile_model(self._model) if self.compile else self._model
        if self.max_batch == _torch_runtime.AUTO:
            probe = np.zeros((1, window_length), dtype=np.float32)

            def run_one() -> None:
                import torch

                with torch.inference_mode(), self._autocast():
                    _mert_net.pooled_hidden_states(self._forward, _torch_runtime.to_device(probe, self.device))

            self.max_batch = _torch_runtime.measure_batch_size(run_one, self.device)
        return self._forward

    def _autocast(self):
        import torch

        return torch.autocast(device_type=torch.device(self.device).type, dtype=getattr(torch, self.dtype),
                              enabled=self.dtype != "float32")

    def _run(self, windows: np.ndarray, *, keep_layer: int | None = None):
        """Pooled statistics (and the frames of `keep_layer`) of raw windows of one length."""
        import torch

        from . import _mert_net, _torch_runtime

        model = self._ready(windows.shape[1])
        if self._device_front_end:
            return self._run_on_device(model, windows, keep_layer)
        windows = normalize_chunks(windows)
        means, sqs, frames = [], [], []
        with torch.inference_mode(), self._autocast():
            for start in range(0, windows.shape[0], self.max_batch):
                x = _torch_runtime.to_device(windows[start : start + self.max_batch], self.device)
                m, sq, fr = _mert_net.pooled_hidden_states(model, x, keep_layer=keep_layer)
                means.append(m.cpu())
                sqs.append(sq.cpu())
                if fr is not None:
                    frames.append(fr.cpu())
        mean = torch.cat(means).numpy()
        sq = torch.cat(sqs).numpy()
        fr_all = torch.cat(frames).numpy() if frames else None
        return mean, sq, fr_all

    def _run_on_device(self, model, windows: np.ndarray, keep_layer: int | None):
        """The accelerator path: the host only copies PCM, the device does the rest.

        A helper thread copies batch i + 1 into pinned memory while the device runs batch i;
        the copy to the device is asynchronous and normalisation runs there
        (``_torch_frontends.normalize_windows``); pooled statistics stay on the device until
        the last batch, so no copy back to the host waits for the device in between.
        """
        import torch

        from . import _mert_net, _torch_frontends, _torch_runtime

        n, step = windows.shape[0], int(self.max_batch)
        pin = _torch_runtime.device_type(self.device) == "cuda"

        def host_batch(start: int):
            t = torch.from_numpy(np.ascontiguousarray(windows[start : start + step], dtype=np.float32))
            return t.pin_memory() if pin else t

        means, sqs, frames = [], [], []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mert-pin") as pool, torch.inference_mode():
            ahead = pool.submit(host_batch, 0)
            for start in range(0, n, step):
                host = ahead.result()
                if start + step < n:
                    ahead = pool.submit(host_batch, start + step)
                x = _torch_frontends.normalize_windows(host.to(self.device, non_blocking=pin))
                with self._autocast():
                    m, sq, fr = _mert_net.pooled_hidden_states(model, x, keep_layer=keep_layer)
                means.append(m)
                sqs.append(sq)
                if fr is not None:  # frames are large (6.9 MB per 30 s window): to the host at once
                    frames.append(fr.cpu())
        mean = torch.cat(means).cpu().numpy()
        sq = torch.cat(sqs).cpu().numpy()
        fr_all = torch.cat(frames).numpy() if frames else None
        return mean, sq, fr_all

    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Time-pooled hidden states of every layer.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]   24 kHz mono

        Returns
        -------
        np.ndarray [shape=(n_clips, n_layers, d), dtype=float32]
            ``d`` = hidden size (``mean``) or twice it (``meanstd``).
        """
        audio = self._prepare(audio)
        windows, starts = self._windows(audio)
        mean, sq, _ = self._run(windows)
        n_clips, n_win = audio.shape[0], len(starts)
        mean = mean.reshape(n_clips, n_win, self.n_layers, -1).mean(axis=1)
        if self.pooling == "mean":
            return mean.astype(np.float32)
        sq = sq.reshape(n_clips, n_win, self.n_layers, -1).mean(axis=1)
        std = np.sqrt(np.maximum(sq - mean**2, 0.0))
        return np.concatenate([mean, std], axis=-1).astype(np.float32)

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame-level (75 Hz) hidden states of ``default_layer`` and their centre times.

        Windows follow ``chunk_s`` without overlap; frames of an end-aligned last window that
        fall before the previous window's last frame are dropped, so times increase.

        Returns
        -------
        embeddings : np.ndarray [shape=(n_clips, n_frames, hidden_size), dtype=float32]
        times_ms : np.ndarray [shape=(n_clips, n_frames), dtype=float32]
        """
        audio = self._prepare(audio)
        n_clips = audio.shape[0]
        chunks, starts = self._windows(audio, hop_s=self.chunk_s)
        _, _, frames = self._run(chunks, keep_layer=self.default_layer)
        n_fr = frames.shape[1]
        frames = frames.reshape(n_clips, len(starts), n_fr, -1)
        centre = (np.arange(n_fr) * FRAME_HOP + FRAME_FIELD / 2.0) / SAMPLE_RATE * 1000.0
        keep_emb, keep_t = [], []
        last = -np.inf
        for w, s in enumerate(starts):
            t = s / SAMPLE_RATE * 1000.0 + centre
            sel = t > last
            keep_emb.append(frames[:, w, sel])
            keep_t.append(t[sel])
            last = t[sel][-1] if sel.any() else last
        emb = np.concatenate(keep_emb, axis=1).astype(np.float32)
        times = np.broadcast_to(np.concatenate(keep_t), emb.shape[:2]).astype(np.float32)
        return emb, times


@register_backend("mert-v1-95m")
class MertV1_95M(_MertV1):
    __doc__ = _MertV1.__doc__
    variant = "MERT-v1-95M"
    description = "MERT-v1-95M (music SSL transformer, 24 kHz): 13 layers x 768, layer 7 default"
    default_embedding_size = 768


@register_backend("mert-v1-330m")
class MertV1_330M(_MertV1):
    __doc__ = _MertV1.__doc__
    variant = "MERT-v1-330M"
    description = "MERT-v1-330M (music SSL transformer, 24 kHz): 25 layers x 1024, layer 14 default"
    default_embedding_size = 1024
