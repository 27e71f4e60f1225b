"""How many analysis workers this machine runs, and how many threads each (``--jobs`` default).

Whole tracks are independent, so the main job scales by processes: one single-threaded worker
per usable core analyses more tracks per second than fewer workers with more threads each
(musicnn's small convolutions and the descriptors' DSP use a second thread poorly; measured in
``docs/scale.md``). "Usable" is what this process may run on: the CPU affinity mask
(``taskset``, container cpusets) and a cgroup CPU quota (``docker --cpus``), not the machine's
core count. Memory bounds the count too: each worker holds its own models and decoded windows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "default_jobs", "threads_per_worker", "WORKER_MEMORY_MB"]

#: memory a worker of the default main job may use (peak RSS measured ≈ 0.45 GB, with headroom)
WORKER_MEMORY_MB = 700


def _cgroup_quota() -> float | None:
    """CPUs allowed by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, None if unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, lowered by a cgroup quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def _available_memory_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs() -> int:
    """``--jobs`` when not given: one worker per usable CPU, as many as the available memory holds.

    Returns 1 (analysis in this process, no workers) on one CPU.
    """
    jobs = available_cpus()
    mem = _available_memory_mb()
    if mem is not None:
        jobs = min(jobs, max(1, int(mem // WORKER_MEMORY_MB)))
    return max(1, jobs)


def threads_per_worker(jobs: int) -> int:
    """Threads of each of `jobs` workers: the usable CPUs shared out (at least 1)."""
    return max(1, available_cpus() // max(1, jobs))
