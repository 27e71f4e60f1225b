"""Clips analysed without being stored (the service's uploads): the same decode and embed steps.

An uploaded clip goes through :func:`decode_track` and :func:`embed_decoded` exactly as a library
file does, so its vector (the mean over its windows, at one layer) equals the stored vector the
same file gets from ``soundalike run`` (within the CONTRACTS tolerance). Nothing is written.
"""

from __future__ import annotations

import os

import numpy as np

from ..audio import WindowPolicy, Windows
from ..backends.base import Backend
from ..errors import AudioError, DecodeError
from .kernel import EmbedPlan, decode_track, embed_decoded

__all__ = ["ClipPlan", "decode_clip", "embed_clip"]


def _error_class(kind: str) -> type[AudioError]:
    """The AudioError subclass whose ``kind`` is `kind` (DecodeError for an unknown one)."""
    todo: list[type[AudioError]] = [AudioError]
    while todo:
        cls = todo.pop()
        if cls.kind == kind:
            return cls
        todo.extend(cls.__subclasses__())
    return DecodeError


class ClipPlan:
    """One backend analysing clips with the windows of `policy` (a library model's settings).

    Attributes
    ----------
    model_key : str
        The key this backend and policy write in a store (compare it with the library's).
    """

    def __init__(self, backend: Backend, policy: WindowPolicy) -> None:
        self.plan = EmbedPlan([backend], policy)
        self.backend = backend
        self.policy = policy
        self.model_key = self.plan.keys[0][0]

    @property
    def sample_rate(self) -> int:
        return int(self.backend.sample_rate)


def decode_clip(path: str | os.PathLike, policy: WindowPolicy, sample_rate: int) -> Windows:
    """Decode a clip's windows at `sample_rate`, as the analysis decodes a library file.

    Raises
    ------
    AudioError
        The subclass of the failure's kind (``DecodeError``, ``TooShortError``, ...).
    """
    decoded = decode_track(str(path), policy, (int(sample_rate),))
    if isinstance(decoded, tuple):
        kind, message = decoded
        raise _error_class(kind)(message)
    return decoded[int(sample_rate)]


def embed_clip(windows: Windows, clip_plan: ClipPlan) -> np.ndarray:
    """The clip's window vectors, ``(n_windows, n_layers, d)`` float32 (its stored vector is their mean).

    Raises
    ------
    BackendError
        When the backend rejects the clip.
    """
    key = clip_plan.model_key
    res = embed_decoded(clip_plan.plan, [("clip", "clip", {clip_plan.sample_rate: windows})],
                        lambda _t, k: k == key)[0]
    if key not in res.vectors:
        from ..errors import BackendError

        raise BackendError("; ".join(res.backend_failures) or f"{clip_plan.backend.name} gave no vector for the clip")
    return np.asarray(res.vectors[key][0], dtype=np.float32)
