"""Ensembles: several backends' vectors side by side, each block weighted.

Two ways to combine, for two situations:

- :class:`Ensemble` is a backend (``load_backend("musicnn-msd+descriptors")``): it takes audio
  at the highest member rate, resamples it to each member's rate (soxr), takes each member's
  ``default_layer``, L2-normalises each block and scales it by ``sqrt(w)`` (weights summing to
  1). The cosine of two ensemble vectors is then exactly the weighted mean of the members'
  cosines. No library statistics are needed, so a track's vector never changes when the
  library grows.
- :func:`combine_blocks` works on stored embeddings of a whole library: each block is z-scored
  per dimension over the library (so a 768-d block and a 20-d block of descriptors with
  different units become comparable), divided by ``sqrt(d)`` so every block has total variance 1,
  then scaled by ``sqrt(w)``. Used by the similarity code on cached vectors.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_audio, check_embeddings
from ..errors import DimensionMismatchError, ParameterError
from .base import Backend

__all__ = ["Ensemble", "combine_blocks", "normalize_weights"]


def normalize_weights(weights: Sequence[float] | None, n: int, *, what: str = "members") -> np.ndarray:
    """Positive finite weights of `n` blocks, scaled to sum to 1 (None: equal weights)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(list(weights), dtype=np.float64)
    if w.shape != (n,):
        raise ParameterError(f"weights has {w.size} values but there are {n} {what}; give one weight per block.")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError(f"weights must be non-negative, finite and not all zero; got {list(w)}.")
    return w / w.sum()


def combine_blocks(
    blocks: Sequence[np.ndarray], *, weights: Sequence[float] | None = None, standardize: bool = True
) -> np.ndarray:
    """Concatenate per-backend embedding blocks of the same items into one matrix.

    Parameters
    ----------
    blocks : sequence of np.ndarray [shape=(n_items, d_b)]
        One block per backend, rows in the same item order.
    weights : sequence of float, optional
        Share of each block (normalised to sum 1; default equal).
    standardize : bool
        True: z-score every dimension over the items, divide the block by ``sqrt(d_b)`` (total
        variance 1 per block), scale by ``sqrt(w_b)``. Dimensions constant over the items become
        0. False: L2-normalise each row of each block and scale by ``sqrt(w_b)``, as the
        :class:`Ensemble` backend does.

    Returns
    -------
    np.ndarray [shape=(n_items, sum(d_b)), dtype=float32]

    Raises
    ------
    ParameterError
        No blocks, non-finite values, bad weights, or fewer than 2 items to standardise over.
    DimensionMismatchError
        Blocks with different numbers of rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = combine_blocks([rng.normal(size=(50, 200)), 1000 * rng.normal(size=(50, 8))], weights=[0.7, 0.3])
    >>> X.shape
    (50, 208)
    >>> round(float(X[:, 200:].var(axis=0).sum()), 3)
    0.3
    """
    if len(blocks) == 0:
        raise ParameterError("combine_blocks needs at least one block.")
    mats = [check_embeddings(b, name=f"block {i}").astype(np.float64) for i, b in enumerate(blocks)]
    n = mats[0].shape[0]
    for i, m in enumerate(mats):
        if m.shape[0] != n:
            raise DimensionMismatchError(
                f"block {i} has {m.shape[0]} rows but block 0 has {n}; every block must hold the same items in the same order."
            )
    w = normalize_weights(weights, len(mats), what="blocks")
    out = []
    for m, wb in zip(mats, w):
        if standardize:
            if n < 2:
                raise ParameterError("standardize=True needs at least 2 items to compute statistics over.")
            centred = m - m.mean(axis=0)
            std = m.std(axis=0)
            z = np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12 * (np.abs(m).max(axis=0) + 1e-30))
            block = z / np.sqrt(m.shape[1])
        else:
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            block = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
        out.append(block * np.sqrt(wb))
    return np.concatenate(out, axis=1).astype(np.float32)


def _accepted(cls: type, names: Sequence[str]) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return set(names)
    return {n for n in names if n in params}


