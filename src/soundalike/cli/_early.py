"""What ``soundalike run`` starts before the rest of the command line is imported.

The main job analyses tracks in worker processes (:mod:`soundalike.track_workers`) that fork from
a server importing torch and librosa once: about 3.5 s on two cores, the largest part of a small
library's time. Started here, from the raw arguments, those imports overlap this process's own
(Typer, Rich, the query engine, scikit-learn: about a second). Only the server starts here; the
command starts its workers as usual and finds it running. Anything unexpected does nothing: the
command then starts the server itself.
"""

from __future__ import annotations


__all__ = ["default_jobs", "start_for_command"]


def default_jobs() -> int:
    """``--jobs`` when not given: one worker per usable CPU (affinity, cgroup quota), as many as
    memory holds (:func:`soundalike._machine.default_jobs`)."""
    from .._machine import default_jobs as machine_jobs

    return machine_jobs()


def start_for_command(argv: list[str]) -> None:
    """Start the workers' forkserver when `argv` (without the program name) is a ``run`` that
    will use workers: more than one job (``--jobs``), the backends of ``--backend`` or the default."""
    try:
        _start(argv)
    except Exception:  # noqa: BLE001 - a head start must never break the command line
        pass


def _start(argv: list[str]) -> None:
    if not argv or argv[0] != "run" or any(a in ("-h", "--help") for a in argv):
        return
    names: list[str] = []
    jobs = default_jobs()
    args = iter(argv[1:])
    for a in args:
        key, eq, value = a.partition("=")
        if key in ("-b", "--backend"):
            names += (value if eq else next(args, "")).split(",")
        elif key in ("-j", "--jobs"):
            jobs = int(value if eq else next(args, "1"))
    if jobs <= 1:
        return
    from .._lifecycle import start_forkserver
    from ..backends.registry import DEFAULT_BACKENDS, worker_preload_modules

    start_forkserver(worker_preload_modules([n.strip() for n in names if n.strip()] or list(DEFAULT_BACKENDS)))
