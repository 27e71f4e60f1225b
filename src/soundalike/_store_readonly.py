"""Opening a store on read-only storage without losing the commits in its WAL.

SQLite reads a WAL database only through its shared-memory index (``-shm``), which it must be
able to create beside the file. On read-only storage (a CD, a read-only mount, a snapshot) it
cannot, and ``immutable=1`` is the only way in, but ``immutable`` ignores the ``-wal`` file: a
store copied with commits still in its WAL would be served without them (an old artist name,
vectors that were since removed), silently. So:

* no ``-wal`` file, or an empty one: the database file is complete; open it ``immutable=1``;
* a ``-wal`` holding frames: copy the database and its WAL into a private folder in the temp
  directory (``0700``, named after this process so a killed one's copy is removed at the next
  start, like an upload folder) and open the copy, which SQLite recovers with its WAL; the copy
  is removed when the store closes;
* no room for that copy: refuse with one line that says how to checkpoint the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote

from ._lifecycle import upload_dir_prefix
from .errors import StoreError

__all__ = ["connect_readonly", "open_on_readonly_storage"]

log = logging.getLogger(__name__)


def _checkpoint_hint(path: Path) -> str:
    return (f"checkpoint it where it is writable (`sqlite3 {path} 'PRAGMA wal_checkpoint(TRUNCATE);'`, or any "
            f"soundalike command with --db {path}), then copy {path.name} alone")


def open_on_readonly_storage(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection to `path`, whose folder SQLite cannot write; and the copy's folder.

    Returns
    -------
    (connection, folder) : the folder holds the private copy (remove it after closing), or is
        ``None`` when the file itself was opened.

    Raises
    ------
    StoreError
        When the WAL holds commits and the temp directory has no room for a copy.
    """
    wal = path.with_name(path.name + "-wal")
    try:
        wal_bytes = wal.stat().st_size
    except FileNotFoundError:
        wal_bytes = 0
    if wal_bytes == 0:  # everything is in the database file
        uri = "file:" + quote(str(path.resolve())) + "?immutable=1"
        log.info("%s: read-only storage; opening it immutable (no WAL to read)", path)
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False), None
    need = path.stat().st_size + wal_bytes
    tmp_root = Path(tempfile.gettempdir())
    try:
        free = shutil.disk_usage(tmp_root).free
    except OSError:
        free = 0
    if free < need + (16 << 20):
        raise StoreError(
            f"{path} is on read-only storage and its {wal.name} holds {wal_bytes} bytes of commits not yet in the "
            f"database file; without them it would be served stale, and {tmp_root} has no room for a "
            f"{need / 1e6:.0f} MB copy: {_checkpoint_hint(path)}.")
    folder = Path(tempfile.mkdtemp(prefix=upload_dir_prefix() + "store-"))
    try:
        copy = folder / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, folder / wal.name)  # not the -shm: SQLite rebuilds it from the WAL
        db = sqlite3.connect(str(copy), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA query_only=ON")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # recovers the WAL now
    except (OSError, sqlite3.DatabaseError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise StoreError(f"{path} is on read-only storage and its {wal.name} holds commits; copying it to {folder} "
                         f"failed ({exc}): {_checkpoint_hint(path)}.") from None
    log.warning("%s is on read-only storage and its %s holds commits: serving a private copy with them (%.0f MB "
                "in %s); to avoid the copy, %s.", path, wal.name, need / 1e6, folder, _checkpoint_hint(path))
    return db, folder


def connect_readonly(path: Path, timeout: float) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection to the store at `path` (``mode=ro``), or, on read-only storage
    where that cannot open it, :func:`open_on_readonly_storage`'s; the second item is the private
    copy's folder, if one was made."""
    uri = "file:" + quote(str(path.resolve()))
    try:
        db = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=timeout)
        db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db, None
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc) and "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        # A WAL database on read-only storage: nobody can be writing it; its WAL's commits are
        # kept (immutable=1 alone would ignore them).
        return open_on_readonly_storage(path)
