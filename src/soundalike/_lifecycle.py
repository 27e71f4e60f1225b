"""Nothing left behind: worker processes die with their parent, stale temporaries are removed.

How children die with their parent (Linux; elsewhere the pool works as before)
------------------------------------------------------------------------------
A ``kill -9`` of a soundalike process gives it no chance to stop its decode pool. Python's
forkserver pool then strands three kinds of process, each keeping the next alive: the workers
(blocked on their call queue, whose write end they hold themselves), the forkserver (every
worker holds its "alive" pipe) and the resource tracker (every worker holds its pipe). So:

* the **forkserver** imports this module as a preload module (``set_forkserver_preload``); on
  import there it asks the kernel for ``SIGKILL`` when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), exits at once if the parent is already gone, and registers the
  same request to run in every child right after ``fork`` (a worker's start-up, before it runs
  any initializer, takes seconds on a loaded machine: it must not be a gap);
* every **worker** also runs :func:`_init_worker`: a thread blocked on a ``pidfd`` of the
  process that created the pool exits the worker the moment that process is gone (this covers a
  pool created by a thread that ends before the pool does, since the kernel's parent-death
  signal follows the creating thread);
* the **resource tracker** needs nothing: it exits (and unlinks leaked semaphores) when the last
  holder of its pipe, i.e. the last worker, is gone.

A local Ray cluster (``embed --ray`` without an address) is Ray's own tree: its GCS and raylet
die with the driver, but its dashboard and runtime-env agents do not; :class:`DescendantReaper`
records the tree once it is up and a small watchdog process kills what is left if the driver dies.

Temporaries
-----------
Files written through a temporary name carry the writer's pid (``*.tmp<pid>``, upload folders
``soundalike-query-<pid>-*``); :func:`remove_stale_temporaries` deletes those whose writer is no
longer alive, and runs whenever a store is opened.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

__all__ = ["process_pool", "add_forkserver_preload", "start_forkserver", "set_parent_death_signal", "exit_when_gone", "pid_alive", "remove_stale_temporaries",
           "upload_dir_prefix", "DescendantReaper"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_PARENT_ENV = "SOUNDALIKE_POOL_OWNER_PID"
_TMP_SUFFIX = re.compile(r"\.tmp(\d+)$")
_UPLOAD_PREFIX = "soundalike-query-"


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread) exits.

    Returns ``False`` where that is not available (not Linux, no libc prctl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_when_gone(pid: int, *, code: int = 1) -> threading.Thread | None:
    """Start a daemon thread that ends this process (``os._exit``) as soon as `pid` exits.

    Uses a pidfd (Linux >= 5.3: no polling, no pid-reuse race); elsewhere polls once a second.
    """

    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            select.select([fd], [], [])
        else:
            import time

            while pid_alive(pid):
                time.sleep(1.0)
        os._exit(code)

    t = threading.Thread(target=watch, name=f"soundalike-exit-with-{pid}", daemon=True)
    t.start()
    return t


def _init_worker(owner: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """Pool worker start: die with the forkserver (our parent) and with the pool's owner."""
    set_parent_death_signal()
    if not pid_alive(owner):
        os._exit(1)
    exit_when_gone(owner)
    if initializer is not None:
        initializer(*initargs)


def start_forkserver(preload: list[str] = ()) -> None:
    """Start this process's forkserver now, importing `preload` there, so that the pools created
    later fork from a warm server (its imports overlap whatever this process does meanwhile).

    No effect where the forkserver already runs (its preload list is fixed at its start).
    """
    from multiprocessing import forkserver

    os.environ[_PARENT_ENV] = str(os.getpid())
    add_forkserver_preload(__name__)
    for module in preload:
        add_forkserver_preload(module)
    forkserver.ensure_running()


def add_forkserver_preload(module: str) -> None:
    """Have the forkserver import `module` (before the process's first pool starts; later, no effect)."""
    from multiprocessing import forkserver

    # Not "__main__" (multiprocessing's default): for ``python -m soundalike`` that is the whole
    # CLI (a second of imports on the workers' critical path) and no worker function lives there;
    # a child still imports the main module itself when it starts, as spawn requires.
    current = [m for m in getattr(forkserver._forkserver, "_preload_modules", None) or [] if m != "__main__"]
    if module not in current:
        forkserver.set_forkserver_preload([*current, module])


def process_pool(max_workers: int, *, initializer: Callable[..., Any] | None = None,
                 initargs: tuple = ()) -> ProcessPoolExecutor:
    """A forkserver ``ProcessPoolExecutor`` whose processes all die with the calling process.

    forkserver: children do not inherit torch's thread pools from a parent that loaded a model.

    Parameters
    ----------
    max_workers : int > 0
    initializer, initargs
        Run in each worker after the lifetime hooks are installed.
    """
    os.environ[_PARENT_ENV] = str(os.getpid())  # read by the forkserver this process starts
    add_forkserver_preload(__name__)
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=get_context("forkserver"),
                               initializer=_init_worker, initargs=(os.getpid(), initializer, initargs))


