"""Artist identity: which MusicBrainz artist is this library artist? Never guessed silently.

Order: an MBID from the library (file tag ``musicbrainz_artistid`` / ``albumartistid`` or the
manifest's ``artist_mbid`` column, stored in ``artists.mbid``) is used as given — that is how a
user pins an identity. Otherwise MusicBrainz is searched by name and the result is:

- ``matched``: exactly one candidate whose name (or an alias) equals the library name after
  normalisation and whose score is at least ``min_score``;
- ``ambiguous``: candidates exist but none qualifies, or several do (homonyms) — the best is
  kept with its score and disambiguation, flagged, listed by ``soundalike enrich --review``,
  and NOT used for lookups until the user pins an id;
- ``not_found``: no candidate at all; ``failed``: the search itself failed.
"""

from __future__ import annotations

import uuid

from ..store import Artist
from .cache import IdentityRow
from .http import FetchError, HttpClient
from .musicbrainz import Candidate, is_mbid, search

__all__ = ["resolve", "decide", "review_lines"]


def decide(name: str, candidates: list[Candidate], *, min_score: int = 90) -> tuple[str, Candidate | None, str]:
    """Classify search candidates for `name`: ``(status, best, reason)``.

    Examples
    --------
    >>> c = [Candidate("0b4ec4e2-0000-4000-8000-000000000001", "Muldjord", 100)]
    >>> decide("muldjord", c)[0]
    'matched'
    >>> decide("Muldjord", [Candidate("0b4ec4e2-0000-4000-8000-000000000002", "Muldjord", 70)])[0]
    'ambiguous'
    """
    if not candidates:
        return "not_found", None, f"MusicBrainz has no artist matching {name!r}"
    ranked = sorted(candidates, key=lambda c: -c.score)
    exact = [c for c in ranked if c.names_match(name)]
    strong = [c for c in exact if c.score >= min_score]
    if len(strong) == 1:
        return "matched", strong[0], f"exact name, score {strong[0].score}"
    if len(strong) > 1:
        desc = "; ".join(f"{c.name} ({c.disambiguation or 'no disambiguation'}, {c.mbid})" for c in strong[:4])
        return "ambiguous", strong[0], f"{len(strong)} artists are named {name!r}: {desc}; pin one"
    best = exact[0] if exact else ranked[0]
    if exact:
        why = f"the exact-name candidate scores {best.score} < {min_score}"
    else:
        why = f"no candidate is named {name!r}; the best is {best.name!r} (score {best.score})"
    return "ambiguous", best, why


def resolve(client: HttpClient, artist: Artist, *, min_score: int = 90, limit: int = 10, pages: int = 3) -> IdentityRow:
    """The identity of one library artist (searches MusicBrainz through the client's cache)."""
    if artist.mbid:
        if not is_mbid(artist.mbid):
            return IdentityRow(artist.artist_id, artist.name, "failed", "library", reason=(
                f"the library's MBID {artist.mbid!r} for {artist.name!r} is not a MusicBrainz id (a UUID); "
                "fix the manifest's artist_mbid or the file's musicbrainz_artistid tag"))
        return IdentityRow(artist.artist_id, artist.name, "matched", "library", mbid=str(uuid.UUID(artist.mbid)),
                           reason="MBID from file tags or the manifest")
    try:
        cands = search(client, artist.name, limit=limit, pages=pages, min_score=min_score)
    except FetchError as exc:
        return IdentityRow(artist.artist_id, artist.name, "failed", "search", reason=str(exc))
    status, best, reason = decide(artist.name, cands, min_score=min_score)
    top = sorted(cands, key=lambda c: -c.score)[:5]
    return IdentityRow(
        artist.artist_id, artist.name, status, "search",
        mbid=best.mbid if best else None, score=best.score if best else None,
        matched_name=best.name if best else None, disambiguation=best.disambiguation if best else None,
        candidates=[c.as_json() for c in top], reason=reason,
    )


def review_lines(rows: list[IdentityRow], names: dict[int, str]) -> list[str]:
    """Human-readable review of identities that need a decision (ambiguous, not found, failed)."""
    lines = []
    for r in rows:
        if r.status == "matched":
            continue
        name = names.get(r.artist_id, r.query_name)
        lines.append(f"{name}: {r.status} — {r.reason or ''}")
        for c in r.candidates:
            dis = f", {c['disambiguation']}" if c.get("disambiguation") else ""
            lines.append(f"    candidate {c['mbid']}  score {c['score']:>3}  {c['name']}{dis}")
        if r.status != "failed":
            lines.append(f"    to pin: add artist_mbid=<id> to {name!r}'s rows in the manifest and run `soundalike ingest` again")
    return lines
