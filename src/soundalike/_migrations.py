"""Ordered schema migrations. Each is applied together with its ``migrations`` row in one
transaction (beets-style), so a crash never leaves a half-applied schema.

Other modules add migrations by appending to ``MIGRATIONS`` here (never reorder or edit an
applied one).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "apply_migrations", "SCHEMA_VERSION"]


def m001_initial(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE artists(
            artist_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            mbid TEXT
        );
        CREATE TABLE tracks(
            track_id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            artist_id INTEGER NOT NULL REFERENCES artists(artist_id),
            title TEXT,
            duration_s REAL,
            external_id TEXT,
            genres TEXT
        );
        CREATE INDEX tracks_artist ON tracks(artist_id);
        CREATE TABLE models(
            model_key TEXT PRIMARY KEY,
            backend TEXT NOT NULL,
            config_json TEXT NOT NULL,
            weights_sha256 TEXT,
            weights_kind TEXT CHECK (weights_kind IN ('real','random','none')),
            dim INTEGER NOT NULL,
            n_layers INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE embeddings(
            track_id TEXT NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
            model_key TEXT NOT NULL REFERENCES models(model_key),
            window INTEGER NOT NULL,
            layer INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (track_id, model_key, window, layer)
        );
        CREATE INDEX embeddings_model ON embeddings(model_key, layer);
        CREATE TABLE runs(
            run_id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            finished TEXT,
            argv TEXT
        );
        CREATE TABLE failures(
            run_id INTEGER REFERENCES runs(run_id),
            path TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX failures_run ON failures(run_id);
        """
    )


def m002_paths_albums(db: sqlite3.Connection) -> None:
    """Other paths of identical bytes, album names, and per-window timing of embeddings."""
    db.executescript(
        """
        CREATE TABLE track_paths(
            track_id TEXT NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            PRIMARY KEY (track_id, path)
        );
        ALTER TABLE tracks ADD COLUMN album TEXT;
        ALTER TABLE tracks ADD COLUMN added TEXT;
        CREATE TABLE windows(
            track_id TEXT NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
            model_key TEXT NOT NULL REFERENCES models(model_key),
            window INTEGER NOT NULL,
            start_s REAL NOT NULL,
            length_s REAL NOT NULL,
            PRIMARY KEY (track_id, model_key, window)
        );
        """
    )


def m003_enrich(db: sqlite3.Connection) -> None:
    """Enrichment cache (MusicBrainz, ListenBrainz, Last.fm): raw responses with their validators,
    artist identities (MBID, match score, candidates) and per-artist, per-source outcomes.

    Responses are keyed by source and the request relative to the source's base URL (secrets
    such as ``api_key`` removed), so a cache filled against one base URL serves another.
    """
    db.executescript(
        """
        CREATE TABLE enrich_responses(
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            url TEXT NOT NULL,
            status INTEGER NOT NULL,
            fetched TEXT NOT NULL,
            fetched_ts REAL NOT NULL,
            etag TEXT,
            last_modified TEXT,
            content_type TEXT,
            body TEXT,
            note TEXT,
            PRIMARY KEY (source, key)
        );
        CREATE TABLE enrich_identity(
            artist_id INTEGER PRIMARY KEY REFERENCES artists(artist_id) ON DELETE CASCADE,
            query_name TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('matched','ambiguous','not_found','failed')),
            origin TEXT NOT NULL,
            mbid TEXT,
            score INTEGER,
            matched_name TEXT,
            disambiguation TEXT,
            candidates_json TEXT NOT NULL DEFAULT '[]',
            reason TEXT,
            updated TEXT NOT NULL
        );
        CREATE TABLE enrich_status(
            artist_id INTEGER NOT NULL REFERENCES artists(artist_id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok','not_found','failed','skipped')),
            message TEXT,
            updated TEXT NOT NULL,
            PRIMARY KEY (artist_id, source)
        );
        """
    )