def _in_forkserver() -> bool:
    fs = sys.modules.get("multiprocessing.forkserver")
    return fs is not None and sys.argv[:1] == ["-c"] and getattr(fs._forkserver, "_forkserver_pid", 0) is None \
        and os.environ.get(_PARENT_ENV) == str(os.getppid())


def _child_of_forkserver() -> None:
    # Right after the fork, before the child imports anything: its start-up can take seconds.
    parent = os.getppid()
    set_parent_death_signal()
    if os.getppid() != parent:
        os._exit(1)


if _in_forkserver():  # imported as the forkserver's preload module
    set_parent_death_signal()
    if os.getppid() != int(os.environ[_PARENT_ENV]):
        os._exit(1)
    os.register_at_fork(after_in_child=_child_of_forkserver)


# --- temporaries -------------------------------------------------------------------------
def upload_dir_prefix() -> str:
    """Prefix of a private upload folder (``tempfile.mkdtemp(prefix=...)``), naming this process."""
    return f"{_UPLOAD_PREFIX}{os.getpid()}-"


def remove_stale_temporaries(db_path: str | os.PathLike | None = None) -> list[Path]:
    """Delete temporaries whose writing process is gone; return what was removed.

    Looks at ``*.tmp<pid>`` files beside `db_path` and in its ``.indexes`` folder (atomic
    writes of saved indexes) and at ``soundalike-query-<pid>-*`` upload folders in the temp dir.
    Errors (a read-only folder) are ignored: cleaning is best effort and never blocks a start.
    """
    removed: list[Path] = []
    folders: list[tuple[Path, str]] = [(Path(tempfile.gettempdir()), "upload")]
    if db_path is not None:
        p = Path(db_path)
        folders += [(p.parent, "tmp"), (p.with_name(p.name + ".indexes"), "tmp")]
    for folder, kind in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            pid = None
            m = _TMP_SUFFIX.search(e.name)
            if kind == "tmp" and m:
                pid = int(m.group(1))
            elif kind == "upload" and e.name.startswith(_UPLOAD_PREFIX):
                head = e.name[len(_UPLOAD_PREFIX):].split("-", 1)[0]
                pid = int(head) if head.isdigit() else None
            if pid is None or pid == os.getpid() or pid_alive(pid):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
                removed.append(Path(e.path))
            except OSError:
                continue
    if removed:
        log.info("removed %d temporary file(s) left by stopped processes: %s", len(removed),
                 ", ".join(str(r) for r in removed[:5]))
    return removed


# --- processes we start but do not parent directly (a local Ray cluster) -------------------
_REAPER = r"""
import os, signal, sys
pids = {}
for line in sys.stdin:
    line = line.strip()
    if line == "done":
        sys.exit(0)
    pid, start = line.split()
    pids[int(pid)] = start
for pid, start in pids.items():  # our parent is gone: stop what it left, if it is still the same process
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[19] != start:
                continue
        os.kill(pid, signal.SIGKILL)
    except (OSError, IndexError):
        pass
"""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class DescendantReaper:
    """A watchdog process that kills this process's current descendants if this process dies.

    For process trees we start but whose members are not all our children and set no
    parent-death signal of their own (a local Ray cluster: its agents outlive a killed driver).
    :meth:`watch` records the descendants alive now (pid and start time, so a reused pid is never
    hit); the watchdog holds the read end of a pipe only this process writes, and when that pipe
    closes without ``done`` (this process died) it kills the recorded processes. :meth:`close`
    (normal exit) tells it ``done``.
    """

    def __init__(self) -> None:
        import subprocess

        self._proc = None
        if not sys.platform.startswith("linux"):
            return
        self._proc = subprocess.Popen([sys.executable, "-c", _REAPER], stdin=subprocess.PIPE, text=True,
                                      start_new_session=True, stdout=subprocess.DEVNULL)

    def watch(self) -> int:
        """Record every current descendant (except the watchdog); returns how many."""
        if self._proc is None or self._proc.stdin is None:
            return 0
        n = 0
        for pid in _descendants(os.getpid()):
            if pid == self._proc.pid:
                continue
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    start = fh.read().rsplit(")", 1)[1].split()[19]
            except (OSError, IndexError):
                continue
            self._proc.stdin.write(f"{pid} {start}\n")
            n += 1
        self._proc.stdin.flush()
        return n

    def close(self) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write("done\n")
            self._proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self._proc.wait()
        self._proc = None
