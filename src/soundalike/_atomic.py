"""Writing output files atomically: a temporary file in the same folder, then one rename.

A report or an export is either the complete new file or the old one (or none): never a
0-byte or half-written file, whatever stops the writer (a full disk, a kill). The temporary
name carries the writer's pid (``NAME.tmp<pid>``), so one a killed process left beside a store
is removed at the next open (``remove_stale_temporaries``). A write that fails for lack of
space or permission becomes one :class:`~soundalike.errors.SoundalikeError` line.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import SoundalikeError

__all__ = ["atomic_files", "write_files_atomically", "OutputWriteError"]


class OutputWriteError(SoundalikeError):
    """An output file (report, export) could not be written; nothing was replaced."""


def _reason(exc: OSError, target: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):  # Arrow: no errno
        return f"the disk is full ({exc.strerror}); free space on {target.parent} and rerun"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{target.parent} cannot be written ({exc.strerror}); choose another --out"
    return f"{exc.strerror or exc}".replace("\n", " ")


@contextmanager
def atomic_files(targets: Mapping[str, Path]) -> Iterator[dict[str, Path]]:
    """Temporary paths for `targets`, renamed over them together when the block succeeds.

    Yields ``{key: temporary path}``; the caller writes each. On any error every temporary is
    removed, no target is touched, and an ``OSError`` becomes one :class:`OutputWriteError` line.
    """
    tmps = {k: p.with_name(f"{p.name}.tmp{os.getpid()}") for k, p in targets.items()}
    try:
        try:
            yield tmps
            for k, tmp in tmps.items():
                with open(tmp, "rb+") as fh:  # on disk before the rename: no empty file after a crash
                    os.fsync(fh.fileno())
            for k, tmp in tmps.items():
                os.replace(tmp, targets[k])
        except OSError as exc:
            target = Path(exc.filename) if getattr(exc, "filename", None) else next(iter(targets.values()))
            names = ", ".join(p.name for p in targets.values())
            raise OutputWriteError(f"Cannot write {names} in {target.parent}: {_reason(exc, target)}. "
                                   "No file was replaced.") from None
    finally:
        for tmp in tmps.values():
            try:
                tmp.unlink()
            except OSError:
                pass


def write_files_atomically(contents: Mapping[Path, Callable[[Path], None] | str]) -> None:
    """Write each path from a string (UTF-8) or a ``writer(tmp_path)``; all renamed at the end."""
    targets = {str(i): Path(p) for i, p in enumerate(contents)}
    with atomic_files(targets) as tmps:
        for (i, _), body in zip(targets.items(), contents.values()):
            if isinstance(body, str):
                tmps[i].write_text(body, encoding="utf-8")
            else:
                body(tmps[i])
