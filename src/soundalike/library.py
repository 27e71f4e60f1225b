"""Scan a music library: files, tags and manifests → track records. No audio decoding here.

Artist precedence (CONTRACTS.md): manifest > ``albumartist`` tag > ``artist`` tag > the folder
layout ``Artist/…/file`` (the first folder below the scanned root). A track is identified by
the sha256 of its bytes, so a moved or renamed file is recognised and not analysed again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .audio import AUDIO_EXTENSIONS, UNSUPPORTED_MUSIC_EXTENSIONS
from .errors import ManifestError, ParameterError

__all__ = [
    "TrackRecord",
    "ManifestRow",
    "ScanResult",
    "artist_key",
    "file_sha256",
    "read_manifest",
    "read_tags",
    "scan",
]

_FEAT = re.compile(r"\s*(?:[\(\[]\s*)?\b(?:feat\.?|ft\.|featuring)\s+.*$", re.IGNORECASE)
_WS = re.compile(r"\s+")
MANIFEST_KEYS = ("path", "artist", "title", "genre", "artist_mbid", "track_id", "album")


def artist_key(name: str) -> str:
    """Normalise an artist name for matching: NFKC, casefold, collapse spaces, drop "feat." credits.

    Examples
    --------
    >>> artist_key("  Daft   Punk feat. Pharrell ")
    'daft punk'
    >>> artist_key("ＡＢＢＡ")
    'abba'
    """
    s = unicodedata.normalize("NFKC", name)
    s = _FEAT.sub("", s)
    s = _WS.sub(" ", s).strip().casefold()
    return s


def file_sha256(path: str | os.PathLike) -> str:
    """Lowercase hex sha256 of the file's bytes (the track id)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class TrackRecord:
    """One audio file as found by a scan (before decoding).

    ``artist_source`` says where the artist came from: manifest, albumartist, artist, folder.
    """

    path: Path
    artist: str
    artist_source: str
    title: str | None = None
    album: str | None = None
    genres: list[str] = field(default_factory=list)
    artist_mbid: str | None = None
    external_id: str | None = None


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


def read_tags(path: str | os.PathLike) -> dict[str, str | list[str]]:
    """Read the tags soundalike uses with mutagen (easy interface); empty dict when none.

    Keys: ``albumartist``, ``artist``, ``title``, ``album``, ``genre`` (list),
    ``musicbrainz_artistid``, ``musicbrainz_albumartistid``.
    """
    import mutagen

    try:
        f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many types on odd files; tags are optional
        return {}
    if f is None or not getattr(f, "tags", None):
        return {}
    out: dict[str, str | list[str]] = {}
    for key in ("albumartist", "artist", "title", "album", "musicbrainz_artistid", "musicbrainz_albumartistid"):
        try:
            vals = f.tags.get(key)
        except (KeyError, ValueError):
            vals = None
        if vals:
            out[key] = str(vals[0]).strip()
    try:
        genres = f.tags.get("genre")
    except (KeyError, ValueError):
        genres = None
    if genres:
        out["genre"] = [g for v in genres for g in _split_genres(str(v).replace("/", ";"))]
    return out


def _from_tags(path: Path, root: Path) -> TrackRecord:
    tags = read_tags(path)
    if tags.get("albumartist"):
        artist, source = str(tags["albumartist"]), "albumartist"
        mbid = tags.get("musicbrainz_albumartistid") or tags.get("musicbrainz_artistid")
    elif tags.get("artist"):
        artist, source = str(tags["artist"]), "artist"
        mbid = tags.get("musicbrainz_artistid")
    else:
        rel = path.relative_to(root)
        artist = rel.parts[0] if len(rel.parts) > 1 else root.name
        source, mbid = "folder", None
    return TrackRecord(
        path=path,
        artist=artist,
        artist_source=source,
        title=str(tags["title"]) if tags.get("title") else None,
        album=str(tags["album"]) if tags.get("album") else None,
        genres=list(tags.get("genre") or []),
        artist_mbid=str(mbid) if mbid else None,
    )


def scan(root: str | os.PathLike, *, manifest: str | os.PathLike | None = None) -> ScanResult:
    """Find the tracks of a library.

    Parameters
    ----------
    root : path-like
        A folder (scanned recursively for ``AUDIO_EXTENSIONS``) or a single audio file.
    manifest : path-like, optional
        CSV/YAML manifest; when given, only the files it lists are ingested and its fields
        override tags and folders.

    Returns
    -------
    ScanResult
    """
    rootp = Path(root).expanduser().resolve()
    failures: list[tuple[str, str, str]] = []
    if manifest is not None:
        tracks = []
        for row in read_manifest(manifest):
            tags = read_tags(row.path) if row.path.is_file() else {}
            tracks.append(
                TrackRecord(
                    path=row.path,
                    artist=row.artist,
                    artist_source="manifest",
                    title=row.title or (str(tags["title"]) if tags.get("title") else None),
                    album=row.album or (str(tags["album"]) if tags.get("album") else None),
                    genres=row.genres or list(tags.get("genre") or []),
                    artist_mbid=row.artist_mbid
                    or (str(tags["musicbrainz_artistid"]) if tags.get("musicbrainz_artistid") else None),
                    external_id=row.track_id,
                )
            )
        return ScanResult(tracks, failures)
    if not rootp.exists():
        raise ParameterError(f"Library path {rootp} does not exist; pass a folder of audio files.")
    if rootp.is_file():
        return ScanResult([_from_tags(rootp, rootp.parent)], failures)
    tracks = []
    for dirpath, dirnames, filenames in os.walk(rootp, onerror=lambda e: failures.append((e.filename, "unreadable", str(e.strerror)))):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            ext = p.suffix.lower()
            if ext in AUDIO_EXTENSIONS:
                tracks.append(_from_tags(p, rootp))
            elif ext in UNSUPPORTED_MUSIC_EXTENSIONS:
                failures.append((str(p), "unsupported",
                                 f"'{ext}' holds no audio signal soundalike can analyse; render it to WAV/FLAC first"))
    return ScanResult(tracks, failures)
