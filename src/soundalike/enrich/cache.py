"""The enrichment tables (migration ``m003_enrich``): the only module of ``enrich`` that writes SQL.

- ``enrich_responses``: raw responses keyed by (source, request key), with status, fetch time,
  ETag / Last-Modified validators and a ``note`` ("fixture" when a test server said so).
  Each response is committed on its own, so a killed run keeps everything fetched before the
  kill and a rerun does not fetch it again.
- ``enrich_identity``: one row per library artist: MBID, where it came from, match score,
  disambiguation and the candidates that were considered.
- ``enrich_status``: the outcome of each source for each artist (ok / not_found / failed /
  skipped) with a message.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..store import Store
from .http import CachedResponse

__all__ = ["ResponseCache", "IdentityRow", "save_identity", "load_identities", "save_status", "load_status", "clear_source"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _missing_tables(exc: sqlite3.OperationalError) -> bool:
    # A database opened read-only that predates m003 has no enrichment tables: treat as empty.
    return "no such table" in str(exc)


class ResponseCache:
    """Responses of the enrichment services stored in the library database.

    Parameters
    ----------
    store : Store
        An open library database (read-only stores can be read, not written).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, source: str, key: str) -> CachedResponse | None:
        try:
            row = self.store.execute(
                "SELECT url, status, fetched_ts, etag, last_modified, body, note, fetched FROM enrich_responses"
                " WHERE source=? AND key=?",
                (source, key),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if _missing_tables(exc):
                return None
            raise
        if row is None:
            return None
        return CachedResponse(url=row[0], status=int(row[1]), fetched_ts=float(row[2]), etag=row[3],
                              last_modified=row[4], body=row[5], note=row[6], fetched=row[7])

    def put(self, source: str, key: str, url: str, *, status: int, fetched_ts: float, etag: str | None = None,
            last_modified: str | None = None, content_type: str | None = None, body: str | None = None,
            note: str | None = None) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO enrich_responses(source, key, url, status, fetched, fetched_ts, etag,"
                " last_modified, content_type, body, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (source, key, url, status, _iso(fetched_ts), fetched_ts, etag, last_modified, content_type, body, note),
            )

    def touch(self, source: str, key: str, fetched_ts: float) -> None:
        """A 304 Not Modified: the cached body is current as of `fetched_ts`."""
        with self.store.transaction() as db:
            db.execute("UPDATE enrich_responses SET fetched=?, fetched_ts=? WHERE source=? AND key=?",
                       (_iso(fetched_ts), fetched_ts, source, key))

    def count(self, source: str | None = None) -> int:
        try:
            if source is None:
                return int(self.store.execute("SELECT COUNT(*) FROM enrich_responses").fetchone()[0])
            return int(self.store.execute("SELECT COUNT(*) FROM enrich_responses WHERE source=?", (source,)).fetchone()[0])
        except sqlite3.OperationalError as exc:
            if _missing_tables(exc):
                return 0
            raise

    def fixture_count(self) -> int:
        """How many cached responses a test server marked as fixtures."""
        try:
            return int(self.store.execute("SELECT COUNT(*) FROM enrich_responses WHERE note='fixture'").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if _missing_tables(exc):
                return 0
            raise


@dataclass
class IdentityRow:
    """One artist's MusicBrainz identity as stored (see ``enrich.identity``)."""

    artist_id: int
    query_name: str
    status: str  # matched | ambiguous | not_found | failed
    origin: str  # library (file tag or manifest artist_mbid) | search
    mbid: str | None = None
    score: int | None = None
    matched_name: str | None = None
    disambiguation: str | None = None
    candidates: list[dict] = field(default_factory=list)
    reason: str | None = None
    updated: str = ""


def save_identity(store: Store, row: IdentityRow, *, now: float) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO enrich_identity(artist_id, query_name, status, origin, mbid, score, matched_name,"
            " disambiguation, candidates_json, reason, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (row.artist_id, row.query_name, row.status, row.origin, row.mbid, row.score, row.matched_name,
             row.disambiguation, json.dumps(row.candidates, ensure_ascii=False), row.reason, _iso(now)),
        )


def load_identities(store: Store) -> dict[int, IdentityRow]:
    try:
        rows = store.execute(
            "SELECT artist_id, query_name, status, origin, mbid, score, matched_name, disambiguation, candidates_json,"
            " reason, updated FROM enrich_identity ORDER BY artist_id"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if _missing_tables(exc):
            return {}
        raise
    return {int(r[0]): IdentityRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "[]"), r[9], r[10])
            for r in rows}


def save_status(store: Store, artist_id: int, source: str, status: str, message: str | None, *, now: float) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO enrich_status(artist_id, source, status, message, updated) VALUES (?,?,?,?,?)",
            (artist_id, source, status, message, _iso(now)),
        )


def load_status(store: Store) -> dict[tuple[int, str], tuple[str, str | None]]:
    """``{(artist_id, source): (status, message)}``."""
    try:
        rows = store.execute("SELECT artist_id, source, status, message FROM enrich_status").fetchall()
    except sqlite3.OperationalError as exc:
        if _missing_tables(exc):
            return {}
        raise
    return {(int(r[0]), r[1]): (r[2], r[3]) for r in rows}


def clear_source(store: Store, source: str) -> int:
    """Forget every cached response of `source` (e.g. after changing its base URL); returns the count."""
    with store.transaction() as db:
        cur = db.execute("DELETE FROM enrich_responses WHERE source=?", (source,))
        return int(cur.rowcount)
