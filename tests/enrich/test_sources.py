"""Each source's requests and parsers against fixtures shaped like the documented responses."""

from __future__ import annotations

import json

import pytest
from _fake_services import FIXTURES, Reply

from soundalike.enrich import lastfm, listenbrainz, musicbrainz
from soundalike.enrich.http import FetchError, HttpClient

ASKYEL = "6b658c7e-6ec5-5aca-b9f1-d80faeeefb1c"


def load(rel: str):
    return json.loads((FIXTURES / rel).read_text(encoding="utf-8"))


def candidate(i: int, name: str, score: int) -> dict:
    return {"id": f"00000000-0000-4000-8000-{i:012d}", "name": name, "sort-name": name, "score": score,
            "disambiguation": "[fixture]", "type": "Person"}


def test_musicbrainz_search_pages_with_offset_until_exact_match(services, settings_for, fake_clock):
    # 5 fuzzy namesakes fill the first page (limit 2 -> pages at offsets 0, 2, 4); the exact
    # artist sits on the third page.
    services.search_pages["Vril"] = [candidate(1, "Vrillon", 95), candidate(2, "Vril Society", 93),
                                     candidate(3, "Vrilly", 90), candidate(4, "Avril", 88),
                                     candidate(5, "Vril", 86), candidate(6, "Vril Tribute", 40)]
    client = HttpClient(settings_for(services), clock=fake_clock)
    cands = musicbrainz.search(client, "Vril", limit=2, pages=5, min_score=80)
    reqs = services.requests("musicbrainz")
    assert [(r.params["offset"], r.params["limit"]) for r in reqs] == [("0", "2"), ("2", "2"), ("4", "2")]
    assert reqs[0].params["query"] == 'artist:"Vril"' and reqs[0].params["fmt"] == "json"
    assert [c.name for c in cands] == ["Vrillon", "Vril Society", "Vrilly", "Avril", "Vril", "Vril Tribute"]


def test_musicbrainz_search_stops_at_the_last_page(services, settings_for, fake_clock):
    services.search_pages["Nobody"] = [candidate(1, "Somebody", 50), candidate(2, "Anybody", 45), candidate(3, "Everybody", 40)]
    client = HttpClient(settings_for(services), clock=fake_clock)
    cands = musicbrainz.search(client, "Nobody", limit=2, pages=10)
    assert len(cands) == 3 and len(services.requests()) == 2  # count=3: offsets 0 and 2, then done


def test_musicbrainz_search_escapes_quotes():
    path, params = musicbrainz.search_request('Marek "Wansti" Moeckel\\')
    assert path == "/artist" and params["query"] == 'artist:"Marek \\"Wansti\\" Moeckel\\\\"'


def test_musicbrainz_lookup_parses_tags_genres_relations():
    info = musicbrainz.parse_lookup(load("musicbrainz/artist_muldjord.json"))
    assert info.name == "Muldjord" and "[fixture]" in info.disambiguation
    assert info.tags == {"metal": 6, "death metal": 3, "heavy metal": 2}
    assert info.genres == {"metal": 6, "death metal": 3, "heavy metal": 2}
    assert [(k, d, n) for k, d, _, n in info.relations] == [("member of band", "forward", "Fixture Band (outside the library)")]
    assert musicbrainz.is_mbid(info.relations[0][2])


def test_musicbrainz_relations_skip_non_artist_targets():
    doc = load("musicbrainz/artist_askyel.json")
    doc["relations"].append({"type": "official homepage", "target-type": "url", "direction": "forward",
                             "url": {"id": "x", "resource": "https://example.invalid"}})
    info = musicbrainz.parse_lookup(doc)
    assert [r[0] for r in info.relations] == ["collaboration"]


@pytest.mark.parametrize("value,ok", [("6b658c7e-6ec5-5aca-b9f1-d80faeeefb1c", True), ("6B658C7E-6EC5-5ACA-B9F1-D80FAEEEFB1C", True),
                                      ("not-an-id", False), ("", False), (None, False)])
def test_is_mbid(value, ok):
    assert musicbrainz.is_mbid(value) is ok


