"""The store's side of naming: artists and titles kept in step with ``naming.py``.

With ``store.py`` and ``_migrations.py`` the only module that writes SQL. Every function takes
the caller's connection (inside its transaction). A track's naming facts live in
``tracks.naming_json``, so a change of rule re-derives names without reading a file or
decoding audio; artists are upserted by ``name_key``, so an artist whose name is unchanged
keeps its id (Subsonic clients and enrichment identities refer to it).
"""

from __future__ import annotations

import difflib
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence

from .errors import ParameterError, UnknownArtistError
from .naming import Naming, NamingFacts, artist_key, check_artist_rule, derive_names, folder_name, primary_artist

__all__ = ["upsert_artist", "artist_rule", "set_artist_rule", "rederive", "name_in_folder", "source_counts",
           "backfill", "find_artist"]

log = logging.getLogger(__name__)
_RULE_KEY = "artist_from"


def upsert_artist(db: sqlite3.Connection, name: str, *, mbid: str | None = None) -> int:
    """The id of the artist whose normalised name matches `name`, created when new."""
    key = artist_key(name)
    if not key:
        raise ParameterError(f"Artist name {name!r} is empty after normalisation; give a real name.")
    row = db.execute("SELECT artist_id, mbid FROM artists WHERE name_key=?", (key,)).fetchone()
    if row:
        if mbid and mbid != row[1]:  # a newer pin (manifest / tags) wins
            db.execute("UPDATE artists SET mbid=? WHERE artist_id=?", (mbid, row[0]))
        return int(row[0])
    cur = db.execute("INSERT INTO artists(name, name_key, mbid) VALUES (?, ?, ?)", (name.strip(), key, mbid))
    return int(cur.lastrowid)


def find_artist(artists: Sequence, name: str, *, where: str = ""):
    """The artist of `artists` whose ``name_key`` matches `name`; the error lists close names."""
    key = artist_key(name)
    for a in artists:
        if a.name_key == key:
            return a
    keys = {a.name_key: a.name for a in artists}
    close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.5)
    close += [a.name_key for a in artists if key and key in a.name_key and a.name_key not in close][:3]
    names = [keys[k] for k in close]
    hint = f" Did you mean: {', '.join(names)}?" if names else " List the artists with `soundalike tracks`."
    raise UnknownArtistError(f"Unknown artist {name!r}{where}.{hint}", suggestions=names)


