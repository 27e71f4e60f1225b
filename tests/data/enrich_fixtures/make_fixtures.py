"""Write the enrichment FIXTURES: synthetic responses shaped like MusicBrainz WS/2 JSON, the
ListenBrainz labs similar-artists JSON and Last.fm's artist.getSimilar / artist.getTopTags JSON.

FIXTURE DATA, NOT SERVICE DATA: ids are uuid5 fakes (namespace below), names of outside
artists start with "Fixture", every disambiguation / comment says "[fixture]", and every
Last.fm URL contains "fixture". Tags mirror the demo library's genres, so never evaluate genre
metrics with them (CONTRACTS.md "no label leaks"). Rerun to regenerate:

    python tests/data/enrich_fixtures/make_fixtures.py

and pre-fill a library database's cache with them (the demo flow, offline):

    python tests/data/enrich_fixtures/make_fixtures.py --prefill out/demo/library.db
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
NS = uuid.UUID("6f1d3c1e-5a1b-4c6e-9d0e-000000000000")
NOTE = "[fixture] synthetic test data, not MusicBrainz data"
CREATED = "2026-11-01T00:00:00.000Z"

# name -> (tags with vote counts, group)
DEMO = {
    "Askyel": ({"electronic": 5, "synthwave": 3, "video game music": 2}, "electronic"),
    "Maxstack (Max McCracken)": ({"electronic": 4, "ambient": 3, "video game music": 2}, "electronic"),
    "0zone0ne": ({"video game music": 4, "chiptune": 3, "electronic": 1}, "game"),
    "Marek 'Wansti' Moeckel": ({"video game music": 5, "chiptune": 2, "orchestral": 1}, "game"),
    "Muldjord": ({"metal": 6, "death metal": 3, "heavy metal": 2}, "metal"),
    "Obsidian Shell": ({"metal": 4, "progressive metal": 3, "heavy metal": 1}, "metal"),
    "Doug Kaufman": ({"orchestral": 5, "soundtrack": 4, "epic": 2}, "orchestral"),
    "Mattias Westlund": ({"orchestral": 4, "soundtrack": 3, "folk": 1}, "orchestral"),
    "Johann Sebastian Bach": ({"baroque": 8, "classical": 6, "choral": 3}, "early"),
    "Giovanni Pierluigi da Palestrina": ({"renaissance": 7, "classical": 4, "choral": 5}, "early"),
}
GENRES = {"electronic", "metal", "death metal", "heavy metal", "progressive metal", "ambient", "synthwave", "chiptune",
          "soundtrack", "baroque", "classical", "renaissance", "folk", "orchestral"}
# Fixture relations between demo artists (kind, a, b): a collaboration graph for the demo flow.
RELATIONS = [
    ("collaboration", "Askyel", "Maxstack (Max McCracken)"),
    ("collaboration", "Doug Kaufman", "Mattias Westlund"),
    ("supporting musician", "0zone0ne", "Marek 'Wansti' Moeckel"),
]
# Both metal artists are members of one outside (fixture) band: a "shared member of band" edge.
OUTSIDE_BAND = "Fixture Band (outside the library)"
OUTSIDE_MEMBERS = ["Muldjord", "Obsidian Shell"]
LB_ALGORITHM = "session_based_days_7500_session_300_contribution_5_threshold_10_limit_100_filter_True_skip_30"


def mbid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def artist_ref(name: str, kind: str = "Person") -> dict:
    return {"id": mbid(name), "name": name, "sort-name": name, "disambiguation": NOTE, "type": kind,
            "type-id": "b6e035f4-3ce9-331c-97df-83397230b0df" if kind == "Person" else "e431f5f6-b5d2-343d-8b36-72607fffb74b"}


def search_doc(name: str) -> dict:
    """An artist search page: the exact artist (score 100) and a weaker fixture namesake."""
    return {
        "created": CREATED,
        "count": 2,
        "offset": 0,
        "artists": [
            {"id": mbid(name), "type": "Person", "type-id": "b6e035f4-3ce9-331c-97df-83397230b0df", "score": 100,
             "name": name, "sort-name": name, "disambiguation": NOTE,
             "life-span": {"ended": None}, "aliases": [], "tags": []},
            {"id": mbid("Fixture namesake of " + name), "type": "Group", "score": 41,
             "name": f"Fixture Tribute to {name}", "sort-name": f"Fixture Tribute to {name}", "disambiguation": NOTE,
             "life-span": {"ended": None}},
        ],
    }


REL_TYPE_IDS = {
    "collaboration": "75c09861-6857-4ec0-9729-84eefde7fc86",
    "member of band": "5be4c609-9afa-4ea0-910b-12ffb71e3821",
    "supporting musician": "ed6a7891-ce70-4e08-9839-1f2f62270497",
}


def relation(kind: str, direction: str, other: str, other_type: str = "Person") -> dict:
    return {"type": kind, "type-id": REL_TYPE_IDS[kind], "direction": direction, "target-type": "artist",
            "attributes": [], "attribute-ids": {}, "attribute-values": {}, "begin": None, "end": None,
            "ended": False, "source-credit": "", "target-credit": "", "artist": artist_ref(other, other_type)}


def lookup_doc(name: str) -> dict:
    tags, _ = DEMO[name]
    rels = []
    for kind, a, b in RELATIONS:
        if name == a:
            rels.append(relation(kind, "forward", b))
        elif name == b:
            rels.append(relation(kind, "backward", a))
    if name in OUTSIDE_MEMBERS:
        rels.append(relation("member of band", "forward", OUTSIDE_BAND, "Group"))
    return {
        "id": mbid(name), "name": name, "sort-name": name, "disambiguation": NOTE, "type": "Person",
        "type-id": "b6e035f4-3ce9-331c-97df-83397230b0df", "country": None, "life-span": {"begin": None, "end": None, "ended": False},
        "tags": [{"name": t, "count": c} for t, c in tags.items()],
        "genres": [{"id": mbid("genre " + t), "name": t, "count": c, "disambiguation": ""} for t, c in tags.items() if t in GENRES],
        "relations": rels,
    }


def neighbours(name: str) -> list[tuple[str, float]]:
    """Fixture similarity: same group first, then one other group, then outside fixture names."""
    group = DEMO[name][1]
    order = ["electronic", "game", "metal", "orchestral", "early"]
    nxt = order[(order.index(group) + 1) % len(order)]
    same = [n for n, (_, g) in DEMO.items() if g == group and n != name]
    near = [n for n, (_, g) in DEMO.items() if g == nxt]
    out = [(n, 0.9 - 0.05 * i) for i, n in enumerate(same)]
    out += [(n, 0.45 - 0.05 * i) for i, n in enumerate(near)]
    out += [(f"Fixture Outside Artist {group.title()} {k}", 0.3 - 0.05 * k) for k in (1, 2)]
    return out


def lb_doc(name: str) -> list[dict]:
    return [
        {"artist_mbid": mbid(n), "name": n, "comment": "[fixture]", "type": "Person", "gender": None,
         "score": int(round(10000 * s)), "reference_mbid": mbid(name)}
        for n, s in neighbours(name)
    ]


def lastfm_url(name: str) -> str:
    return "https://www.last.fm/music/fixture/" + quote(name)


def lastfm_similar_doc(name: str) -> dict:
    return {"similarartists": {"artist": [
        {"name": n, "mbid": mbid(n) if n in DEMO else "", "match": f"{s:.6f}", "url": lastfm_url(n),
         "image": [{"#text": "", "size": "small"}, {"#text": "", "size": "medium"}], "streamable": "0"}
        for n, s in neighbours(name)], "@attr": {"artist": name}}}


def lastfm_tags_doc(name: str) -> dict:
    tags, _ = DEMO[name]
    top = max(tags.values())
    return {"toptags": {"tag": [{"count": int(round(100 * c / top)), "name": t, "url": "https://www.last.fm/tag/fixture/" + quote(t)}
                                for t, c in tags.items()], "@attr": {"artist": name}}}


# Error bodies, shaped like the services' documented ones.
ERRORS = {
    "musicbrainz/error_404.json": {"error": "Not Found", "help": "For usage, please see: https://musicbrainz.org/development/mmd"},
    "musicbrainz/error_400_invalid_mbid.json": {"error": "Invalid mbid.", "help": "For usage, please see: https://musicbrainz.org/development/mmd"},
    "musicbrainz/error_503_rate_limit.json": {"error": "Your requests are exceeding the allowable rate limit. Please see https://wiki.musicbrainz.org/XMLWebService for more information."},
    "lastfm/error_6_not_found.json": {"error": 6, "message": "The artist you supplied could not be found", "links": []},
    "lastfm/error_29_rate_limit.json": {"error": 29, "message": "Rate Limit Exceeded - Your IP has made too many requests in a short period", "links": []},
    "lastfm/error_10_invalid_key.json": {"error": 10, "message": "Invalid API key - You must be granted a valid key by last.fm", "links": []},
}


def prefill_cache(db_path, *, names=None) -> int:
    """Fill a library database's enrichment cache with these FIXTURES (no server, no network),
    as if ``soundalike enrich`` had fetched them with default settings; returns the count.

    Every row is marked ``note='fixture'``, so ``soundalike enrich`` says it reads fixtures.
    """
    from soundalike.enrich import lastfm, listenbrainz, musicbrainz
    from soundalike.enrich.cache import ResponseCache
    from soundalike.enrich.http import request_key
    from soundalike.enrich.settings import DEFAULT_URLS, EnrichSettings
    from soundalike.store import Store

    settings = EnrichSettings()
    n = 0
    with Store(db_path) as store:
        cache = ResponseCache(store)
        for name in names or DEMO:
            s = slug(name)
            m = mbid(name)
            reqs = [
                ("musicbrainz", *musicbrainz.search_request(name, limit=settings.search_limit), (), f"musicbrainz/search_{s}.json"),
                ("musicbrainz", *musicbrainz.lookup_request(m), (), f"musicbrainz/artist_{s}.json"),
                ("listenbrainz", *listenbrainz.similar_request(m, algorithm=settings.listenbrainz_algorithm), (),
                 f"listenbrainz/similar_{s}.json"),
                ("lastfm", *lastfm.similar_request(name, api_key="", limit=settings.similar_limit), lastfm.SECRET,
                 f"lastfm/getsimilar_{s}.json"),
                ("lastfm", *lastfm.toptags_request(name, api_key=""), lastfm.SECRET, f"lastfm/gettoptags_{s}.json"),
            ]
            for source, path, params, secret, rel in reqs:
                key = request_key(path, params, secret=secret)
                body = (HERE / rel).read_text(encoding="utf-8")
                cache.put(source, key, DEFAULT_URLS[source] + key + "#fixture", status=200, fetched_ts=0.0,
                          content_type="application/json", body=body, note="fixture")
                n += 1
    return n


def main() -> None:
    for sub in ("musicbrainz", "listenbrainz", "lastfm"):
        (HERE / sub).mkdir(exist_ok=True)
    index = {}
    for name in DEMO:
        s = slug(name)
        files = {
            f"musicbrainz/search_{s}.json": search_doc(name),
            f"musicbrainz/artist_{s}.json": lookup_doc(name),
            f"listenbrainz/similar_{s}.json": lb_doc(name),
            f"lastfm/getsimilar_{s}.json": lastfm_similar_doc(name),
            f"lastfm/gettoptags_{s}.json": lastfm_tags_doc(name),
        }
        for rel, doc in files.items():
            (HERE / rel).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        index[name] = {"mbid": mbid(name), "slug": s}
    for rel, doc in ERRORS.items():
        (HERE / rel).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (HERE / "demo_artists.json").write_text(json.dumps({"_fixture": NOTE, "listenbrainz_algorithm": LB_ALGORITHM,
                                                        "artists": index}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--prefill":
        print(f"{prefill_cache(sys.argv[2])} fixture responses written into {sys.argv[2]}")
    else:
        main()
