"""The backend contract (HEAR shape).

A backend turns float32 mono audio at its own ``sample_rate`` into embeddings. Every backend
returns, for a batch of equal-length clips, one time-pooled vector per *layer*
(``embed_layers``, shape ``(n_clips, n_layers, d)``); single-output backends have one layer.
The pipeline stores every layer once, so a layer (or a weighted sum) can be chosen later
without recomputing.

Backend modules must import without torch/transformers: heavy imports happen inside the
constructor (``load_backend``), so ``soundalike backends`` can list everything cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from .._validation import check_audio

__all__ = [
    "Backend",
    "BackendStatus",
    "WeightsKind",
    "model_key_for",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
]

WeightsKind = Literal["real", "random", "none"]
#: the default analysis windows (``WindowPolicy().key()``), part of every stored model key
DEFAULT_WINDOW = "middle:30"


@dataclass(frozen=True)
class BackendStatus:
    """What ``soundalike backends`` shows for one backend (see CONTRACTS.md, ``backends --json``)."""

    name: str
    status: Literal["ready", "needs-extra", "weights-missing"]
    weights_kind: WeightsKind | None
    embedding_size: int
    sample_rate: int
    install_hint: str = ""
    description: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "weights_kind": self.weights_kind,
            "embedding_size": self.embedding_size,
            "sample_rate": self.sample_rate,
            "install_hint": self.install_hint,
            "description": self.description,
        }


def model_key_for(backend: str, config: dict[str, Any], weights_sha256: str | None) -> str:
    """Hash the backend name, every output-changing option and the weights digest.

    The layer is *not* part of the key: multi-layer backends store every layer under one key.
    """
    payload = json.dumps(
        {"backend": backend, "config": config, "weights": weights_sha256 or ""},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class Backend(ABC):
    """Base class of every embedding backend.

    Subclasses set the class attributes and implement :meth:`embed_layers`; they may override
    :meth:`get_timestamp_embeddings` when frame-level outputs exist.

    Class attributes
    ----------------
    name : str                 registry name, e.g. ``"musicnn-msd"``
    sample_rate : int          input rate the caller must resample to
    extra : str or None        pip extra that provides the heavy dependencies (``"mert"``)
    requires : tuple of str    importable modules the backend needs (checked without importing)
    description : str          one line for ``soundalike backends``

    Instance attributes (set by the constructor)
    --------------------------------------------
    embedding_size : int       d of each stored vector
    n_layers : int             how many vectors per clip are stored (``layer`` 0..n_layers-1)
    default_layer : int        the layer used when the caller names none
    weights_kind : "real" | "random" | "none"
    weights_sha256 : str or None
    """

    name: ClassVar[str] = ""
    sample_rate: ClassVar[int] = 16000
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: embedding size of the default configuration, known without loading (for listings)
    default_embedding_size: ClassVar[int] = 0
    #: the shortest clip (seconds) the backend can embed; shorter input is padded with a warning
    min_duration_s: ClassVar[float] = 1.0
    #: heavy modules a worker process needs (imported once by the forkserver, see track_workers)
    worker_preload: ClassVar[tuple[str, ...]] = ()

    embedding_size: int
    n_layers: int = 1
    default_layer: int = 0
    weights_kind: WeightsKind = "none"
    weights_sha256: str | None = None
    device: str = "cpu"
    #: the ``load_backend`` arguments that built this instance (``None`` when built directly):
    #: worker processes build the same backend from it
    load_spec: dict[str, Any] | None = None

    # --- listing -----------------------------------------------------------------------
    @classmethod
    def missing_requirements(cls) -> list[str]:
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    @classmethod
    def status(cls) -> BackendStatus:
        """Readiness without loading the model. Subclasses with weights extend this."""
        missing = cls.missing_requirements()
        if missing:
            hint = (
                f"pip install 'soundalike[{cls.extra}]' -c constraints.txt"
                if cls.extra
                else f"pip install {' '.join(missing)}"
            )
            return BackendStatus(
                cls.name, "needs-extra", None, cls.default_embedding_size, cls.sample_rate,
                hint, cls.description,
            )
        hint = cls.weights_hint()
        if hint:
            return BackendStatus(
                cls.name, "weights-missing", None, cls.default_embedding_size, cls.sample_rate,
                hint, cls.description,
            )
        return BackendStatus(
            cls.name, "ready", cls.expected_weights_kind(), cls.default_embedding_size,
            cls.sample_rate, "", cls.description,
        )

    @classmethod
    def weights_hint(cls) -> str | None:
        """``None`` when the backend needs no weights or finds them; else how to get them."""
        return None

    @classmethod
    def expected_weights_kind(cls) -> WeightsKind | None:
        return "none"

    # --- identity ------------------------------------------------------------------------
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Every option that changes the outputs (hashed into the model key)."""

    def stored_config(self, window: str = DEFAULT_WINDOW) -> dict[str, Any]:
        """The config hashed into the model key and stored in ``models``: :meth:`config` plus
        the analysis windows (``WindowPolicy.key()``, e.g. ``"middle:30"``)."""
        return {**self.config(), "window": window}

    def key_for(self, window: str = DEFAULT_WINDOW) -> str:
        """The model key of this backend's vectors of `window` (the one key scheme of the store)."""
        return model_key_for(self.name, self.stored_config(window), self.weights_sha256)

    @property
    def model_key(self) -> str:
        """The model key under the default windows (``middle:30``), as ``soundalike embed`` stores it."""
        return self.key_for()

    def companions(self) -> list["Backend"]:
        """Views of this backend whose vectors come from the same forward pass (stored under
        their own model keys, e.g. musicnn's taggram beside its penultimate layer)."""
        return []

    def embed_with_companions(self, audio: np.ndarray) -> list[np.ndarray]:
        """``[embed_layers(audio)]`` followed by each companion's, computed together."""
        return [self.embed_layers(audio), *(c.embed_layers(audio) for c in self.companions())]

    # --- inference -----------------------------------------------------------------------
    @abstractmethod
    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Time-pooled embeddings of every stored layer.

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]
            Mono audio at ``sample_rate``, already validated.

        Returns
        -------
        np.ndarray [shape=(n_clips, n_layers, embedding_size), dtype=float32]
        """

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame-level embeddings ``(n_clips, n_frames, d)`` and their centre times in ms.

        The default treats the whole clip as one frame centred in the clip.
        """
        audio = _as_batch(audio)
        emb = self.embed_layers(audio)[:, self.default_layer, :][:, None, :]
        centre = 1000.0 * audio.shape[1] / self.sample_rate / 2.0
        times = np.full((audio.shape[0], 1), centre, dtype=np.float32)
        return emb, times

    def get_scene_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """One vector per clip ``(n_clips, d)`` from ``default_layer``."""
        return self.embed_layers(_as_batch(audio))[:, self.default_layer, :]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} weights={self.weights_kind} d={self.embedding_size}>"


def _as_batch(audio: np.ndarray) -> np.ndarray:
    audio = check_audio(audio)
    if audio.ndim == 1:
        audio = audio[None, :]
    return np.ascontiguousarray(audio, dtype=np.float32)


def get_scene_embeddings(audio: np.ndarray, model: Backend) -> np.ndarray:
    """HEAR-style function: ``(n_clips, n_samples)`` float32 → ``(n_clips, d)``."""
    return model.get_scene_embeddings(audio)


def get_timestamp_embeddings(audio: np.ndarray, model: Backend) -> tuple[np.ndarray, np.ndarray]:
    """HEAR-style function: → ``(n_clips, n_frames, d)`` and times in ms ``(n_clips, n_frames)``."""
    return model.get_timestamp_embeddings(audio)
