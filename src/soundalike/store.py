"""The library store: one SQLite file (WAL, foreign keys, migrations).

This module, ``_migrations`` and ``_store_naming`` (artists and titles) are the only ones that
write SQL. Writes happen in explicit transactions (``with store.transaction():``) so a ``kill -9``
loses at most the batch in flight; WAL with ``synchronous=NORMAL`` keeps every commit.

Faults met in the field each become one :class:`StoreError` line, nothing committed is lost:
a full disk (``SQLITE_FULL``: the batch in flight is rolled back, a rerun resumes), a database
locked by another writer for longer than the busy timeout (``SOUNDALIKE_BUSY_TIMEOUT_S``, 30 s),
and a read-only file or folder (the service opens the store ``mode=ro``; where SQLite cannot
create the WAL's shared-memory file next to it, ``_store_readonly`` opens it ``immutable=1``
when its WAL is empty, or a private copy that keeps the WAL's commits, never a stale view).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import _store_naming
from ._lifecycle import remove_stale_temporaries
from ._migrations import apply_migrations
from ._store_readonly import connect_readonly
from .errors import (
    DimensionMismatchError,
    ParameterError,
    SchemaError,
    StoreBusyError,
    StoreError,
    StoreFullError,
    UnknownArtistError,
    UnknownTrackError,
)
from .library import artist_key
from .naming import NamingFacts, title_from_path

__all__ = ["Store", "Artist", "Track", "ModelInfo", "default_db_path", "open_store", "DEFAULT_BUSY_TIMEOUT_S"]

#: How long a writer waits for another writer's lock before giving up with one clear line.
DEFAULT_BUSY_TIMEOUT_S = 30.0


log = logging.getLogger(__name__)


def default_db_path() -> Path:
    """``$SOUNDALIKE_DB``, else ``library.db`` in the user's data directory."""
    env = os.environ.get("SOUNDALIKE_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("soundalike")) / "library.db"


@dataclass(frozen=True)
class Artist:
    artist_id: int
    name: str
    name_key: str
    mbid: str | None
    n_tracks: int = 0


@dataclass(frozen=True)
class Track:
    """``artist``/``title``: what every surface shows ("A feat. B"; the tag's or the file name's
    title); ``artist_name``: the artist of ``artist_id`` (similarity groups by it)."""

    track_id: str
    path: str
    artist_id: int
    artist: str
    title: str | None
    album: str | None
    duration_s: float | None
    external_id: str | None
    genres: tuple[str, ...]
    artist_name: str = ""


@dataclass(frozen=True)
class ModelInfo:
    model_key: str
    backend: str
    config: dict
    weights_sha256: str | None
    weights_kind: str
    dim: int
    n_layers: int


_TRACK_SELECT = ("SELECT t.track_id, t.path, t.artist_id, a.name, t.title, t.album, t.duration_s, t.external_id, t.genres,"
                 " {credit} FROM tracks t JOIN artists a ON a.artist_id=t.artist_id")


def _track(r: Sequence) -> Track:
    # one naming rule everywhere (CONTRACTS "Track title"): a stored track always has a title
    return Track(r[0], r[1], r[2], r[9] or r[3], r[4] or title_from_path(r[1]), *r[5:8],
                 tuple(g for g in (r[8] or "").split(";") if g), r[3])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """A soundalike library database.

    Parameters
    ----------
    path : path-like
        The SQLite file; created (with its folder) when missing unless ``readonly``.
    readonly : bool
        Open without creating or migrating (for the service and reports).
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False, busy_timeout_s: float | None = None) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self._copy_dir: Path | None = None
        self._lock = threading.RLock()
        if busy_timeout_s is None:
            try:
                busy_timeout_s = float(os.environ.get("SOUNDALIKE_BUSY_TIMEOUT_S", DEFAULT_BUSY_TIMEOUT_S))
            except ValueError:
                raise StoreError("SOUNDALIKE_BUSY_TIMEOUT_S must be a number of seconds, got "
                                 f"{os.environ['SOUNDALIKE_BUSY_TIMEOUT_S']!r}.") from None
        self.busy_timeout_s = busy_timeout_s
        if readonly and not self.path.exists():
            raise StoreError(f"Library database {self.path} does not exist; run `soundalike ingest` first.")
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"Cannot create the folder of {self.path}: {exc.strerror}.") from None
        remove_stale_temporaries(self.path)  # what a killed process left half-written
        try:
            self._db = self._connect(readonly)
            if readonly:
                self._check_schema()
            self.migrated: list[str] = [] if readonly else apply_migrations(self._db)  # upgrades done by this open
            self._track_select = _TRACK_SELECT.format(credit=_store_naming.credit_column(self._db))
        except sqlite3.DatabaseError as exc:
            fault = self._fault(exc)
            if fault is not None:
                raise fault from None
            raise StoreError(f"{self.path} is not a usable soundalike database ({exc}); pass another --db.") from None

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        timeout = max(0.0, self.busy_timeout_s)
        if not readonly:
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=timeout)
            db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journal mode (got {mode}).")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            return db
        db, self._copy_dir = connect_readonly(self.path, timeout)
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _fault(self, exc: BaseException) -> StoreError | None:
        """One clear line for a fault of the database file, or ``None`` for any other error."""
        text = str(exc).lower()
        if "is full" in text:
            return StoreFullError(
                f"{self.path}: the disk is full (SQLite: {exc}); the batch in flight was rolled back and everything "
                f"committed before it is kept. Free space on {self.path.parent} and rerun the same command to continue.")
        if "locked" in text or "busy" in text:
            return StoreBusyError(
                f"{self.path} is locked by another writer (waited {self.busy_timeout_s:g} s): another soundalike command "
                "(ingest, embed, run, a service rescan) is writing to it. Wait for it to finish or stop it, then rerun "
                "(SOUNDALIKE_BUSY_TIMEOUT_S sets the wait).")
        writable = os.access(self.path.parent, os.W_OK) and (not self.path.exists() or os.access(self.path, os.W_OK))
        if "readonly" in text or "read-only" in text or ("unable to open" in text and not writable):
            return StoreError(f"{self.path} cannot be written: the file or its folder is read-only ({exc}). "
                              "Give write access, or use a copy with --db.")
        if "disk i/o error" in text:
            return StoreError(f"{self.path}: writing failed (SQLite: {exc}; the disk may be full or failing). "
                              "What was committed before is kept; check the disk and rerun.")
        return None

    # --- plumbing --------------------------------------------------------------------------
    def _check_schema(self) -> None:
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "tracks" not in names or "migrations" not in names:
            raise SchemaError(f"{self.path} holds no soundalike library; run `soundalike ingest` with it first.")

    def close(self) -> None:
        self._db.close()
        if self._copy_dir is not None:  # the private copy of a read-only store with a WAL
            shutil.rmtree(self._copy_dir, ignore_errors=True)
            self._copy_dir = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on error).

        Raises
        ------
        StoreFullError, StoreBusyError, StoreError
            The disk is full, another writer held the lock past the busy timeout, or the file
            cannot be written; the transaction is rolled back, earlier commits are kept.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                fault = self._fault(exc)
                if fault is None:
                    raise
                raise fault from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite may already have rolled back (SQLITE_FULL)
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                fault = self._fault(exc) if isinstance(exc, sqlite3.OperationalError) else None
                if fault is None:
                    raise
                raise fault from None

    def execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        """Read-only helper for other modules' queries (writes go through methods here)."""
        with self._lock:
            return self._db.execute(sql, params)

    def integrity_check(self) -> str:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # --- runs and failures -----------------------------------------------------------------
    def start_run(self, argv: Sequence[str]) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO runs(started, argv) VALUES (?, ?)", (_now(), json.dumps(list(argv))))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished=? WHERE run_id=?", (_now(), run_id))

    def record_failure(self, run_id: int | None, path: str, kind: str, message: str, *, db: sqlite3.Connection | None = None) -> None:
        """Record a per-file failure (inside the caller's transaction when `db` is given).

        A run records one line per (path, kind): ``run`` sees a truncated file in ingest and embed.
        """
        sql = ("INSERT INTO failures SELECT ?, ?, ?, ? WHERE NOT EXISTS"
               " (SELECT 1 FROM failures WHERE run_id IS ? AND path=? AND kind=?)")
        params = (run_id, path, kind, message, run_id, path, kind)
        if db is None:
            with self.transaction() as tx:
                tx.execute(sql, params)
        else:
            db.execute(sql, params)

    def failures(self, run_id: int | None = None) -> list[tuple[str, str, str]]:
        """(path, kind, message) of the given run, or of the latest run with failures recorded."""
        if run_id is None:
            row = self.execute("SELECT MAX(run_id) FROM runs").fetchone()
            run_id = row[0]
        rows = self.execute("SELECT path, kind, message FROM failures WHERE run_id IS ? ORDER BY rowid", (run_id,))
        return [tuple(r) for r in rows]

    # --- artists and tracks ----------------------------------------------------------------
    def upsert_artist(self, name: str, *, mbid: str | None = None, db: sqlite3.Connection | None = None) -> int:
        """Return the id of the artist whose normalised name matches `name`, creating it."""
        return _store_naming.upsert_artist(db or self._db, name, mbid=mbid)

    def artist_rule(self) -> str:  # the library's --artist-from (auto until one is chosen)
        return _store_naming.artist_rule(self._db)

    def set_artist_rule(self, rule: str) -> int:
        """Choose the artist rule: a change re-derives artists from stored tags; how many tracks moved."""
        with self.transaction() as db:
            return _store_naming.set_artist_rule(db, rule)

    def artist_sources(self) -> dict[str, int]:  # tracks per artist rule (naming.ARTIST_SOURCES)
        return _store_naming.source_counts(self._db)

    def add_track(
        self,
        *,
        track_id: str,
        path: str,
        artist: str,
        title: str | None = None,
        album: str | None = None,
        duration_s: float | None = None,
        external_id: str | None = None,
        genres: Sequence[str] = (),
        artist_mbid: str | None = None,
        credit: str | None = None, artist_source: str | None = None, naming: NamingFacts | None = None,
        db: sqlite3.Connection | None = None,
    ) -> str:
        """Insert or update a track; returns ``"new"``, ``"known"`` or ``"moved"``.

        Identical bytes at another path are the same track: the new path is recorded and the
        metadata refreshed, nothing is re-analysed. With `naming` (the scan's facts) the track
        is named by the library's artist rule together with its folder's stored tracks.
        """
        conn = db or self._db
        if naming is not None:
            n = _store_naming.name_in_folder(conn, naming, track_id)
            artist_mbid = artist_mbid if artist_key(n.artist) == artist_key(artist) else None  # the scan's artist's
            artist, credit, artist_source, title = n.artist, n.credit, n.source, n.title
        artist_id = self.upsert_artist(artist, mbid=artist_mbid, db=conn)
        facts, genre_text = (naming.to_json() if naming is not None else None), (";".join(genres) if genres else None)
        row = conn.execute("SELECT path FROM tracks WHERE track_id=?", (track_id,)).fetchone()
        if row is None:
            # The bytes at this path changed (re-tagged, replaced): the old track is gone.
            conn.execute("DELETE FROM tracks WHERE path=? AND track_id<>?", (path, track_id))
            conn.execute(
                "INSERT INTO tracks(track_id, path, artist_id, title, duration_s, external_id, genres, album, added,"
                " artist_credit, artist_source, naming_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (track_id, path, artist_id, title, duration_s, external_id, genre_text, album, _now(), credit,
                 artist_source, facts),
            )
            status = "new"
        else:
            status = "known" if row[0] == path else "moved"
            conn.execute(
                "UPDATE tracks SET path=?, artist_id=?, title=?, external_id=?, genres=?, album=?,"
                " duration_s=COALESCE(?, duration_s), artist_credit=?, artist_source=?,"
                " naming_json=COALESCE(?, naming_json) WHERE track_id=?",
                (path, artist_id, title, external_id, genre_text, album, duration_s, credit, artist_source, facts,
                 track_id),
            )
        conn.execute("INSERT OR IGNORE INTO track_paths(track_id, path) VALUES (?, ?)", (track_id, path))
        return status

    def track_ids_by_path(self) -> dict[str, str]:
        return {p: t for t, p in self.execute("SELECT track_id, path FROM track_paths")}

    def has_track(self, track_id: str) -> bool:
        return self.execute("SELECT 1 FROM tracks WHERE track_id=?", (track_id,)).fetchone() is not None

    def artists(self) -> list[Artist]:
        rows = self.execute(
            "SELECT a.artist_id, a.name, a.name_key, a.mbid, COUNT(t.track_id) FROM artists a"
            " JOIN tracks t ON t.artist_id=a.artist_id GROUP BY a.artist_id ORDER BY a.name_key"
        )
        return [Artist(*r) for r in rows]

    def artist(self, artist_id: int) -> Artist:
        r = self.execute(
            "SELECT a.artist_id, a.name, a.name_key, a.mbid, COUNT(t.track_id) FROM artists a"
            " LEFT JOIN tracks t ON t.artist_id=a.artist_id WHERE a.artist_id=? GROUP BY a.artist_id",
            (artist_id,),
        ).fetchone()
        if r is None:
            raise UnknownArtistError(f"No artist with id {artist_id} in {self.path}.")
        return Artist(*r)

    def find_artist(self, name: str) -> Artist:
        """Look an artist up by name (normalised); the error lists close matches."""
        return _store_naming.find_artist(self.artists(), name, where=f" in {self.path}")

    def tracks(self, *, artist_id: int | None = None) -> list[Track]:
        sql = self._track_select
        params: tuple = ()
        if artist_id is not None:
            sql += " WHERE t.artist_id=?"
            params = (artist_id,)
        rows = self.execute(sql + " ORDER BY a.name_key, t.path", params)
        return [_track(r) for r in rows]

    def track(self, track_id: str) -> Track:
        r = self.execute(self._track_select + " WHERE t.track_id=?", (track_id,)).fetchone()
        if r is None:
            raise UnknownTrackError(f"No track with id {track_id!r} in {self.path}.")
        return _track(r)

    # --- models and embeddings -------------------------------------------------------------
    def register_model(
        self, *, model_key: str, backend: str, config: dict, weights_sha256: str | None,
        weights_kind: str, dim: int, n_layers: int = 1,
    ) -> str:
        with self.transaction() as db:
            row = db.execute("SELECT dim, n_layers FROM models WHERE model_key=?", (model_key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO models VALUES (?,?,?,?,?,?,?)",
                    (model_key, backend, json.dumps(config, sort_keys=True, default=str), weights_sha256, weights_kind, dim, n_layers),
                )
            elif (row[0], row[1]) != (dim, n_layers):
                raise DimensionMismatchError(
                    f"Model {backend!r} ({model_key}) is stored with {row[0]} dims x {row[1]} layers in {self.path}, "
                    f"but the backend now gives {dim} x {n_layers}; use a new --db or remove that model."
                )
        return model_key

    def models(self) -> list[ModelInfo]:
        # a companion output (musicnn's taggram, config "companion_of") sorts after its primary
        rows = self.execute("SELECT * FROM models ORDER BY backend, "
                            "json_extract(config_json, '$.companion_of') IS NOT NULL, model_key")
        return [ModelInfo(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def model(self, model_key: str) -> ModelInfo:
        for m in self.models():
            if m.model_key == model_key:
                return m
        raise ParameterError(f"No model {model_key!r} in {self.path}; run `soundalike embed` first.")

    def models_for_backend(self, backend: str) -> list[ModelInfo]:
        """Stored models of a backend, the one with the most embeddings first (companion outputs last)."""
        counts = dict(self.execute("SELECT model_key, COUNT(DISTINCT track_id) FROM embeddings GROUP BY model_key").fetchall())
        ms = [m for m in self.models() if m.backend == backend]
        return sorted(ms, key=lambda m: ("companion_of" in m.config, -counts.get(m.model_key, 0)))

    def embedded_track_ids(self, model_key: str) -> set[str]:
        return {r[0] for r in self.execute("SELECT DISTINCT track_id FROM embeddings WHERE model_key=?", (model_key,))}

    def put_embeddings(
        self, db: sqlite3.Connection, *, track_id: str, model_key: str, vectors: np.ndarray,
        starts_s: Sequence[float] | None = None, lengths_s: Sequence[float] | None = None,
    ) -> int:
        """Write one track's vectors ``(n_windows, n_layers, d)`` inside the caller's transaction."""
        v = np.asarray(vectors, dtype="<f4")
        if v.ndim != 3:
            raise ParameterError(f"vectors must be (n_windows, n_layers, d), got shape {v.shape}.")
        rows = [(track_id, model_key, w, layer, v[w, layer].tobytes()) for w in range(v.shape[0]) for layer in range(v.shape[1])]
        db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?)", rows)
        if starts_s is not None:
            lens = lengths_s if lengths_s is not None else [0.0] * len(starts_s)
            db.executemany(
                "INSERT OR REPLACE INTO windows VALUES (?,?,?,?,?)",
                [(track_id, model_key, i, float(s), float(n)) for i, (s, n) in enumerate(zip(starts_s, lens))],
            )
        return len(rows)

    def window_embeddings(self, model_key: str, *, layer: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every stored window vector of one model and layer.

        Returns
        -------
        track_ids : list of str [n_rows]
        windows : np.ndarray [shape=(n_rows,), int]
        X : np.ndarray [shape=(n_rows, dim), float32]
        """
        info = self.model(model_key)
        if layer is None:
            layer = int(info.config.get("default_layer", 0)) if isinstance(info.config, dict) else 0
        if not 0 <= layer < info.n_layers:
            raise ParameterError(f"layer {layer} is out of range for {info.backend}: it has layers 0..{info.n_layers - 1}.")
        rows = self.execute(
            "SELECT e.track_id, e.window, e.vector FROM embeddings e JOIN tracks t ON t.track_id=e.track_id"
            " WHERE e.model_key=? AND e.layer=? ORDER BY e.track_id, e.window",
            (model_key, layer),
        ).fetchall()
        if not rows:
            return [], np.zeros(0, int), np.zeros((0, info.dim), np.float32)
        buf = b"".join(r[2] for r in rows)
        X = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        if X.size != len(rows) * info.dim:
            raise DimensionMismatchError(
                f"Stored vectors of model {info.backend!r} ({model_key}) do not all have {info.dim} dims; "
                "the database is inconsistent: re-embed into a new --db."
            )
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=int), X.reshape(len(rows), info.dim)

    def track_embeddings(self, model_key: str, *, layer: int | None = None) -> tuple[list[str], np.ndarray]:
        """One vector per track: the mean of its window vectors. ``(track_ids, X (n_tracks, dim))``."""
        tids, _, X = self.window_embeddings(model_key, layer=layer)
        if not tids:
            return [], X
        uniq, inverse = np.unique(np.asarray(tids), return_inverse=True)
        sums = np.zeros((len(uniq), X.shape[1]), np.float64)
        np.add.at(sums, inverse, X)
        counts = np.bincount(inverse, minlength=len(uniq))[:, None]
        return list(uniq), (sums / counts).astype(np.float32)

    def record_timing(self, *, run_id: int | None, model_key: str, n_clips: int, audio_s: float, seconds: float,
                      cpu_s: float, peak_rss_mb: float) -> None:
        """Record what one embed run cost for one model (model work only, decoding excluded)."""
        with self.transaction() as db:
            db.execute("INSERT INTO embed_timings VALUES (?,?,?,?,?,?,?,?)",
                       (run_id, model_key, n_clips, audio_s, seconds, cpu_s, peak_rss_mb, _now()))

    def timing(self, model_key: str) -> dict | None:
        """Seconds per 30 s of audio (wall and CPU) over every recorded run of a model, and peak RSS."""
        row = self.execute(
            "SELECT SUM(n_clips), SUM(audio_s), SUM(seconds), SUM(cpu_s), MAX(peak_rss_mb) FROM embed_timings"
            " WHERE model_key=? AND audio_s > 0", (model_key,),
        ).fetchone()
        if not row or not row[0]:
            return None
        n, audio, wall, cpu, rss = row
        return {"n_clips": int(n), "seconds_per_30s_clip": 30.0 * wall / audio, "cpu_seconds_per_30s_clip": 30.0 * cpu / audio,
                "peak_rss_mb": float(rss), "measured": "model work in `soundalike embed` (decoding excluded)"}

    # --- saved calibrators (migration m113) ------------------------------------------------
    def _has_table(self, name: str) -> bool:
        return self.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def put_calibrator(self, key: tuple[str, int, str, str, str], *, fingerprint: str, meta: dict,
                       arrays: dict[str, np.ndarray]) -> None:
        """Save a calibrated state under ``(model_key, layer, level, calibration, profile)``."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO calibrators VALUES (?,?,?,?,?,?,?,?,?)",
                       (*key, fingerprint, json.dumps(meta), buf.getvalue(), _now()))

    def calibrator(self, key: tuple[str, int, str, str, str], fingerprint: str) -> tuple[dict, dict[str, np.ndarray]] | None:
        """The saved state for `key` when it was fitted on vectors with this `fingerprint`, else None."""
        if not self._has_table("calibrators"):
            return None
        row = self.execute("SELECT meta_json, arrays FROM calibrators WHERE model_key=? AND layer=? AND level=?"
                           " AND calibration=? AND profile=? AND fingerprint=?", (*key, fingerprint)).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row[1]), allow_pickle=False) as data:
            return json.loads(row[0]), {k: data[k] for k in data.files}

    def put_calibration_default(self, model_key: str, layer: int, calibration: str, *, fingerprint: str,
                                validation: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO calibration_defaults VALUES (?,?,?,?,?,?)",
                       (model_key, layer, calibration, fingerprint, json.dumps(validation), _now()))

    def calibration_default(self, model_key: str, layer: int) -> dict | None:
        """``{"calibration", "fingerprint", "validation", "decided"}`` chosen for a model and layer, or None."""
        if not self._has_table("calibration_defaults"):
            return None
        row = self.execute("SELECT calibration, fingerprint, validation_json, decided FROM calibration_defaults"
                           " WHERE model_key=? AND layer=?", (model_key, layer)).fetchone()
        if row is None:
            return None
        return {"calibration": row[0], "fingerprint": row[1], "validation": json.loads(row[2]), "decided": row[3]}

    # --- pruning (issue 15) ------------------------------------------------------------------
    def recorded_paths(self) -> dict[str, list[str]]:
        """Every path recorded per track id, the main ``tracks.path`` first."""
        out: dict[str, list[str]] = {t: [p] for t, p in self.execute("SELECT track_id, path FROM tracks")}
        for t, p in self.execute("SELECT track_id, path FROM track_paths ORDER BY track_id, path"):
            if t in out and p not in out[t]:
                out[t].append(p)
        return out

    def remove_tracks(self, track_ids: Sequence[str], *, stale_paths: Sequence[tuple[str, str]] = (),
                      moves: Sequence[tuple[str, str]] = ()) -> int:
        """Delete tracks with their vectors, windows and paths (one transaction); returns how many.

        ``stale_paths`` ``(track_id, path)`` are forgotten other paths of kept tracks; ``moves``
        ``(track_id, path)`` make a still-existing other path the track's main path.
        """
        with self.transaction() as db:
            for tid, path in moves:
                db.execute("UPDATE tracks SET path=? WHERE track_id=?", (path, tid))
            db.executemany("DELETE FROM track_paths WHERE track_id=? AND path=?", list(stale_paths))
            n = 0
            for tid in track_ids:
                # embeddings, windows and track_paths go by ON DELETE CASCADE
                n += db.execute("DELETE FROM tracks WHERE track_id=?", (tid,)).rowcount
            return n

    # --- summaries -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        q = {
            "tracks": "SELECT COUNT(*) FROM tracks",
            "artists": "SELECT COUNT(DISTINCT artist_id) FROM tracks",
            "models": "SELECT COUNT(*) FROM models",
            "embeddings": "SELECT COUNT(*) FROM embeddings",
            "failures": "SELECT COUNT(*) FROM failures",
            "runs": "SELECT COUNT(*) FROM runs",
        }
        return {k: int(self.execute(sql).fetchone()[0]) for k, sql in q.items()}


def open_store(path: str | os.PathLike | None = None, *, readonly: bool = False) -> Store:
    """Open `path` or the default database (``SOUNDALIKE_DB`` / user data directory)."""
    return Store(path if path is not None else default_db_path(), readonly=readonly)