def _has_settings(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='library_settings'").fetchone() is not None


def artist_rule(db: sqlite3.Connection) -> str:
    """The library's ``--artist-from`` rule (``auto`` until one is chosen)."""
    if not _has_settings(db):
        return "auto"
    row = db.execute("SELECT value FROM library_settings WHERE key=?", (_RULE_KEY,)).fetchone()
    return row[0] if row else "auto"


def set_artist_rule(db: sqlite3.Connection, rule: str) -> int:
    """Make `rule` the library's rule; re-derive every artist when it changes.

    Returns how many tracks changed artist (0 when the rule was already in force).
    """
    check_artist_rule(rule)
    if artist_rule(db) == rule:
        return 0
    db.execute("INSERT OR REPLACE INTO library_settings(key, value) VALUES (?, ?)", (_RULE_KEY, rule))
    return rederive(db, rule)


def _apply(db: sqlite3.Connection, rows: Iterable[tuple], names: Iterable[Naming]) -> int:
    """Write the names that changed; return how many tracks changed artist."""
    moved = 0
    for (track_id, _path, _facts, artist_id, credit, source, title), n in zip(rows, names):
        new_id = upsert_artist(db, n.artist)
        if (new_id, n.credit, n.source, n.title) != (artist_id, credit, source, title):
            db.execute("UPDATE tracks SET artist_id=?, artist_credit=?, artist_source=?, title=? WHERE track_id=?",
                       (new_id, n.credit, n.source, n.title, track_id))
            moved += new_id != artist_id
    return moved


_ROWS = "SELECT track_id, path, naming_json, artist_id, artist_credit, artist_source, title FROM tracks"


def rederive(db: sqlite3.Connection, rule: str | None = None) -> int:
    """Name every track that has stored facts again by `rule` (the library's when None).

    Returns how many tracks changed artist.
    """
    rule = rule or artist_rule(db)
    rows = db.execute(_ROWS + " WHERE naming_json IS NOT NULL ORDER BY path").fetchall()
    names = derive_names([NamingFacts.from_json(r[1], r[2]) for r in rows], rule)
    moved = _apply(db, rows, names)
    log.info("artists re-derived by rule %r: %d of %d tracks changed artist", rule, moved, len(rows))
    return moved


def name_in_folder(db: sqlite3.Connection, facts: NamingFacts, track_id: str) -> Naming:
    """Name a track being stored together with the stored tracks of its folder.

    The folder's other tracks are renamed when the newcomer changes their album's verdict (a
    second voice makes a compilation); the newcomer's own naming is returned.
    """
    if not (facts.album and facts.album.strip()):
        return derive_names([facts], artist_rule(db))[0]  # no album: its name is its own
    folder = os.path.dirname(facts.path)
    prefix = folder.rstrip("/\\") + os.sep
    # the same folder (a range of the path index) and album: a handful of rows, not the library
    rows = [r for r in db.execute(_ROWS + " WHERE path >= ? AND path < ? AND track_id <> ? AND naming_json IS NOT NULL"
                                  " AND album = ? COLLATE NOCASE",
                                  (prefix, prefix[:-1] + chr(ord(os.sep) + 1), track_id, facts.album)).fetchall()
            if os.path.dirname(r[1]) == folder]
    names = derive_names([NamingFacts.from_json(r[1], r[2]) for r in rows] + [facts], artist_rule(db))
    _apply(db, rows, names[:-1])
    return names[-1]


def credit_column(db: sqlite3.Connection) -> str:
    """The SQL of a track's credit: a read-only store of an older schema has none yet."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(tracks)")}
    return "t.artist_credit" if "artist_credit" in cols else "NULL"


def source_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many tracks took each artist rule (``naming.ARTIST_SOURCES``)."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(tracks)")}
    if "artist_source" not in cols:
        return {}
    return {str(s or "other"): int(n) for s, n in db.execute(
        "SELECT artist_source, COUNT(*) FROM tracks GROUP BY artist_source ORDER BY COUNT(*) DESC, artist_source")}


def _rekey_artists(db: sqlite3.Connection) -> None:
    """Artists under today's ``artist_key``: "A feat. B" stored as a name becomes "A", a folder's
    ``a_b`` is "a b"; two rows that now share a key become one (the older id, its tracks)."""
    rows = db.execute("SELECT artist_id, name, name_key FROM artists ORDER BY artist_id").fetchall()
    target: dict[str, tuple[int, str]] = {}
    merged: list[tuple[int, int]] = []
    for artist_id, name, _key in rows:
        new_name = folder_name(primary_artist(name))
        key = artist_key(new_name)
        if key in target:
            merged.append((artist_id, target[key][0]))
        else:
            target[key] = (artist_id, new_name)
    for dup, keep in merged:
        db.execute("UPDATE tracks SET artist_id=? WHERE artist_id=?", (keep, dup))
        db.execute("DELETE FROM artists WHERE artist_id=?", (dup,))  # its enrichment rows go by cascade
    # two steps, so no UNIQUE clash while keys move between rows
    db.execute("UPDATE artists SET name_key=char(1) || artist_id")
    db.executemany("UPDATE artists SET name=?, name_key=? WHERE artist_id=?",
                   [(n, k, i) for k, (i, n) in target.items()])
    if merged:
        log.warning("artists merged under one name: %s", ", ".join(f"{d} -> {k}" for d, k in merged))


def backfill(db: sqlite3.Connection) -> None:
    """Give the tracks of a store written before naming facts were kept their facts and names.

    Tags are read again (headers only, no audio) from files that still exist. The stored
    artist is taken as the manifest's where the tags do not explain it (the old rule was
    manifest > albumartist > artist > folder), and as the folder's where the file has no artist
    tag. Tracks whose file is gone keep their artist (source ``kept``). Then every track is
    named by the ``auto`` rule; credits such as "A feat. B" stored as an artist's name become
    "A" (same ``name_key``, same id).
    """
    from .library import read_tags  # the store layer may read tags; never the audio

    rows = db.execute("SELECT t.track_id, t.path, a.name, t.title FROM tracks t JOIN artists a USING (artist_id)").fetchall()
    if not rows:
        return
    n_read = 0
    for track_id, path, name, title in rows:
        if not os.path.isfile(path):
            db.execute("UPDATE tracks SET artist_source='kept' WHERE track_id=?", (track_id,))
            continue
        tags = read_tags(path)
        n_read += 1
        by_tags = tags.get("albumartist") or tags.get("artist")
        from_tags = bool(by_tags) and artist_key(str(by_tags)) == artist_key(name)
        facts = NamingFacts(
            path=path, title=tags.get("title") or None, artist=tags.get("artist") or None,
            artists=tuple(tags.get("artists") or ()), albumartist=tags.get("albumartist") or None,
            album=tags.get("album") or None, compilation=bool(tags.get("compilation")),
            manifest_artist=None if from_tags or not by_tags else name,
            manifest_title=title if title and title != tags.get("title") else None,
            folder_artist=folder_name(name) if not by_tags else None)
        db.execute("UPDATE tracks SET naming_json=? WHERE track_id=?", (facts.to_json(), track_id))
    _rekey_artists(db)
    moved = rederive(db, "auto")
    log.warning("store upgraded to naming rules: tags re-read from %d of %d files (no audio decoded); "
                "%d tracks changed artist", n_read, len(rows), moved)
