"""Hybrid signal inputs built from the enrichment cache: tags, reference lists, graph.

Nothing here touches the network: everything is read from cached responses of confident
identities (``matched``), so ``soundalike similar`` can run read-only and offline.
"""

from __future__ import annotations

import re
from collections import defaultdict

from ..library import artist_key
from ..store import Store
from . import lastfm, listenbrainz, musicbrainz
from .cache import ResponseCache, load_identities
from .http import request_key
from .settings import SOURCES, EnrichSettings

__all__ = ["signal_inputs", "MAX_TAGS"]

MAX_TAGS = 50
_WS = re.compile(r"\s+")


def _tag(name: str) -> str:
    return _WS.sub(" ", name).strip().casefold()


def _cached(cache: ResponseCache, source: str, path: str, params: dict, secret: tuple[str, ...] = ()):
    row = cache.get(source, request_key(path, params, secret=secret))
    if row is None or not (200 <= row.status < 300):
        return None
    return row.data()


def signal_inputs(store: Store, *, include_outside: bool = False, settings: EnrichSettings | None = None,
                  sources: tuple[str, ...] = SOURCES) -> dict:
    """Tags, reference-list scores and graph edges of the library's artists, from the cache.

    Parameters
    ----------
    store : Store
        The library database (read only here).
    include_outside : bool
        Also return reference-list entries naming artists outside the library: their second
        element is then the other artist's *name* (str) instead of an artist id.
    settings : EnrichSettings, optional
        Must match the settings of the enrichment run (request keys depend on the similar-list
        length and the ListenBrainz algorithm); default ``EnrichSettings.from_env()``.
    sources : tuple of str
        Sources to read.

    Returns
    -------
    dict with
        ``"tags"``: ``{artist_id: {tag: weight in (0, 1]}}`` (MusicBrainz tags and genres and
        Last.fm top tags, each normalised by the artist's largest count; the maximum over
        sources; at most ``MAX_TAGS`` per artist);
        ``"refs"``: ``[(artist_id_a, artist_id_b, score in (0, 1])]`` directed: b is in a's list
        (ListenBrainz scores divided by the list's best; Last.fm ``match``; max over sources);
        ``"graph"``: ``[(artist_id_a, artist_id_b, kind, weight)]`` with a < b: MusicBrainz
        artist relationships between library artists, plus ``"shared <kind>"`` edges for two
        library artists related to the same outside artist (e.g. members of one band);
        ``"coverage"``: ``{"tags", "refs", "graph"}`` artists with at least one entry.
    """
    settings = settings or EnrichSettings.from_env()
    cache = ResponseCache(store)
    artists = store.artists()
    idents = load_identities(store)
    mbid_of: dict[int, str] = {}
    for a in artists:
        ident = idents.get(a.artist_id)
        if ident is not None and ident.status == "matched" and ident.mbid:
            mbid_of[a.artist_id] = ident.mbid
    by_mbid = {m: aid for aid, m in mbid_of.items()}
    by_key = {a.name_key: a.artist_id for a in artists}

    def local(mbid: str | None, name: str | None) -> int | None:
        if mbid and mbid in by_mbid:
            return by_mbid[mbid]
        if name:
            cand = by_key.get(artist_key(name))
            # A same-named library artist with another confident MBID is a homonym, not a match.
            if cand is not None and (not mbid or cand not in mbid_of):
                return cand
        return None

    tags: dict[int, dict[str, float]] = {}
    refs: dict[tuple[int, int | str], float] = {}
    edges: dict[tuple[int, int, str], float] = {}
    outside_links: dict[str, list[tuple[int, str]]] = defaultdict(list)

    def add_tags(aid: int, counts: dict[str, float]) -> None:
        positive = {_tag(k): float(v) for k, v in counts.items() if float(v) > 0 and _tag(k)}
        if not positive:
            return
        top = max(positive.values())
        bucket = tags.setdefault(aid, {})
        for k, v in positive.items():
            bucket[k] = max(bucket.get(k, 0.0), v / top)

    def add_ref(a: int, b_id: int | None, b_name: str, score: float) -> None:
        if score <= 0:
            return
        if b_id is not None:
            if b_id != a:
                refs[(a, b_id)] = max(refs.get((a, b_id), 0.0), score)
        elif include_outside and b_name:
            refs[(a, b_name)] = max(refs.get((a, b_name), 0.0), score)

    for a in artists:
        aid, mbid = a.artist_id, mbid_of.get(a.artist_id)
        if mbid and "musicbrainz" in sources:
            path, params = musicbrainz.lookup_request(mbid)
            data = _cached(cache, "musicbrainz", path, params)
            if data is not None:
                try:
                    info = musicbrainz.parse_lookup(data)
                except ValueError:
                    info = None
                if info is not None:
                    merged = dict(info.tags)
                    for g, c in info.genres.items():
                        merged[g] = max(merged.get(g, 0), c)
                    add_tags(aid, merged)
                    for kind, _direction, target, tname in info.relations:
                        w = musicbrainz.RELATION_WEIGHTS.get(kind, musicbrainz.DEFAULT_RELATION_WEIGHT)
                        b = local(target, tname)
                        if b is None:
                            outside_links[target].append((aid, kind))
                        elif b is not None and b != aid:
                            lo, hi = min(aid, b), max(aid, b)
                            edges[(lo, hi, kind)] = max(edges.get((lo, hi, kind), 0.0), w)
        if mbid and "listenbrainz" in sources:
            path, params = listenbrainz.similar_request(mbid, algorithm=settings.listenbrainz_algorithm)
            data = _cached(cache, "listenbrainz", path, params)
            if data is not None:
                try:
                    rows = listenbrainz.parse_similar(data, mbid, limit=settings.similar_limit)
                except ValueError:
                    rows = []
                best = max((s for _, _, s in rows), default=0.0)
                for other, name, score in rows:
                    add_ref(aid, local(other, name), name, score / best if best > 0 else 0.0)
        if "lastfm" in sources:
            path, params = lastfm.similar_request(a.name, api_key="", limit=settings.similar_limit)
            data = _cached(cache, "lastfm", path, params, lastfm.SECRET)
            if data is not None and lastfm.error_code(data) is None:
                try:
                    for name, other, match in lastfm.parse_similar(data):
                        add_ref(aid, local(other, name), name, match)
                except ValueError:
                    pass
            path, params = lastfm.toptags_request(a.name, api_key="")
            data = _cached(cache, "lastfm", path, params, lastfm.SECRET)
            if data is not None and lastfm.error_code(data) is None:
                try:
                    add_tags(aid, lastfm.parse_toptags(data))
                except ValueError:
                    pass

    # Two library artists tied to the same outside artist (a band both played in, a shared
    # collaborator) are linked at half the weaker tie's weight.
    for links in outside_links.values():
        uniq = sorted(set(links))
        for i in range(len(uniq)):
            for j in range(i + 1, len(uniq)):
                (a1, k1), (a2, k2) = uniq[i], uniq[j]
                if a1 == a2:
                    continue
                w = 0.5 * min(musicbrainz.RELATION_WEIGHTS.get(k, musicbrainz.DEFAULT_RELATION_WEIGHT) for k in (k1, k2))
                kind = f"shared {k1}" if k1 == k2 else "shared relation"
                lo, hi = min(a1, a2), max(a1, a2)
                edges[(lo, hi, kind)] = max(edges.get((lo, hi, kind), 0.0), w)

    tags = {aid: dict(sorted(t.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TAGS]) for aid, t in tags.items()}
    tags = {aid: {k: round(v, 6) for k, v in t.items()} for aid, t in tags.items()}
    ref_list = sorted(((a, b, round(s, 6)) for (a, b), s in refs.items()), key=lambda t: (t[0], -t[2], str(t[1])))
    graph = sorted(((a, b, k, round(w, 6)) for (a, b, k), w in edges.items()))
    in_refs = {a for a, b, _ in ref_list if not isinstance(b, str)} | {b for _, b, _ in ref_list if not isinstance(b, str)}
    in_graph = {a for a, _, _, _ in graph} | {b for _, b, _, _ in graph}
    return {
        "tags": tags,
        "refs": ref_list,
        "graph": graph,
        "coverage": {"tags": len(tags), "refs": len(in_refs), "graph": len(in_graph), "artists": len(artists)},
    }
