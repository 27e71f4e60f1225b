"""musicnn (Pons & Serra, ISMIR 2019 LBD): music-tagging CNNs with their real trained weights.

The weights are the TensorFlow checkpoints shipped inside the ``musicnn`` 0.1.0 wheel (ISC
licence), installed with ``pip install --no-deps musicnn==0.1.0`` (its metadata pins
``numpy<1.17``, so its dependencies must not be resolved). They are read with numpy
(:mod:`._tf_checkpoint`, no TensorFlow) into a PyTorch port of the graph (:mod:`._musicnn_net`);
the port matches musicnn's own TensorFlow code on a golden excerpt
(``tests/data/musicnn_golden``).

Front end, as upstream's ``extractor.batch_data``: 16 kHz mono, librosa mel spectrogram
(n_fft 512, hop 256, 96 bands, librosa defaults otherwise), ``log10(10000 * mel + 1)`` in
float32 (upstream casts to float16 first, which overflows on loud bins), non-overlapping 3 s
patches of 187 frames (upstream's default ``input_overlap=False``); audio after the last whole
patch is dropped, as upstream does. The clip vector is the mean over its patches.

Backends: ``musicnn-msd`` (MSD_musicnn, the default of the main job), ``musicnn-mtt``
(MTT_musicnn), ``musicnn-msd-vgg`` and ``musicnn-mtt-vgg`` (the VGG baselines). Outputs
(option ``output``): ``"penultimate"`` (default; 200-d for musicnn, the 256-d flattened pool5 for
the VGGs), ``"taggram"`` (50 tag probabilities, names in ``tag_names``) and, for musicnn,
``"pooled"`` (753-d mean-over-time of the mid-end feature map, upstream's ``mean_pool``).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._validation import check_audio, check_option
from ..errors import ParameterError, SoundalikeWarning, WeightsError
from . import _weights
from .base import Backend
from .registry import register_backend

__all__ = [
    "MusicnnMSD",
    "MusicnnMTT",
    "MusicnnMSDVgg",
    "MusicnnMTTVgg",
    "MSD_TAGS",
    "MTT_TAGS",
    "find_musicnn_checkpoint",
    "patch_times_ms",
    "INSTALL_COMMAND",
]

INSTALL_COMMAND = "pip install --no-deps musicnn==0.1.0"

SAMPLE_RATE = 16000
HOP = 256
PATCH_FRAMES = 187  # 3 s
PATCH_HOP = PATCH_FRAMES  # upstream default: input_overlap=False
# librosa centres frames: n_frames = 1 + n_samples // HOP; one patch needs PATCH_FRAMES frames
MIN_SAMPLES = (PATCH_FRAMES - 1) * HOP
_DTYPES = ("float32", "bfloat16", "float16")
#: one network build at a time (module level, so backends stay picklable)
_BUILD_LOCK = threading.Lock()

# musicnn/configuration.py (musicnn 0.1.0), in the order of the output units
MTT_TAGS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)

_DATA_FILE = ".data-00000-of-00001"
_INDEX_FILE = ".index"


# --- weights ------------------------------------------------------------------------------------
def _package_dir() -> Path | None:
    """The installed ``musicnn`` package folder, found without importing it (it imports TF)."""
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_checkpoint_dir(p: Path) -> bool:
    return (p / _INDEX_FILE).is_file() and (p / _DATA_FILE).is_file()


def find_musicnn_checkpoint(model: str, weights: str | os.PathLike[str] | None = None) -> Path | None:
    """Folder holding the checkpoint of `model` (``"MSD_musicnn"``, ...), or None.

    Looks at `weights` (the checkpoint folder itself, or a folder with a `model` subfolder),
    then ``$SOUNDALIKE_WEIGHTS_DIR/musicnn/<model>/``, then the installed ``musicnn`` package.
    """
    if weights is not None:
        p = Path(weights).expanduser()
        if p.is_file() and p.name in (_INDEX_FILE, _DATA_FILE):
            p = p.parent
        for cand in (p, p / model):
            if cand.is_dir() and _is_checkpoint_dir(cand):
                return cand
        raise WeightsError(
            f"No {model} checkpoint (files {_INDEX_FILE} and {_DATA_FILE}) at {str(p)!r}; point "
            f"weights= at musicnn's {model} folder, or drop weights= and run {INSTALL_COMMAND}."
        )
    env = _weights.weights_dir()
    roots = [env / "musicnn"] if env is not None else []
    pkg = _package_dir()
    if pkg is not None:
        roots.append(pkg)
    for root in roots:
        if _is_checkpoint_dir(root / model):
            return root / model
    return None


# --- time axis -----------------------------------------------------------------------------------
def patch_times_ms(n_patches: int) -> np.ndarray:
    """Centre time (ms) of each 3 s patch: frame ``s + 93`` of a patch starting at frame ``s``.

    Returns
    -------
    np.ndarray [shape=(n_patches,), dtype=float32]   ``2992 * i + 1488``
    """
    start = np.arange(n_patches) * PATCH_HOP
    return ((start + (PATCH_FRAMES - 1) / 2) * HOP / SAMPLE_RATE * 1000.0).astype(np.float32)


def n_patches_for(n_samples: int) -> int:
    """How many whole patches a clip of `n_samples` (>= MIN_SAMPLES) gives."""
    n_frames = 1 + n_samples // HOP
    return (n_frames - PATCH_FRAMES) // PATCH_HOP + 1


# --- backends -----------------------------------------------------------------------------------
class _Musicnn(Backend):
    """Shared implementation; the registered subclasses fix the checkpoint and architecture.

    Parameters
    ----------
    output : {"penultimate", "taggram", "pooled"}
        Which vector is stored: the penultimate layer (default), the 50 tag probabilities, or
        (musicnn only) the 753-d mean-pooled mid-end features.
    weights : path, optional
        The checkpoint folder (holding ``.index`` and ``.data-00000-of-00001``) or a folder
        with a subfolder named like the model (``MSD_musicnn``); else
        ``$SOUNDALIKE_WEIGHTS_DIR/musicnn/<model>/`` or the installed ``musicnn`` package.
    device : {"auto", "cpu", "cuda", "cuda:N", ...}
        Where the network runs; moved there on first use, not in the constructor.
    dtype : {"float32", "bfloat16", "float16"}
        Autocast precision of the network; outputs are float32.
    tiny : bool
        Seeded random weights of the same architecture (``weights_kind="random"``), for tests.
    seed : int
        Seed of the random weights.
    max_batch : int
        Patches per forward pass (bounds memory, ~20 MB per patch; does not change outputs).
    runtime : {"auto", "factorised", "reference"}
        How the network is evaluated; not part of the model key (same function of the same
        weights). ``factorised`` (``auto`` on the CPU for musicnn) runs the front end through
        the exact low-rank factorisation of its filters (:mod:`._musicnn_fast`, ~2x faster;
        cosine to the reference >= 0.999999); ``reference`` is the plain port (``auto`` on a
        GPU and for the VGGs), the fp32 reference of the tests.

    Examples
    --------
    >>> import numpy as np
    >>> from soundalike.backends import load_backend
    >>> model = load_backend("musicnn-msd", tiny=True)  # random weights; drop tiny for the real ones
    >>> audio = np.random.default_rng(0).uniform(-0.1, 0.1, (2, 7 * 16000)).astype(np.float32)
    >>> model.embed_layers(audio).shape  # mean over the two whole 3 s patches of each clip
    (2, 1, 200)
    >>> emb, times_ms = model.get_timestamp_embeddings(audio)
    >>> emb.shape, times_ms[0].tolist()
    ((2, 2, 200), [1488.0, 4480.0])
    """

    sample_rate = SAMPLE_RATE
    extra = "torch"
    worker_preload = ("torch", "librosa", "soundalike.backends._musicnn_net", "soundalike.backends._musicnn_fast")
    requires = ("torch",)  # the weights (the musicnn package) are checked by status()
    min_duration_s = MIN_SAMPLES / SAMPLE_RATE

    model: ClassVar[str] = ""  # checkpoint folder name in the musicnn package
    arch: ClassVar[str] = "musicnn"
    tag_names: ClassVar[tuple[str, ...]] = ()
    output_sizes: ClassVar[dict[str, int]] = {}

    def __init__(
        self,
        *,
        output: str = "penultimate",
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        tiny: bool = False,
        seed: int = 0,
        max_batch: int = 32,
        runtime: str = "auto",
    ) -> None:
        self.output = check_option("output", output, tuple(self.output_sizes))
        self.dtype = check_option("dtype", dtype, _DTYPES)
        if str(device) == "cpu":
            self.device = "cpu"  # nothing to resolve: no torch import yet
        else:
            from . import _torch_runtime

            self.device = _torch_runtime.resolve_device(device)
        self.tiny = bool(tiny)
        self.seed = int(seed)
        if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch <= 0:
            raise ParameterError(f"max_batch must be a positive integer, got {max_batch!r}.")
        self.max_batch = int(max_batch)
        self.runtime = check_option("runtime", runtime, ("auto", "factorised", "reference"))
        cpu = str(self.device).split(":")[0] == "cpu"
        if self.runtime == "auto":
            self.runtime = "factorised" if (cpu and self.arch == "musicnn") else "reference"
        if self.runtime == "factorised" and (self.arch != "musicnn" or not cpu):
            raise ParameterError("runtime='factorised' is for the musicnn architecture on the CPU; use 'reference'.")
        # the network (torch) is built on first use, shared with with_output() views: a process
        # that only needs the model key (the parent of analysis workers) never imports torch
        self._state: dict[str, Any] = {}
        if self.tiny:
            if weights is not None:
                raise ParameterError("Pass either weights=PATH or tiny=True, not both.")
            self._build()
            self.weights_kind = "random"
            self.weights_sha256 = _state_digest(self._net)
            self.weights_path: Path | None = None
        else:
            folder = find_musicnn_checkpoint(self.model, weights)
            if folder is None:
                raise WeightsError(
                    f"The {self.model} checkpoint of backend {self.name!r} is not installed; run "
                    f"{INSTALL_COMMAND} (or pass weights=PATH to a folder holding it)."
                )
            from ._musicnn_tf_names import tf_mapping
            from ._tf_checkpoint import read_tf_checkpoint

            variables = read_tf_checkpoint(folder, skip_optimizer=True)  # numpy; checked for names here
            expected = {tf for tf, _ in tf_mapping(self.arch).values()}
            problems = [f"missing variable {v}" for v in sorted(expected - set(variables))]
            problems += [f"unexpected variables {sorted(set(variables) - expected)}"] if set(variables) - expected else []
            if problems:
                raise self._misfit(folder, problems)
            self._state["variables"] = variables
            self.weights_kind = "real"
            self.weights_sha256 = _weights.sha256_file(folder / _DATA_FILE)
            self.weights_path = folder
        self.embedding_size = self.output_sizes[self.output]
        self.n_layers = 1
        self.default_layer = 0

    def _misfit(self, folder: Path, problems: list[str]) -> WeightsError:
        return WeightsError(
            f"Checkpoint {str(folder)!r} does not fit the {self.model} architecture: "
            f"{'; '.join(problems[:5])}. Point weights= at musicnn's own {self.model} folder."
        )

    def _build(self) -> None:
        """Build the network (random for `tiny`, else from the checkpoint read at creation), once:
        threads that use the backend together (the service) wait for the first build."""
        with _BUILD_LOCK:
            if "runner" not in self._state:
                self._build_now()

    def _build_now(self) -> None:
        from . import _musicnn_net as net_mod

        net = net_mod.build_net(self.arch, n_classes=len(self.tag_names))
        if self.tiny:
            net_mod.randomize_(net, seed=self.seed)
        else:
            problems = net_mod.load_tf_weights(net, self._state.pop("variables"))
            if problems:
                raise self._misfit(self.weights_path, problems)
        net = net.eval()
        if self.runtime == "factorised":
            from ._musicnn_fast import FactorisedMusicnn

            runner: Any = FactorisedMusicnn(net)
        else:
            runner = net
        self._state.update(net=net, runner=runner, on_device=False)

    @property
    def _net(self) -> Any:
        if "net" not in self._state:
            self._build()
        return self._state["net"]

    @property
    def _runner(self) -> Any:
        if "runner" not in self._state:
            self._build()
        return self._state["runner"]

    # --- identity ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "model": self.model,
            "output": self.output,
            "dtype": self.dtype,
            "front_end": "musicnn-logmel-f32",  # log10(10000 mel + 1) without the float16 cast
            "patch_frames": PATCH_FRAMES,
            "patch_hop": PATCH_HOP,
            "pooling": "mean",
        }
        if self.tiny:
            cfg.update(random_seed=self.seed, tiny=True)
        return cfg

    @classmethod
    def expected_weights_kind(cls) -> str | None:
        return "real"

    def with_output(self, output: str) -> "_Musicnn":
        """The same loaded network storing another output (shares the weights, no reload)."""
        other = copy.copy(self)
        other.output = check_option("output", output, tuple(self.output_sizes))
        other.embedding_size = self.output_sizes[other.output]
        return other

    def companions(self) -> list[Backend]:
        """The penultimate pass also stores the 50 tag probabilities (``output="taggram"``)."""
        return [self.with_output("taggram")] if self.output == "penultimate" else []

    def embed_with_companions(self, audio: np.ndarray) -> list[np.ndarray]:
        """:meth:`embed_layers` of this backend and of each companion, from one forward pass."""
        outputs = (self.output, *(c.output for c in self.companions()))  # type: ignore[attr-defined]
        per_patch = self._embed_patches(self._prepare(audio), outputs)
        return [per_patch[o].mean(axis=1, dtype=np.float64)[:, None, :].astype(np.float32) for o in outputs]

    @classmethod
    def weights_hint(cls) -> str | None:
        if find_musicnn_checkpoint(cls.model) is None:
            return f"{INSTALL_COMMAND}  (the {cls.model} checkpoint ships in the musicnn wheel)"
        return None

    # --- inference -----------------------------------------------------------------------
    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        audio = check_audio(audio)
        if audio.ndim == 1:
            audio = audio[None, :]
        if audio.shape[1] < MIN_SAMPLES:
            warnings.warn(
                f"Audio of {audio.shape[1] / SAMPLE_RATE:.3f} s is shorter than one musicnn patch "
                f"({self.min_duration_s:.3f} s); it is padded with silence.",
                SoundalikeWarning,
                stacklevel=3,
            )
            audio = np.pad(audio, ((0, 0), (0, MIN_SAMPLES - audio.shape[1])))
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _embed_patches(self, audio: np.ndarray, outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        """(n_clips, n_samples) -> {output: (n_clips, n_patches, d) float32}, one forward pass."""
        import torch

        from ._musicnn_net import log_mel

        n_clips = audio.shape[0]
        n_patches = n_patches_for(audio.shape[1])
        mel = log_mel(audio)[:, : n_patches * PATCH_FRAMES]
        flat = torch.from_numpy(
            np.ascontiguousarray(mel.reshape(n_clips * n_patches, PATCH_FRAMES, mel.shape[-1]))
        )
        from . import _torch_runtime

        if not self._state.get("on_device"):
            self._net.to(self.device)
            self._state["on_device"] = True
        names = {"penultimate": "penultimate", "taggram": "logits", "pooled": "mean_pool"}
        dev_type = torch.device(self.device).type
        outs: dict[str, list] = {o: [] for o in outputs}
        with torch.inference_mode(), torch.autocast(
            device_type=dev_type, dtype=getattr(torch, self.dtype), enabled=self.dtype != "float32"
        ):
            for start, stop in _patch_spans(n_clips, n_patches, self.max_batch, per_clip=dev_type == "cpu"):
                part = _torch_runtime.to_device(flat[start:stop].numpy(), self.device)
                got = self._runner(part)
                for o in outputs:
                    y = got[names[o]].float()
                    outs[o].append((torch.sigmoid(y) if o == "taggram" else y).cpu())
        return {o: torch.cat(v).numpy().reshape(n_clips, n_patches, -1).astype(np.float32, copy=False)
                for o, v in outs.items()}

    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Mean over the clip's 3 s patches of the chosen output.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]   16 kHz mono

        Returns
        -------
        np.ndarray [shape=(n_clips, 1, embedding_size), dtype=float32]
        """
        per_patch = self._embed_patches(self._prepare(audio), (self.output,))[self.output]
        return per_patch.mean(axis=1, dtype=np.float64)[:, None, :].astype(np.float32)

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One vector per 3 s patch and the patch's centre time in ms.

        Returns
        -------
        embeddings : np.ndarray [shape=(n_clips, n_patches, embedding_size), dtype=float32]
        times_ms : np.ndarray [shape=(n_clips, n_patches), dtype=float32]   ``2992 i + 1488``
        """
        per_patch = self._embed_patches(self._prepare(audio), (self.output,))[self.output]
        times = np.broadcast_to(patch_times_ms(per_patch.shape[1]), per_patch.shape[:2]).copy()
        return per_patch, times

    def tag_probabilities(self, audio: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """Clip-level tag probabilities (mean of the taggram) whatever ``output`` is.

        Returns
        -------
        probabilities : np.ndarray [shape=(n_clips, 50), dtype=float32]
        tag_names : tuple of str
        """
        per_patch = self._embed_patches(self._prepare(audio), ("taggram",))["taggram"]
        return per_patch.mean(axis=1, dtype=np.float64).astype(np.float32), self.tag_names


def _state_digest(net: Any) -> str:
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()



def _patch_spans(n_clips: int, n_patches: int, max_batch: int, *, per_clip: bool) -> list[tuple[int, int]]:
    """Row ranges of the (n_clips * n_patches) patch stack, at most `max_batch` rows each.

    On the CPU each clip's patches form their own forward passes: oneDNN picks its convolution
    kernels by batch size, so a clip gives the same vector (bit for bit) alone or in a batch
    (CONTRACTS: equality across batch sizes). Accelerators take every patch together.
    """
    if not per_clip:
        total = n_clips * n_patches
        return [(s, min(s + max_batch, total)) for s in range(0, total, max_batch)]
    return [(c * n_patches + s, c * n_patches + min(s + max_batch, n_patches))
            for c in range(n_clips) for s in range(0, n_patches, max_batch)]

_MUSICNN_SIZES = {"penultimate": 200, "taggram": 50, "pooled": 753}
_VGG_SIZES = {"penultimate": 256, "taggram": 50}


@register_backend("musicnn-msd")
class MusicnnMSD(_Musicnn):
    __doc__ = _Musicnn.__doc__
    model = "MSD_musicnn"
    tag_names = MSD_TAGS
    output_sizes = _MUSICNN_SIZES
    default_embedding_size = 200
    description = "musicnn MSD (Million Song Dataset tags, 2019): 200-d penultimate layer per 3 s; music"


@register_backend("musicnn-mtt")
class MusicnnMTT(_Musicnn):
    __doc__ = _Musicnn.__doc__
    model = "MTT_musicnn"
    tag_names = MTT_TAGS
    output_sizes = _MUSICNN_SIZES
    default_embedding_size = 200
    description = "musicnn MTT (MagnaTagATune tags, 2019): 200-d penultimate layer per 3 s; music"


@register_backend("musicnn-msd-vgg")
class MusicnnMSDVgg(_Musicnn):
    __doc__ = _Musicnn.__doc__
    model = "MSD_vgg"
    arch = "vgg"
    tag_names = MSD_TAGS
    output_sizes = _VGG_SIZES
    default_embedding_size = 256
    description = "musicnn's VGG baseline, MSD tags: 256-d flattened pool5 per 3 s; music"


@register_backend("musicnn-mtt-vgg")
class MusicnnMTTVgg(_Musicnn):
    __doc__ = _Musicnn.__doc__
    model = "MTT_vgg"
    arch = "vgg"
    tag_names = MTT_TAGS
    output_sizes = _VGG_SIZES
    default_embedding_size = 256
    description = "musicnn's VGG baseline, MTT tags: 256-d flattened pool5 per 3 s; music"
