"""``librosa.beat``, imported with its numba kernels cached on disk.

librosa 0.11 compiles the gufuncs of its beat tracker when ``librosa.beat`` is imported; one of
them (``__beat_local_score``) is declared ``cache=False``, so every new process spends about
1.5 s compiling it again (measured on the 2-core machine: the import takes 3.5 s, 2.0 s with the
cache). A cold ``soundalike run`` pays that once per worker start-up, which is a large share of
a small library's time. Importing the module through :func:`load` turns numba's on-disk cache on
for the gufuncs declared during that import; the compiled code is the same (numba keys its cache
on the source file, its modification time, the signature and the CPU).
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import ModuleType

__all__ = ["load"]


def load() -> ModuleType:
    """``librosa.beat`` (imported here with cached kernels unless it is imported already)."""
    if "librosa.beat" in sys.modules:
        return sys.modules["librosa.beat"]
    import numba

    original = numba.guvectorize

    @functools.wraps(original)
    def cached(*args, **kwargs):
        kwargs["cache"] = True
        return original(*args, **kwargs)

    numba.guvectorize = cached
    try:
        return importlib.import_module("librosa.beat")
    finally:
        numba.guvectorize = original


load()
