"""Running a torch model on a device: device choice, batch size from free memory, transfers.

Shared by the torch backends (MERT, VGGish). Imported lazily (inside constructors and forward
passes), so ``soundalike backends`` never imports torch.

- ``resolve_device("auto")`` picks CUDA when present, else the CPU; asking for a device that is
  not there is one clear error, not a crash deep inside torch.
- ``choose_batch_size`` turns free accelerator memory and the measured peak memory of one item
  into a batch size; ``measure_batch_size`` measures that peak by running one item.
- ``to_device`` copies through pinned (page-locked) host memory with ``non_blocking=True`` on
  CUDA, so the copy of the next batch overlaps the kernels of the current one.
- ``compile_model`` wraps ``torch.compile`` (off by default: PERFORMANCE.md measured the first
  iterations of a compiled MERT slower than eager on an H100).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, ParameterError

__all__ = [
    "AUTO",
    "CPU_BATCH",
    "choose_batch_size",
    "check_max_batch",
    "compile_model",
    "device_type",
    "measure_batch_size",
    "resolve_device",
    "to_device",
]

log = logging.getLogger(__name__)

AUTO = "auto"
#: Windows per forward pass on the CPU: larger batches do not run faster there and cost memory
#: (benchmarks/mert_cpu.py, 2 cores, quiet machine: MERT-95M 4.42 s/clip at batch 1, 5.09 at batch 4).
CPU_BATCH = 1
#: Upper bound of an automatic GPU batch: PERFORMANCE.md shows MERT-95M throughput flat from 64 on.
MAX_AUTO_BATCH = 128
#: Part of the free accelerator memory left unused (allocator fragmentation, cuDNN workspaces).
MEMORY_HEADROOM = 0.15


def check_max_batch(value: Any) -> int | str:
    """``max_batch`` option: a positive integer or ``"auto"``."""
    if value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParameterError(f"max_batch must be a positive integer or 'auto', got {value!r}.")
    return value


def resolve_device(device: str) -> str:
    """The torch device string to run on.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"mps"``.

    Raises
    ------
    BackendUnavailable
        The device is not present on this machine.
    """
    import torch

    device = str(device)
    if device == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ParameterError(f"device {device!r} is not a torch device ({exc}); use cpu, cuda, cuda:N or auto.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"device {device!r} was asked for, but this torch build or machine has no CUDA GPU; "
                "use --device cpu (or auto), or install a CUDA build of torch on a GPU machine."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailable(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here.")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendUnavailable(f"device {device!r} is not available on this machine; use cpu or auto.")
    return device


def device_type(device: str) -> str:
    """``"cuda"`` for ``"cuda:1"``, ``"cpu"`` for ``"cpu"``: the kind of a resolved device string."""
    return str(device).split(":", 1)[0]


def choose_batch_size(free_bytes: int, per_item_bytes: int, *, headroom: float = MEMORY_HEADROOM,
                      cap: int = MAX_AUTO_BATCH) -> int:
    """The largest batch whose activations fit in free memory, a power of two in [1, cap].

    Parameters
    ----------
    free_bytes : int >= 0     free device memory (``torch.cuda.mem_get_info()[0]``)
    per_item_bytes : int > 0  peak memory one item of the batch adds (measured)
    headroom : float in [0, 1)  share of `free_bytes` kept unused
    cap : int > 0

    Returns
    -------
    int
        Powers of two keep kernels on their tuned shapes; at least 1 (the caller runs one item
        at a time when even that does not fit, and torch reports the out-of-memory).

    Examples
    --------
    >>> choose_batch_size(80 * 2**30, 300 * 2**20)   # 80 GiB free, 300 MiB per 30 s clip
    128
    >>> choose_batch_size(4 * 2**30, 300 * 2**20)
    8
    """
    if per_item_bytes <= 0:
        raise ParameterError(f"per_item_bytes must be positive, got {per_item_bytes}.")
    if not 0.0 <= headroom < 1.0:
        raise ParameterError(f"headroom must be in [0, 1), got {headroom}.")
    fits = int(max(free_bytes, 0) * (1.0 - headroom)) // int(per_item_bytes)
    fits = max(1, min(int(cap), fits))
    return 1 << (fits.bit_length() - 1)


def measure_batch_size(run_one: Callable[[], Any], device: str, *, cap: int = MAX_AUTO_BATCH) -> int:
    """Batch size for `device`: on CUDA from the peak memory of one item and the free memory.

    `run_one` runs the model on one item (one window) of the real length. On the CPU the
    answer is :data:`CPU_BATCH` (memory is rarely the limit there and larger batches gain nothing).
    """
    import torch

    if torch.device(device).type != "cuda":
        return CPU_BATCH
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run_one()
    torch.cuda.synchronize(device)
    per_item = max(torch.cuda.max_memory_allocated(device) - base, 1)
    free, total = torch.cuda.mem_get_info(device)
    size = choose_batch_size(free, per_item, cap=cap)
    log.info("batch size %d on %s (%.0f MiB per item, %.1f of %.1f GiB free)", size, device,
             per_item / 2**20, free / 2**30, total / 2**30)
    return size


def to_device(x: np.ndarray, device: str):
    """A float32 tensor of `x` on `device`; through pinned memory, asynchronously, on CUDA."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def compile_model(model: Any, *, mode: str | None = None) -> Any:
    """``torch.compile(model)`` with static shapes (every batch of a run has one window length)."""
    import torch

    return torch.compile(model, mode=mode, dynamic=False)
