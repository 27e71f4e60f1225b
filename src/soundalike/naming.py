"""Track titles and artists from the tags people really have (CONTRACTS "Artist precedence",
"Track title"). One rule, used by the scan, the store's re-derivation and every surface.

No I/O here: the scan (``library.py``) reads tags into :class:`NamingFacts`, the store keeps
them (``tracks.naming_json``) so a change of rule re-derives artists without reading a file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .errors import ParameterError

__all__ = [
    "ARTIST_RULES",
    "ARTIST_SOURCES",
    "Naming",
    "NamingFacts",
    "artist_key",
    "check_artist_rule",
    "derive_names",
    "folder_name",
    "primary_artist",
    "reference_key",
    "title_from_path",
]

#: ``--artist-from`` choices: ``auto`` (CONTRACTS precedence), ``track`` (the track's own
#: artist tag first), ``album`` (the album-artist tag first, soundalike's rule before 0.x)
ARTIST_RULES = ("auto", "track", "album")
#: where a track's artist came from, as ``status`` counts them
#: (``kept``: the file was gone when a store was upgraded; ``other``: stored without tags, API)
ARTIST_SOURCES = ("manifest", "mixed-album", "albumartist", "artist", "folder", "kept", "other")

_FEAT = re.compile(r"\s*(?:[\(\[]\s*)?\b(?:feat\.?|ft\.?|featuring)\s+.*$", re.IGNORECASE)
_WS = re.compile(r"\s+")
# Album-artist values that name no artist: the album holds several (MusicBrainz, iTunes, beets).
_VARIOUS = frozenset({"various artists", "various", "va", "v.a.", "v/a", "verschiedene interpreten",
                      "artistes divers", "varios artistas", "artisti vari"})
# Leading track / disc numbers and their separator: "03 - ", "1-03 ", "03. ", "03_", "(03) ".
_TRACKNO = re.compile(r"^\s*[\(\[]?(?:\d{1,2}\s*[-.]\s*)?\d{1,3}[\)\]]?(?:\s*[-._:)]+\s*|\s+)(?=\S)(?!\d+[-.]\d)")
_SEPARATOR = re.compile(r"^\s*(?:[-_.:]+\s*|\s+)(?=\S)")
_REF_SPLIT = re.compile(r"\s+[-\u2013\u2014]\s+")


def artist_key(name: str) -> str:
    """Normalise an artist name for matching: NFKC, casefold, ``_`` as a space, collapse spaces,
    drop "feat." credits.

    The store's ``artists.name_key``: ``&``, ``,`` and ``/`` are kept (AC/DC is one artist);
    ``johann_sebastian_bach`` (a folder's name) is the same artist as ``Johann Sebastian Bach``.

    Examples
    --------
    >>> artist_key("  Daft   Punk feat. Pharrell ")
    'daft punk'
    >>> artist_key("ＡＢＢＡ")
    'abba'
    """
    s = unicodedata.normalize("NFKC", name).replace("_", " ")
    s = _FEAT.sub("", s)
    return _WS.sub(" ", s).strip().casefold()


def primary_artist(credit: str, artists: Sequence[str] = ()) -> str:
    """The artist a credit is about: the first ARTISTS value, else the part before ``feat.``.

    ``&``, ``,`` and ``/`` never split a name (bands are called that).

    Examples
    --------
    >>> primary_artist("Daft Punk feat. Pharrell Williams")
    'Daft Punk'
    >>> primary_artist("Simon & Garfunkel")
    'Simon & Garfunkel'
    >>> primary_artist("A and B", ["A", "B"])
    'A'
    """
    for value in artists:
        if value and value.strip():
            return _WS.sub(" ", value).strip()
    head = _FEAT.sub("", unicodedata.normalize("NFKC", credit or ""))
    head = _WS.sub(" ", head).strip()
    return head or _WS.sub(" ", credit or "").strip()


def folder_name(name: str) -> str:
    """A folder's name as an artist: ``johann_sebastian_bach`` → ``johann sebastian bach``."""
    name = unicodedata.normalize("NFC", name).strip()
    return _WS.sub(" ", name.replace("_", " ")).strip() if " " not in name and "_" in name else name


def _strip_name(stem: str, artist: str | None) -> str:
    """The file stem less its track number, an ``Artist - `` prefix and separators."""
    s = _TRACKNO.sub("", unicodedata.normalize("NFC", stem).strip(), count=1)
    s = re.sub(r"^[-_.:]+\s+(?=\S)", "", s)  # "03 - 2-4-6-8 Motorway": the number went, not its dash
    if artist:
        head, rest = s[: len(artist)], s[len(artist):]
        if head.casefold() == artist.casefold() and _SEPARATOR.match(rest):
            # "03 - Artist - Title" or "Artist - 03 - Title"
            s = _TRACKNO.sub("", _SEPARATOR.sub("", rest, count=1), count=1)
    return s


def title_from_path(path: str | os.PathLike, *, artist: str | None = None) -> str:
    """A track title from its file name: no extension, track/disc numbers or separators.

    A leading ``Artist - `` (or ``artist__``, as the folder names it) is dropped too; a name
    that is only a number stays as it is.

    Examples
    --------
    >>> title_from_path("Askyel/Pilot/03 Eureka.ogg")
    'Eureka'
    >>> title_from_path("x/1-03 - Intro.flac")
    'Intro'
    >>> title_from_path("askyel/askyel__dvaered_theme.ogg", artist="askyel")
    'dvaered theme'
    >>> title_from_path("x/1979.mp3")
    '1979'
    """
    name = os.path.basename(os.fspath(path))
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    # file systems without spaces: "03_dvaered_theme", "askyel__eureka"
    if " " not in stem and "_" in stem:
        spaced = re.sub(r"_+", lambda m: " - " if len(m.group()) > 1 else " ", stem)
        s = _strip_name(spaced, artist.replace("_", " ") if artist else None)
    else:
        s = _strip_name(stem, artist)
    s = _WS.sub(" ", s).strip()
    return s or stem


@functools.lru_cache(maxsize=65536)
def reference_key(text: str) -> str:
    """The key of an ``"Artist - Title"`` reference: what matching ignores is gone.

    NFKC, casefold, no accents, punctuation or symbols (``_`` and dashes part words), no
    leading track number in the title part, single spaces. Two references name the same track
    when their keys are equal once spaces are dropped too (a file name's ``bwv101_7`` is the
    tag's ``bwv101.7``), so an index of ``reference_key(f"{artist} - {title}").replace(" ", "")``
    answers a lookup in one step.

    Examples
    --------
    >>> reference_key("Askyel - 03 Eureka")
    'askyel eureka'
    >>> reference_key("askyel — EUREKA!")
    'askyel eureka'
    >>> reference_key("AC/DC - T.N.T.")
    'acdc tnt'
    >>> reference_key("Sigur Rós - Hoppípolla")
    'sigur ros hoppipolla'
    """
    s = unicodedata.normalize("NFKD", str(text)).casefold()
    s = unicodedata.normalize("NFC", "".join(ch for ch in s if unicodedata.category(ch) != "Mn"))  # accents
    parts = _REF_SPLIT.split(s.strip())
    if len(parts) > 1:  # a track number belongs to the title, never to the artist ("2 Unlimited")
        parts[1:] = [_TRACKNO.sub("", p, count=1) for p in parts[1:]]
    out = []
    for p in parts:
        # "_" and dashes part words (file names: Agnus_10); other punctuation and symbols go (AC/DC)
        kept = "".join(" " if unicodedata.category(ch) in ("Pc", "Pd") else
                       "" if unicodedata.category(ch)[0] in "PS" else ch for ch in p)
        out.append(_WS.sub(" ", kept).strip())
    return " ".join(p for p in out if p)


@dataclass(frozen=True)
class NamingFacts:
    """What naming a track may use: its tags, its manifest row and its place in the folders.

    ``artists`` holds a multi-valued ARTISTS tag (or the values of a multi-valued artist tag);
    ``folder_artist`` is the first folder below the scanned root (the root's name for a file
    directly in it).
    """

    path: str
    title: str | None = None
    artist: str | None = None
    artists: tuple[str, ...] = ()
    albumartist: str | None = None
    album: str | None = None
    compilation: bool = False
    manifest_artist: str | None = None
    manifest_title: str | None = None
    folder_artist: str | None = None

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if v not in (None, (), [], False) and k != "path"}
        return json.dumps(d, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, path: str, text: str | None) -> "NamingFacts":
        d = json.loads(text) if text else {}
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "path"}
        if "artists" in known:
            known["artists"] = tuple(known["artists"])
        return cls(path=path, **known)