def m004_embed_timings(db: sqlite3.Connection) -> None:
    """Cost of each embed run per model: wall and CPU seconds for the audio analysed, peak RSS."""
    db.executescript(
        """
        CREATE TABLE embed_timings(
            run_id INTEGER REFERENCES runs(run_id),
            model_key TEXT NOT NULL REFERENCES models(model_key),
            n_clips INTEGER NOT NULL,
            audio_s REAL NOT NULL,
            seconds REAL NOT NULL,
            cpu_s REAL NOT NULL,
            peak_rss_mb REAL NOT NULL,
            recorded TEXT NOT NULL
        );
        """
    )


def m113_calibrators(db: sqlite3.Connection) -> None:
    """Saved calibrated states (JSON + ``.npz`` bytes, never pickled) and each model's chosen default."""
    db.executescript(
        """
        CREATE TABLE calibrators(
            model_key TEXT NOT NULL REFERENCES models(model_key) ON DELETE CASCADE,
            layer INTEGER NOT NULL,
            level TEXT NOT NULL CHECK (level IN ('artists','tracks')),
            calibration TEXT NOT NULL,
            profile TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            meta_json TEXT NOT NULL,
            arrays BLOB NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (model_key, layer, level, calibration, profile)
        );
        CREATE TABLE calibration_defaults(
            model_key TEXT NOT NULL REFERENCES models(model_key) ON DELETE CASCADE,
            layer INTEGER NOT NULL,
            calibration TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            validation_json TEXT NOT NULL,
            decided TEXT NOT NULL,
            PRIMARY KEY (model_key, layer)
        );
        """
    )


def m117_tracks_path_index(db: sqlite3.Connection) -> None:
    """Index tracks by path: ``add_track`` looks a path up for every file it stores, which
    without an index scans the whole table (quadratic ingest: 20,000 tracks took minutes)."""
    db.executescript("CREATE INDEX IF NOT EXISTS tracks_path ON tracks(path);")


def m124_track_naming(db: sqlite3.Connection) -> None:
    """Names from the tags people have (issue 24): each track's naming facts (tags, manifest,
    folder), its whole artist credit and the rule that gave its artist; the library's
    ``--artist-from`` rule. Existing tracks get their facts from their files' tags (headers
    only, no audio) and are named again (``_store_naming.backfill``)."""
    from ._store_naming import backfill

    db.executescript(
        """
        ALTER TABLE tracks ADD COLUMN artist_credit TEXT;
        ALTER TABLE tracks ADD COLUMN artist_source TEXT;
        ALTER TABLE tracks ADD COLUMN naming_json TEXT;
        CREATE TABLE library_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    backfill(db)


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("m001_initial", m001_initial),
    ("m002_paths_albums", m002_paths_albums),
    ("m003_enrich", m003_enrich),
    ("m004_embed_timings", m004_embed_timings),
    ("m113_calibrators", m113_calibrators),
    ("m117_tracks_path_index", m117_tracks_path_index),
    ("m124_track_naming", m124_track_naming),
]
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations; return their names.

    Raises ``SchemaError`` (via the caller) when the file was written by a newer soundalike.
    """
    db.execute("CREATE TABLE IF NOT EXISTS migrations(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    known = {name for name, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        from .errors import SchemaError

        raise SchemaError(
            f"The database was written by a newer soundalike (migrations {', '.join(sorted(unknown))}); upgrade soundalike."
        )
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        # executescript commits implicitly, so run the migration's statements one by one inside
        # an explicit transaction instead.
        db.execute("BEGIN IMMEDIATE")
        try:
            _run_in_transaction(db, fn)
            db.execute("INSERT INTO migrations(name, applied) VALUES (?, datetime('now'))", (name,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


class _NoScriptConnection:
    """Wraps a connection so a migration's ``executescript`` runs statement by statement
    (``executescript`` would COMMIT the open transaction)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def executescript(self, script: str) -> None:
        buf = ""
        for line in script.splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                self._db.execute(buf)
                buf = ""
        if buf.strip():
            self._db.execute(buf)

    def __getattr__(self, name: str):
        return getattr(self._db, name)


def _run_in_transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], None]) -> None:
    fn(_NoScriptConnection(db))  # type: ignore[arg-type]