def test_listenbrainz_parses_flat_and_wrapped_answers():
    flat = load("listenbrainz/similar_askyel.json")
    rows = listenbrainz.parse_similar(flat, ASKYEL)
    assert rows[0][1] == "Maxstack (Max McCracken)" and rows[0][2] == 9000
    assert all(r[0] != ASKYEL for r in rows)
    wrapped = [{"type": "markup", "data": "<p>Reference artists</p>"}, {"type": "dataset", "columns": [], "data": flat}]
    assert listenbrainz.parse_similar(wrapped, ASKYEL) == rows
    assert listenbrainz.parse_similar([], ASKYEL) == []
    with pytest.raises(ValueError):
        listenbrainz.parse_similar("oops")


def test_listenbrainz_request_shape(services, settings_for, fake_clock):
    client = HttpClient(settings_for(services), clock=fake_clock)
    resp = listenbrainz.similar(client, ASKYEL, algorithm="session_based_x")
    [req] = services.requests()
    assert req.path == "/similar-artists/json" and req.params == {"artist_mbids": ASKYEL, "algorithm": "session_based_x"}
    assert resp.status == 200 and isinstance(resp.data, list)


def test_lastfm_parsers():
    sim = lastfm.parse_similar(load("lastfm/getsimilar_askyel.json"))
    assert sim[0] == ("Maxstack (Max McCracken)", "3a1b88db-5ec5-5614-b245-552f47b3e6f9", 0.9)
    assert all(0 <= m <= 1 for _, _, m in sim)
    assert lastfm.parse_toptags(load("lastfm/gettoptags_askyel.json")) == {"electronic": 100.0, "synthwave": 60.0,
                                                                           "video game music": 40.0}
    # A one-element list arrives as a bare object in Last.fm's JSON.
    one = {"similarartists": {"artist": {"name": "Solo", "mbid": "", "match": "0.5"}, "@attr": {"artist": "x"}}}
    assert lastfm.parse_similar(one) == [("Solo", None, 0.5)]
    with pytest.raises(ValueError):
        lastfm.parse_similar(load("lastfm/error_6_not_found.json"))


def test_lastfm_error_29_is_retried_then_succeeds(services, settings_for, fake_clock):
    services.add_fault("lastfm", "/", Reply(200, load("lastfm/error_29_rate_limit.json")), method="artist.getsimilar")
    client = HttpClient(settings_for(services), clock=fake_clock)
    resp = lastfm.similar(client, "Askyel", api_key=services.lastfm_key)
    assert lastfm.parse_similar(resp.data)
    st = client.stats["lastfm"]
    assert (st.requests, st.retried) == (2, 1)


def test_lastfm_error_6_not_found_is_cached(services, settings_for, fake_clock, store):
    from soundalike.enrich.cache import ResponseCache

    client = HttpClient(settings_for(services), cache=ResponseCache(store), clock=fake_clock)
    resp = lastfm.similar(client, "No Such Fixture Artist", api_key=services.lastfm_key)
    assert lastfm.error_code(resp.data) == 6
    assert lastfm.similar(client, "No Such Fixture Artist", api_key=services.lastfm_key).from_cache


def test_lastfm_invalid_key_raises_auth_and_is_not_cached(services, settings_for, fake_clock, store):
    from soundalike.enrich.cache import ResponseCache

    cache = ResponseCache(store)
    client = HttpClient(settings_for(services), cache=cache, clock=fake_clock)
    with pytest.raises(lastfm.LastfmAuthError, match="LASTFM_API_KEY"):
        lastfm.similar(client, "Askyel", api_key="wrong-key")
    assert cache.count() == 0
    # Also when the error body comes with HTTP 200.
    services.add_fault("lastfm", "/", Reply(200, load("lastfm/error_10_invalid_key.json")))
    with pytest.raises(lastfm.LastfmAuthError):
        lastfm.toptags(client, "Askyel", api_key=services.lastfm_key)
    assert cache.count() == 0


def test_musicbrainz_search_http_error_is_reported(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist", Reply(400, {"error": "Invalid query"}))
    client = HttpClient(settings_for(services), clock=fake_clock)
    with pytest.raises(FetchError, match="Invalid query"):
        musicbrainz.search(client, "Askyel")
