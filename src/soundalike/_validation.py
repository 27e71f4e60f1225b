"""Validation at the public boundary: check once, then let private helpers trust their input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, InvalidAudioError, ParameterError

__all__ = ["check_audio", "check_embeddings", "check_option", "check_positive_int"]


def check_audio(audio: Any, *, ndim: int | tuple[int, ...] = (1, 2), name: str = "audio") -> np.ndarray:
    """Check that `audio` is a finite float32 array of the allowed rank.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (n_clips, n_samples)]
    ndim : int or tuple of int
        Allowed ranks.

    Returns
    -------
    np.ndarray
        The same array (not copied) when valid.

    Raises
    ------
    InvalidAudioError
        Not an ndarray, integer dtype, wrong rank, empty, or non-finite samples.
    """
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if not isinstance(audio, np.ndarray):
        raise InvalidAudioError(f"{name} must be a numpy array, got {type(audio).__name__}.")
    if not np.issubdtype(audio.dtype, np.floating):
        raise InvalidAudioError(
            f"{name} has dtype {audio.dtype}; expected floating-point samples in [-1, 1] "
            "(convert integer PCM with y.astype(np.float32) / 32768)."
        )
    if audio.ndim not in allowed:
        raise InvalidAudioError(f"{name} has {audio.ndim} dimensions; expected one of {allowed}.")
    if audio.size == 0 or audio.shape[-1] == 0:
        raise InvalidAudioError(f"{name} is empty (0 samples).")
    if not np.isfinite(audio).all():
        raise InvalidAudioError(f"{name} contains NaN or infinite samples.")
    return audio


def check_embeddings(X: Any, *, dim: int | None = None, name: str = "embeddings", where: str = "") -> np.ndarray:
    """Check a 2-D finite matrix of embeddings, optionally of dimension `dim`.

    Returns the matrix as float32 or float64 (unchanged if already floating).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(f"{name} must be 2-D (n_items, dim); got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if dim is not None and X.shape[1] != dim:
        suffix = f" {where}" if where else ""
        raise DimensionMismatchError(
            f"{name} have {X.shape[1]} dims, but{suffix} {dim} are expected; "
            "embed with the same backend and options, or choose the matching --backend."
        )
    if not np.isfinite(X).all():
        raise ParameterError(f"{name} contain NaN or infinite values.")
    return X


def check_option(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Check that `value` is one of `choices`; the error lists them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name}={value!r} is not valid; choose one of {listed}.")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Check an integer > 0 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
