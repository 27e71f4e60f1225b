"""Scan a music library: files, tags and manifests → track records. No audio decoding here.

Names follow ``naming.py`` (CONTRACTS "Artist precedence", "Track title"): manifest > the
track's own artist in an album of several artists > ``albumartist`` > ``artist`` > the folder
layout ``Artist/…/file``; titles from tags, else the manifest, else the file name. A track is
identified by the sha256 of its bytes, so a moved or renamed file is recognised and not
analysed again.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .audio import AUDIO_EXTENSIONS, UNSUPPORTED_MUSIC_EXTENSIONS
from .errors import ManifestError, ParameterError
from .naming import NamingFacts, artist_key, derive_names, folder_name, reference_key

__all__ = [
    "TrackRecord",
    "ManifestRow",
    "ScanResult",
    "artist_key",
    "file_sha256",
    "read_manifest",
    "read_tags",
    "reference_key",
    "scan",
]

MANIFEST_KEYS = ("path", "artist", "title", "genre", "artist_mbid", "track_id", "album")


def file_sha256(path: str | os.PathLike) -> str:
    """Lowercase hex sha256 of the file's bytes (the track id)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class TrackRecord:
    """One audio file as found by a scan (before decoding).

    ``artist`` groups the track (similarity), ``credit`` is the whole artist credit shown with
    it; ``artist_source`` says which rule gave the artist (``naming.ARTIST_SOURCES``);
    ``naming`` keeps the facts so the store can re-derive names without reading the file.
    """

    path: Path
    artist: str
    artist_source: str
    title: str | None = None
    album: str | None = None
    genres: list[str] = field(default_factory=list)
    artist_mbid: str | None = None
    external_id: str | None = None
    credit: str | None = None
    naming: NamingFacts | None = None


@dataclass
class ManifestRow:
    path: Path
    artist: str
    line: int
    title: str | None = None
    album: str | None = None
    genres: list[str] = field(default_factory=list)
    artist_mbid: str | None = None
    track_id: str | None = None


@dataclass
class ScanResult:
    """Records found, plus paths that could not be scanned ``(path, kind, message)``."""

    tracks: list[TrackRecord]
    failures: list[tuple[str, str, str]]


def _split_genres(value: str | None) -> list[str]:
    if not value:
        return []
    return [g.strip() for g in str(value).split(";") if g.strip()]


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Read a CSV or YAML manifest.

    Required keys ``path`` and ``artist``; optional ``title``, ``genre`` (``;``-separated),
    ``artist_mbid``, ``track_id``, ``album``; other keys are ignored. Relative paths resolve
    against the manifest's folder.

    Raises
    ------
    ManifestError
        Naming the file, line and field, and what to do.
    """
    mpath = Path(path)
    if not mpath.is_file():
        raise ManifestError(f"Manifest {mpath} does not exist; pass the path of a CSV or YAML file.")
    base = mpath.resolve().parent
    suffix = mpath.suffix.lower()
    records: list[tuple[int, dict]] = []
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(mpath.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ManifestError(f"Manifest {mpath}{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
        if not isinstance(data, list):
            raise ManifestError(
                f"Manifest {mpath}: expected a YAML list of mappings with keys path and artist, got {type(data).__name__}."
            )
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise ManifestError(f"Manifest {mpath} item {i}: expected a mapping with keys path and artist.")
            records.append((i, item))
        unit = "item"
    elif suffix in (".csv", ".tsv", ".txt"):
        try:
            text = mpath.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"Manifest {mpath}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8.") from None
        delim = "\t" if suffix == ".tsv" else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delim)
        header = reader.fieldnames or []
        missing = [k for k in ("path", "artist") if k not in header]
        if missing:
            raise ManifestError(
                f"Manifest {mpath} line 1: missing column(s) {', '.join(missing)}; the header must include "
                f"path and artist (found: {', '.join(header) or 'nothing'})."
            )
        for row in reader:
            if None in row:  # more cells than header columns
                raise ManifestError(f"Manifest {mpath} line {reader.line_num}: more cells than header columns.")
            records.append((reader.line_num, row))
        unit = "line"
    else:
        raise ManifestError(f"Manifest {mpath}: unknown format '{suffix}'; use .csv, .tsv or .yaml.")

    rows: list[ManifestRow] = []
    for line, rec in records:
        for key in ("path", "artist"):
            val = rec.get(key)
            if val is None or not str(val).strip():
                raise ManifestError(f"Manifest {mpath} {unit} {line}: field '{key}' is empty; every row needs path and artist.")
        p = Path(str(rec["path"]).strip()).expanduser()
        if not p.is_absolute():
            p = base / p
        rows.append(
            ManifestRow(
                path=p,
                artist=str(rec["artist"]).strip(),
                line=line,
                title=(str(rec["title"]).strip() or None) if rec.get("title") else None,
                album=(str(rec["album"]).strip() or None) if rec.get("album") else None,
                genres=_split_genres(rec.get("genre")),
                artist_mbid=(str(rec["artist_mbid"]).strip() or None) if rec.get("artist_mbid") else None,
                track_id=(str(rec["track_id"]).strip() or None) if rec.get("track_id") else None,
            )
        )
    return rows


def _register_easy_keys() -> None:
    """Teach mutagen's easy ID3 interface the ARTISTS tag Picard and beets write (TXXX:ARTISTS)."""
    from mutagen.easyid3 import EasyID3

    if "artists" not in EasyID3.valid_keys:
        EasyID3.RegisterTXXXKey("artists", "ARTISTS")


