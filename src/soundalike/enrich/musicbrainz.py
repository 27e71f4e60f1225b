"""MusicBrainz web service v2 (JSON): artist search (with paging) and artist lookup with tags,
genres and artist-artist relationships.

Shapes (``fmt=json``; https://musicbrainz.org/doc/MusicBrainz_API):

- search ``GET /ws/2/artist?query=...&limit=&offset=`` →
  ``{"created", "count", "offset", "artists": [{"id", "name", "sort-name", "score",
  "disambiguation"?, "type"?, "country"?, "aliases"?: [{"name", ...}], ...}]}``
- lookup ``GET /ws/2/artist/<mbid>?inc=tags+genres+artist-rels`` →
  ``{"id", "name", "disambiguation", "tags": [{"name", "count"}], "genres": [{"id", "name",
  "count", "disambiguation"}], "relations": [{"type", "type-id", "direction", "target-type",
  "attributes", "begin", "end", "ended", "artist": {"id", "name", ...}}]}``
- errors: ``{"error": "Not Found", "help": ...}`` (404), ``{"error": "Invalid mbid."}`` (400);
  rate limiting answers 503 (sometimes 429).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..library import artist_key
from .http import HttpClient, Response

__all__ = [
    "SOURCE", "LOOKUP_INC", "RELATION_WEIGHTS", "ArtistInfo", "Candidate", "is_mbid", "search_request", "search",
    "lookup_request", "lookup", "parse_candidates", "parse_lookup",
]

SOURCE = "musicbrainz"
LOOKUP_INC = "tags+genres+artist-rels"

# How strongly a relationship links two artists' sound (a collaboration graph, not a family tree).
RELATION_WEIGHTS = {
    "member of band": 1.0,
    "collaboration": 1.0,
    "is person": 1.0,
    "subgroup": 0.8,
    "supporting musician": 0.6,
    "vocal supporting musician": 0.6,
    "instrumental supporting musician": 0.6,
    "founder": 0.6,
    "conductor position": 0.5,
    "tribute": 0.5,
    "teacher": 0.4,
}
DEFAULT_RELATION_WEIGHT = 0.3

_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_mbid(value: str | None) -> bool:
    """True for a canonical lowercase MusicBrainz id (a UUID)."""
    if not value:
        return False
    try:
        return bool(_MBID.match(str(uuid.UUID(value))))
    except ValueError:
        return False


@dataclass
class Candidate:
    """One search result: id, name, MusicBrainz score (0-100), disambiguation and aliases."""

    mbid: str
    name: str
    score: int
    disambiguation: str = ""
    type: str | None = None
    country: str | None = None
    aliases: list[str] = field(default_factory=list)

    def names_match(self, name: str) -> bool:
        key = artist_key(name)
        return artist_key(self.name) == key or any(artist_key(a) == key for a in self.aliases)

    def as_json(self) -> dict:
        return {"mbid": self.mbid, "name": self.name, "score": self.score, "disambiguation": self.disambiguation,
                "type": self.type, "country": self.country}


@dataclass
class ArtistInfo:
    """What a lookup gives: tag and genre vote counts and artist-artist relations.

    ``relations``: ``(kind, direction, target_mbid, target_name)``.
    """

    mbid: str
    name: str
    disambiguation: str = ""
    tags: dict[str, int] = field(default_factory=dict)
    genres: dict[str, int] = field(default_factory=dict)
    relations: list[tuple[str, str, str, str]] = field(default_factory=list)


def _phrase(name: str) -> str:
    # Inside a Lucene phrase only the quote and the backslash need escaping.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_request(name: str, *, limit: int = 10, offset: int = 0) -> tuple[str, dict[str, Any]]:
    """Path and query of an artist search page."""
    return "/artist", {"query": f"artist:{_phrase(name)}", "limit": limit, "offset": offset, "fmt": "json"}


def parse_candidates(data: Any) -> tuple[list[Candidate], int]:
    """Candidates of one search page and the total ``count`` MusicBrainz reports."""
    if not isinstance(data, dict) or not isinstance(data.get("artists"), list):
        raise ValueError("a MusicBrainz artist search answer needs an 'artists' list")
    out = []
    for a in data["artists"]:
        if not isinstance(a, dict) or not a.get("id") or not a.get("name"):
            continue
        aliases = [x.get("name", "") for x in a.get("aliases") or [] if isinstance(x, dict) and x.get("name")]
        out.append(Candidate(mbid=str(a["id"]), name=str(a["name"]), score=int(a.get("score", 0) or 0),
                             disambiguation=str(a.get("disambiguation") or ""), type=a.get("type"),
                             country=a.get("country"), aliases=aliases))
    total = int(data.get("count", len(out)) or 0)
    return out, total


def search(client: HttpClient, name: str, *, limit: int = 10, pages: int = 3, min_score: int = 90) -> list[Candidate]:
    """Search artists by name, reading further pages (``offset``) while no page holds an
    exact-name candidate scoring at least `min_score`; at most `pages` pages.

    Raises
    ------
    FetchError
        When a page cannot be fetched (after retries) or is not a search answer.
    """
    from .http import FetchError

    found: list[Candidate] = []
    offset = 0
    for _ in range(max(1, pages)):
        path, params = search_request(name, limit=limit, offset=offset)
        resp = client.get_json(SOURCE, path, params, validate=parse_candidates)
        if not resp.ok:
            raise FetchError(f"{SOURCE}: search for {name!r} answered HTTP {resp.status}: {_error_text(resp)}.",
                             kind="http", url=resp.url, status=resp.status, data=resp.data)
        try:
            page, total = parse_candidates(resp.data)
        except ValueError as exc:
            raise FetchError(f"{SOURCE}: {resp.url}: {exc}.", kind="malformed", url=resp.url) from None
        found.extend(page)
        offset += len(page)
        if any(c.score >= min_score and c.names_match(name) for c in page):
            break
        if not page or offset >= total:
            break
    return found


def lookup_request(mbid: str) -> tuple[str, dict[str, Any]]:
    return f"/artist/{mbid}", {"inc": LOOKUP_INC, "fmt": "json"}


def lookup(client: HttpClient, mbid: str) -> Response:
    """The artist with tags, genres and artist relations (a 404/400 comes back as a Response)."""
    path, params = lookup_request(mbid)
    return client.get_json(SOURCE, path, params, validate=parse_lookup)


def parse_lookup(data: Any) -> ArtistInfo:
    """Tags, genres and artist-artist relations of a lookup answer (other relations ignored)."""
    if not isinstance(data, dict) or not data.get("id"):
        raise ValueError("a MusicBrainz artist lookup answer needs an 'id'")
    info = ArtistInfo(mbid=str(data["id"]), name=str(data.get("name") or ""), disambiguation=str(data.get("disambiguation") or ""))
    for field_name, target in (("tags", info.tags), ("genres", info.genres)):
        for t in data.get(field_name) or []:
            if isinstance(t, dict) and t.get("name"):
                target[str(t["name"])] = int(t.get("count", 0) or 0)
    for rel in data.get("relations") or []:
        if not isinstance(rel, dict):
            continue
        target = rel.get("artist")
        if rel.get("target-type", "artist") != "artist" or not isinstance(target, dict) or not target.get("id"):
            continue
        info.relations.append((str(rel.get("type") or "related"), str(rel.get("direction") or "forward"),
                               str(target["id"]), str(target.get("name") or "")))
    return info


def _error_text(resp: Response) -> str:
    if isinstance(resp.data, dict) and resp.data.get("error"):
        return str(resp.data["error"])
    return "no error text"