class Ensemble(Backend):
    """Backend made of several backends (name: members joined with ``+``).

    Parameters
    ----------
    members : list of str
        Registered backend names, at least two, no repeats.
    weights : list of float, optional
        Share of each member in the cosine (normalised to sum 1; default equal). Not a weights
        path: members find their own weights.
    device, dtype : str
        Passed to members that take them.
    **options
        Each option goes to every member whose constructor accepts it (``tiny=True`` to all,
        ``chunk_s=10`` to MERT only); an option no member accepts is an error.
    """

    extra = None
    requires = ()
    description = "Weighted concatenation of L2-normalised member embeddings"

    def __init__(
        self,
        members: Sequence[str],
        *,
        weights: Sequence[float] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        **options: Any,
    ) -> None:
        from .registry import backend_class, load_backend

        names = [str(m).strip() for m in members]
        if len(names) < 2 or any(not m for m in names):
            raise ParameterError(f"An ensemble needs at least two backend names joined by '+'; got {'+'.join(names)!r}.")
        if len(set(names)) != len(names):
            raise ParameterError(f"Ensemble {'+'.join(names)!r} names a backend twice; list each member once.")
        classes = [backend_class(m) for m in names]  # unknown names raise ParameterError
        self.weights = normalize_weights(weights, len(names))
        used: set[str] = set()
        self.members: list[Backend] = []
        for name, cls in zip(names, classes):
            takes = _accepted(cls, [*options, "device", "dtype"])
            opts = {k: v for k, v in options.items() if k in takes}
            used |= set(opts)
            member_dtype = dtype if "dtype" in takes else "float32"
            member_device = device if "device" in takes else "cpu"
            self.members.append(load_backend(name, device=member_device, dtype=member_dtype, **opts))
        unused = sorted(set(options) - used)
        if unused:
            raise ParameterError(
                f"Option(s) {', '.join(unused)} are accepted by no member of {'+'.join(names)!r}; check the spelling."
            )
        self.name = "+".join(names)  # type: ignore[misc]  # instance name of an unregistered backend
        self.sample_rate = max(m.sample_rate for m in self.members)  # type: ignore[misc]
        self.min_duration_s = max(m.min_duration_s for m in self.members)  # type: ignore[misc]
        self.device = device
        self.dtype = dtype
        self.embedding_size = sum(int(m.embedding_size) for m in self.members)
        self.n_layers = 1
        self.default_layer = 0
        kinds = {m.weights_kind for m in self.members}
        self.weights_kind = "random" if "random" in kinds else ("real" if "real" in kinds else "none")
        digests = "|".join(f"{m.name}:{m.weights_sha256 or ''}" for m in self.members)
        self.weights_sha256 = hashlib.sha256(digests.encode()).hexdigest()

    def config(self) -> dict[str, Any]:
        return {
            "members": [
                {"name": m.name, "model_key": m.model_key, "layer": m.default_layer} for m in self.members
            ],
            "weights": [round(float(w), 12) for w in self.weights],
            "block_norm": "l2",
        }

    def member_blocks(self, audio: np.ndarray) -> list[np.ndarray]:
        """Each member's ``default_layer`` embedding of the same audio (resampled per member).

        Parameters
        ----------
        audio : np.ndarray [shape=(n_clips, n_samples)]   at ``self.sample_rate``

        Returns
        -------
        list of np.ndarray [shape=(n_clips, d_m), dtype=float32]
        """
        import soxr

        audio = check_audio(audio)
        if audio.ndim == 1:
            audio = audio[None, :]
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        blocks = []
        for m in self.members:
            x = audio
            if m.sample_rate != self.sample_rate:
                # soxr resamples (frames, channels): clips are the channels
                x = np.ascontiguousarray(soxr.resample(audio.T, self.sample_rate, m.sample_rate).T, dtype=np.float32)
            blocks.append(m.embed_layers(x)[:, m.default_layer, :])
        return blocks

    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        """Weighted concatenation of L2-normalised member blocks.

        Returns
        -------
        np.ndarray [shape=(n_clips, 1, sum(d_m)), dtype=float32]
        """
        combined = combine_blocks(self.member_blocks(audio), weights=self.weights, standardize=False)
        return combined[:, None, :]