def _values(tags, key: str) -> list[str]:
    try:
        vals = tags.get(key)
    except (KeyError, ValueError):
        return []
    return [str(v).strip() for v in vals or [] if str(v).strip()]


def read_tags(path: str | os.PathLike) -> dict[str, str | list[str]]:
    """Read the tags soundalike uses with mutagen (easy interface); empty dict when none.

    Keys: ``albumartist``, ``artist`` (the whole credit; several values joined by ``"; "``),
    ``artists`` (list: a multi-valued ARTISTS tag, or the values of a multi-valued artist tag),
    ``title``, ``album``, ``compilation`` (``"1"``), ``genre`` (list), ``musicbrainz_artistid``,
    ``musicbrainz_albumartistid``. Only the header is read, never the audio.
    """
    import mutagen

    _register_easy_keys()
    try:
        f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many types on odd files; tags are optional
        return {}
    if f is None or not getattr(f, "tags", None):
        return {}
    out: dict[str, str | list[str]] = {}
    for key in ("albumartist", "title", "album", "musicbrainz_artistid", "musicbrainz_albumartistid"):
        vals = _values(f.tags, key)
        if vals:
            out[key] = vals[0]
    artist_vals = _values(f.tags, "artist")
    if artist_vals:
        out["artist"] = "; ".join(artist_vals)
    artists = _values(f.tags, "artists") or (artist_vals if len(artist_vals) > 1 else [])
    if artists:
        out["artists"] = artists
    if any(v.strip().lower() in ("1", "true", "yes") for v in _values(f.tags, "compilation")):
        out["compilation"] = "1"
    genres = _values(f.tags, "genre")
    if genres:
        out["genre"] = [g for v in genres for g in _split_genres(v.replace("/", ";"))]
    return out


def _facts(path: Path, tags: dict, *, folder_artist: str | None = None, row: "ManifestRow | None" = None) -> NamingFacts:
    def one(key: str) -> str | None:
        return str(tags[key]) if tags.get(key) else None

    return NamingFacts(
        path=str(path), title=one("title"), artist=one("artist"), artists=tuple(tags.get("artists") or ()),
        albumartist=one("albumartist"), album=one("album"), compilation=bool(tags.get("compilation")),
        manifest_artist=row.artist if row else None, manifest_title=row.title if row else None,
        folder_artist=folder_artist)