@dataclass(frozen=True)
class Naming:
    """A track's names: ``artist`` groups it (similarity), ``credit`` and ``title`` are shown."""

    artist: str
    credit: str
    title: str
    source: str


def check_artist_rule(rule: str) -> str:
    if rule not in ARTIST_RULES:
        raise ParameterError(f"--artist-from must be one of {', '.join(ARTIST_RULES)}, got {rule!r}.")
    return rule


def _album_group(f: NamingFacts) -> tuple[str, str] | None:
    # no album tag, no album: loose files in one folder are not a compilation
    return (os.path.dirname(f.path), artist_key(f.album)) if f.album and f.album.strip() else None


def _track_credit(f: NamingFacts) -> str | None:
    if f.artist and f.artist.strip():
        return _WS.sub(" ", f.artist).strip()
    if f.artists:
        return "; ".join(a.strip() for a in f.artists if a.strip()) or None
    return None


def derive_names(facts: Sequence[NamingFacts], rule: str = "auto") -> list[Naming]:
    """Name every track of `facts` by `rule` (CONTRACTS "Artist precedence", "Track title").

    Tracks are judged with the others of their album (same folder and album tag): in ``auto``,
    an album whose tracks name two or more primary artists, that is flagged a compilation, or
    whose album artist is "Various Artists", gives each track its own artist.

    Parameters
    ----------
    facts : sequence of NamingFacts
        Every track that may share an album with another (a whole scan, or one folder).
    rule : {"auto", "track", "album"}

    Returns
    -------
    list of Naming, in the order of `facts`

    Examples
    --------
    >>> ost = [NamingFacts(f"/m/OST/{i}.ogg", artist=a, albumartist="Game Project", album="OST")
    ...        for i, a in enumerate(["Kaufman", "Westlund"])]
    >>> [n.artist for n in derive_names(ost)]
    ['Kaufman', 'Westlund']
    >>> [n.artist for n in derive_names(ost, "album")]
    ['Game Project', 'Game Project']
    """
    check_artist_rule(rule)
    voices: dict[tuple[str, str] | None, set[str]] = {}
    for f in facts:
        credit, group = _track_credit(f), _album_group(f)
        if credit and group is not None:
            voices.setdefault(group, set()).add(artist_key(primary_artist(credit, f.artists)))
    out = []
    for f in facts:
        credit = _track_credit(f)
        own = primary_artist(credit, f.artists) if credit else None
        album_artist = _WS.sub(" ", f.albumartist).strip() if f.albumartist and f.albumartist.strip() else None
        various = album_artist is not None and artist_key(album_artist) in _VARIOUS
        mixed = f.compilation or various or len(voices.get(_album_group(f), ())) > 1
        if f.manifest_artist:
            artist, source = primary_artist(f.manifest_artist), "manifest"
            credit = f.manifest_artist if not credit or artist_key(credit) != artist_key(artist) else credit
        else:
            order = {"auto": ["mixed-album", "albumartist", "artist"], "track": ["artist", "albumartist"],
                     "album": ["albumartist", "artist"]}[rule]
            artist = source = None
            for step in order:
                if step == "mixed-album" and mixed and own:
                    artist, source = own, "mixed-album"
                elif step == "albumartist" and album_artist and not (rule == "auto" and various and own):
                    artist, source = primary_artist(album_artist), "albumartist"
                elif step == "artist" and own:
                    artist, source = own, "artist"
                if artist:
                    break
            if not artist:
                artist, source = (f.folder_artist or "Unknown Artist"), "folder"
            # the whole credit is shown when it is about this artist ("A feat. B" under "A")
            if not credit or artist_key(primary_artist(credit, f.artists)) != artist_key(artist):
                credit = artist
        title = (f.title or "").strip() or (f.manifest_title or "").strip() or title_from_path(
            f.path, artist=f.folder_artist)
        out.append(Naming(artist=artist, credit=credit, title=title, source=source))
    return out
