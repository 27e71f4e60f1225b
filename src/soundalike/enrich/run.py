"""One enrichment run: resolve identities, then ask each source about each artist.

A source's failure for one artist is recorded (``enrich_status``) and the run goes on; every
response is committed as it arrives, so an interrupted run resumes from the cache.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import ParameterError
from ..store import Artist, Store
from . import lastfm, listenbrainz, musicbrainz
from .cache import IdentityRow, ResponseCache, save_identity, save_status
from .http import Clock, FetchError, HttpClient
from .identity import resolve
from .settings import SOURCES, EnrichSettings

__all__ = ["EnrichSummary", "Failure", "enrich", "parse_sources"]

Progress = Callable[[str, int, int], None]


@dataclass
class Failure:
    artist: str
    source: str
    kind: str
    message: str


@dataclass
class EnrichSummary:
    """Counts of one run: artists by identity outcome, source outcomes, HTTP figures."""

    n_artists: int = 0
    identity: Counter = field(default_factory=Counter)  # matched / ambiguous / not_found / failed
    artists: Counter = field(default_factory=Counter)  # same, but "failed" when any source failed
    sources: dict[str, Counter] = field(default_factory=dict)  # source -> ok / not_found / failed / skipped
    failures: list[Failure] = field(default_factory=list)
    http: dict = field(default_factory=dict)
    http_by_source: dict = field(default_factory=dict)
    offline: bool = False
    elapsed_s: float = 0.0
    fixture_responses: int = 0

    def as_json(self) -> dict:
        return {
            "n_artists": self.n_artists,
            "matched": self.artists["matched"],
            "ambiguous": self.artists["ambiguous"],
            "not_found": self.artists["not_found"],
            "failed": self.artists["failed"],
            "identity": dict(self.identity),
            "sources": {s: dict(c) for s, c in self.sources.items()},
            "failures": [f.__dict__ for f in self.failures],
            "http": self.http,
            "http_by_source": self.http_by_source,
            "offline": self.offline,
            "elapsed_s": round(self.elapsed_s, 3),
            "fixture_responses": self.fixture_responses,
        }


def parse_sources(values: Sequence[str] | None) -> list[str]:
    """Validate source names (default: all three)."""
    if not values:
        return list(SOURCES)
    bad = [v for v in values if v not in SOURCES]
    if bad:
        raise ParameterError(f"Unknown enrichment source(s) {', '.join(map(repr, bad))}; use {', '.join(SOURCES)}.")
    return [s for s in SOURCES if s in values]


def enrich(
    store: Store,
    *,
    sources: Sequence[str] | None = None,
    offline: bool = False,
    refresh: bool = False,
    settings: EnrichSettings | None = None,
    clock: Clock | None = None,
    artists: Sequence[Artist] | None = None,
    progress: Progress | None = None,
) -> EnrichSummary:
    """Fetch (or read from the cache) identities, tags, relations and similar-artist lists.

    Parameters
    ----------
    store : Store          the library database (written: cache, identities, outcomes)
    sources : list of str  subset of ``musicbrainz``, ``listenbrainz``, ``lastfm``; default all
    offline : bool         only the cache; what is missing is reported per artist as failed
    refresh : bool         revalidate cached responses younger than the expiry
    settings : EnrichSettings, optional   default ``EnrichSettings.from_env()``
    clock : Clock, optional               injected in tests
    artists : list of Artist, optional    default every artist with tracks
    progress : callable(stage, done, total), optional

    Returns
    -------
    EnrichSummary
    """
    chosen = parse_sources(sources)
    settings = settings or EnrichSettings.from_env()
    cache = ResponseCache(store)
    client = HttpClient(settings, cache=cache, offline=offline, refresh=refresh, clock=clock)
    todo = list(artists) if artists is not None else store.artists()
    summary = EnrichSummary(n_artists=len(todo), offline=offline, sources={s: Counter() for s in chosen})
    t0 = time.monotonic()
    lastfm_disabled: tuple[str, str] | None = None  # (status, message) for the rest of the run
    # Offline, the key is not needed: cache keys never contain it.
    if "lastfm" in chosen and not settings.lastfm_api_key and not offline:
        lastfm_disabled = ("skipped", "no Last.fm API key: set LASTFM_API_KEY (free at https://www.last.fm/api/account/create)")
    for i, artist in enumerate(todo):
        now = client.clock.time()
        ident = resolve(client, artist, min_score=settings.min_score, limit=settings.search_limit, pages=settings.search_pages)
        save_identity(store, ident, now=now)
        summary.identity[ident.status] += 1
        if ident.status == "failed":
            summary.failures.append(Failure(artist.name, "identity", "identity", ident.reason or ""))
        any_failed = ident.status == "failed"
        for source in chosen:
            if source == "lastfm" and lastfm_disabled:
                status, message = lastfm_disabled
            else:
                try:
                    status, message = _fetch_source(client, settings, source, artist, ident)
                except lastfm.LastfmAuthError as exc:
                    # A rejected key fails every artist; ask once, not once per artist.
                    lastfm_disabled = ("failed", str(exc))
                    status, message = "failed", str(exc)
                    summary.failures.append(Failure(artist.name, source, exc.kind, str(exc)))
                except FetchError as exc:
                    status, message = "failed", str(exc)
                    summary.failures.append(Failure(artist.name, source, exc.kind, str(exc)))
            if status == "failed":
                any_failed = True
            summary.sources[source][status] += 1
            save_status(store, artist.artist_id, source, status, message, now=client.clock.time())
        summary.artists["failed" if any_failed else ident.status] += 1
        if progress is not None:
            progress("enrich", i + 1, len(todo))
    summary.elapsed_s = time.monotonic() - t0
    summary.http = client.total_stats().as_json()
    summary.http_by_source = {s: st.as_json() for s, st in client.stats.items() if s in chosen or s == "musicbrainz"}
    summary.fixture_responses = cache.fixture_count()
    return summary


def _fetch_source(client: HttpClient, settings: EnrichSettings, source: str, artist: Artist,
                  ident: IdentityRow) -> tuple[str, str | None]:
    """``(status, message)`` of one source for one artist; FetchError propagates."""
    if source in ("musicbrainz", "listenbrainz") and ident.status != "matched":
        return "skipped", f"no confident MusicBrainz id ({ident.status}); see `soundalike enrich --review`"
    if source == "musicbrainz":
        resp = musicbrainz.lookup(client, ident.mbid)
        if resp.status in (400, 404, 410):
            return "not_found", (f"MusicBrainz has no artist {ident.mbid} (HTTP {resp.status}); "
                                 "fix the pinned artist_mbid" if ident.origin == "library" else f"HTTP {resp.status}")
        _check(source, resp, musicbrainz.parse_lookup)
        return "ok", None
    if source == "listenbrainz":
        resp = listenbrainz.similar(client, ident.mbid, algorithm=settings.listenbrainz_algorithm)
        if resp.status in (400, 404, 410):
            return "not_found", f"HTTP {resp.status}"
        rows = _check(source, resp, lambda d: listenbrainz.parse_similar(d, ident.mbid))
        return ("ok", None) if rows else ("not_found", "ListenBrainz has no similar artists for this MBID")
    # lastfm: by name (Last.fm is keyed by names; its MBID index is sparse)
    key = settings.lastfm_api_key or ""
    errors: list[FetchError] = []
    found = []
    for call, parse in ((lambda: lastfm.similar(client, artist.name, api_key=key, limit=settings.similar_limit),
                         lastfm.parse_similar),
                        (lambda: lastfm.toptags(client, artist.name, api_key=key), lastfm.parse_toptags)):
        # One call failing does not stop the other: partial data is still useful.
        try:
            resp = call()
            if lastfm.error_code(resp.data) in lastfm.NOT_FOUND_CODES or resp.status in (400, 404):
                found.append(False)
                continue
            _check(source, resp, parse)
            found.append(True)
        except lastfm.LastfmAuthError:
            raise
        except FetchError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    if not any(found):
        return "not_found", f"Last.fm does not know {artist.name!r}"
    return "ok", None


def _check(source: str, resp, parse):
    try:
        return parse(resp.data)
    except ValueError as exc:
        raise FetchError(f"{source}: {resp.url} is not the expected answer ({exc}).", kind="malformed",
                         url=resp.url, status=resp.status) from None