def _records(items: list[tuple[NamingFacts, dict, "ManifestRow | None"]], rule: str) -> list[TrackRecord]:
    """Name the scanned files together (albums are judged whole) and build their records."""
    names = derive_names([f for f, _, _ in items], rule)
    out = []
    for (f, tags, row), n in zip(items, names):
        if n.source == "manifest":
            mbid = row.artist_mbid if row else None
            mbid = mbid or (str(tags["musicbrainz_artistid"]) if tags.get("musicbrainz_artistid") else None)
        elif n.source == "albumartist":
            mbid = tags.get("musicbrainz_albumartistid") or tags.get("musicbrainz_artistid")
        elif n.source in ("artist", "mixed-album"):
            mbid = tags.get("musicbrainz_artistid")
        else:
            mbid = None
        out.append(TrackRecord(
            path=Path(f.path), artist=n.artist, artist_source=n.source, title=n.title,
            album=(row.album if row and row.album else None) or f.album,
            genres=(row.genres if row and row.genres else None) or list(tags.get("genre") or []),
            artist_mbid=str(mbid) if mbid else None, external_id=row.track_id if row else None,
            credit=n.credit, naming=f))
    return out


def _folder_artist(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:  # a file outside the library root: its own folder names it
        return folder_name(path.parent.name)
    return folder_name(rel.parts[0] if len(rel.parts) > 1 else root.name)


def scan(root: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
         artist_from: str = "auto", paths: Sequence[str | os.PathLike] | None = None) -> ScanResult:
    """Find the tracks of a library and name them (``naming.derive_names``).

    Parameters
    ----------
    root : path-like
        A folder (scanned recursively for ``AUDIO_EXTENSIONS``) or a single audio file.
    manifest : path-like, optional
        CSV/YAML manifest; when given, only the files it lists are ingested and its artist,
        album and genres override tags and folders (titles: tags first, CONTRACTS).
    artist_from : {"auto", "track", "album"}
        The artist rule (CONTRACTS "Artist precedence").
    paths : sequence of path-like, optional
        Only these files under `root` (a watcher's batch), named as a whole scan names them;
        the folder is not walked.

    Returns
    -------
    ScanResult
    """
    rootp = Path(root).expanduser().resolve()
    failures: list[tuple[str, str, str]] = []
    if manifest is not None:
        items = []
        for row in read_manifest(manifest):
            tags = read_tags(row.path) if row.path.is_file() else {}
            items.append((_facts(row.path, tags, folder_artist=folder_name(row.path.parent.name), row=row), tags, row))
        return ScanResult(_records(items, artist_from), failures)
    if not rootp.exists():
        raise ParameterError(f"Library path {rootp} does not exist; pass a folder of audio files.")
    if rootp.is_file():
        tags = read_tags(rootp)
        return ScanResult(_records([(_facts(rootp, tags, folder_artist=folder_name(rootp.parent.name)), tags, None)], artist_from),
                          failures)
    items = []
    if paths is not None:
        for p in sorted({Path(q).expanduser().resolve() for q in paths}):
            if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file():
                tags = read_tags(p)
                items.append((_facts(p, tags, folder_artist=_folder_artist(p, rootp)), tags, None))
        return ScanResult(_records(items, artist_from), failures)
    for dirpath, dirnames, filenames in os.walk(rootp, onerror=lambda e: failures.append((e.filename, "unreadable", str(e.strerror)))):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            ext = p.suffix.lower()
            if ext in AUDIO_EXTENSIONS:
                tags = read_tags(p)
                items.append((_facts(p, tags, folder_artist=_folder_artist(p, rootp)), tags, None))
            elif ext in UNSUPPORTED_MUSIC_EXTENSIONS:
                failures.append((str(p), "unsupported",
                                 f"'{ext}' holds no audio signal soundalike can analyse; render it to WAV/FLAC first"))
    return ScanResult(_records(items, artist_from), failures)
