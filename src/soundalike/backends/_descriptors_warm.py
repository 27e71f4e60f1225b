"""Warm the descriptors' one-off costs in the workers' forkserver (a preload module).

The first clip a process analyses pays for loading numba kernels from their cache, building
filter banks and FFT plans (about 0.5 s); measured once here, every worker forked afterwards
starts with them. One BLAS thread, so the forkserver starts no thread pool a fork could break.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from . import _descriptors_dsp

with threadpool_limits(1):
    _descriptors_dsp.measure(np.random.default_rng(0).uniform(-0.3, 0.3, 6 * _descriptors_dsp.SR).astype(np.float32))
