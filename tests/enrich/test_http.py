"""The polite client against the local fake services: success, retries with Retry-After,
timeouts, malformed JSON, conditional requests, offline mode and the rate limit — measured on
the server's (fake) clock, never with sleeps in the test."""

from __future__ import annotations

import email.utils

import pytest
from _fake_services import FakeClock, FakeServices, Reply

from soundalike.enrich import musicbrainz
from soundalike.enrich.cache import ResponseCache
from soundalike.enrich.http import FetchError, HttpClient, RateLimiter, request_key

ASKYEL = "6b658c7e-6ec5-5aca-b9f1-d80faeeefb1c"  # fixture MBID (uuid5), see demo_artists.json


def mb_path(mbid: str = ASKYEL):
    return musicbrainz.lookup_request(mbid)


def test_success_sends_descriptive_user_agent_and_caches(services, settings_for, fake_clock, store):
    client = HttpClient(settings_for(services), cache=ResponseCache(store), clock=fake_clock)
    resp = client.get_json("musicbrainz", *mb_path())
    assert resp.status == 200 and resp.data["name"] == "Askyel" and resp.fixture
    [req] = services.requests()
    assert req.headers["User-Agent"] == "soundalike/0.1.0 ( tests@soundalike.invalid )"
    assert req.params == {"inc": "tags+genres+artist-rels", "fmt": "json"}
    # Second call: served from the cache, no request.
    again = client.get_json("musicbrainz", *mb_path())
    assert again.from_cache and again.data == resp.data
    assert len(services.requests()) == 1
    assert client.stats["musicbrainz"].as_json() | {"waited_s": 0} == {
        "requests": 1, "retried": 0, "cached": 1, "revalidated": 0, "failed": 0, "stale": 0, "waited_s": 0}


def test_rate_limit_one_per_second_on_the_server_clock(services, settings_for, fake_clock):
    client = HttpClient(settings_for(services), clock=fake_clock)
    names = ["Askyel", "Muldjord", "Obsidian Shell", "Doug Kaufman", "0zone0ne", "Mattias Westlund"]
    for n in names:
        path, params = musicbrainz.search_request(n)
        client.get_json("musicbrainz", path, params)
    times = [r.t for r in services.requests("musicbrainz")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) == 6
    assert min(gaps) >= 1.0 - 1e-9          # never faster than MusicBrainz's 1 request/s
    assert max(gaps) <= 1.0 + 1e-9          # and not needlessly slower
    assert times[-1] - times[0] == pytest.approx(5.0)


def test_rate_limiter_per_host_is_independent():
    clock = FakeClock()
    lim = RateLimiter({"a": 1.0, "b": 4.0}, clock=clock)
    t = []
    for host in ["a", "b", "b", "a", "b"]:
        lim.wait(host)
        t.append((host, clock.monotonic()))
    assert t == [("a", 1000.0), ("b", 1000.0), ("b", 1000.25), ("a", 1001.0), ("b", 1001.0)]


@pytest.mark.parametrize("status", [429, 503])
def test_429_503_then_success_honours_retry_after(services, settings_for, fake_clock, status):
    body = {"error": "Your requests are exceeding the allowable rate limit."}
    services.add_fault("musicbrainz", "/artist/", Reply(status, body, {"Retry-After": "7"}), Reply(status, body, {"Retry-After": "3"}))
    client = HttpClient(settings_for(services), clock=fake_clock)
    resp = client.get_json("musicbrainz", *mb_path())
    assert resp.status == 200
    times = [r.t for r in services.requests()]
    assert [r.status for r in services.requests()] == [status, status, 200]
    # The server saw the retries exactly as late as it asked (on its clock, no real sleeping).
    assert times[1] - times[0] == pytest.approx(7.0)
    assert times[2] - times[1] == pytest.approx(3.0)
    st = client.stats["musicbrainz"]
    assert (st.requests, st.retried, st.failed) == (3, 2, 0)


def test_retry_after_http_date_and_exponential_backoff(services, settings_for, fake_clock):
    when = email.utils.formatdate(fake_clock.time() + 20, usegmt=True)
    services.add_fault("musicbrainz", "/artist/", Reply(503, {"error": "busy"}, {"Retry-After": when}),
                       Reply(502, "<html>bad gateway</html>"), Reply(503, {"error": "busy"}))
    client = HttpClient(settings_for(services, backoff_s=1.5), clock=fake_clock)
    assert client.get_json("musicbrainz", *mb_path()).status == 200
    t = [r.t for r in services.requests()]
    gaps = [b - a for a, b in zip(t, t[1:])]
    # HTTP-date Retry-After (20 s, to the second), then backoff 1.5 * 2**1 and 1.5 * 2**2.
    assert gaps[0] == pytest.approx(20.0, abs=1.0)
    assert gaps[1:] == pytest.approx([3.0, 6.0])


def test_gives_up_after_max_retries(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist/", *[Reply(503, {"error": "busy"})] * 10)
    client = HttpClient(settings_for(services, max_retries=2), clock=fake_clock)
    with pytest.raises(FetchError, match="HTTP 503") as info:
        client.get_json("musicbrainz", *mb_path())
    assert info.value.kind == "rate_limited"
    st = client.stats["musicbrainz"]
    assert (st.requests, st.retried, st.failed) == (3, 2, 1)


def test_retry_after_longer_than_allowed_fails_clearly(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist/", Reply(429, {"error": "slow down"}, {"Retry-After": "3600"}))
    client = HttpClient(settings_for(services, max_backoff_s=60), clock=fake_clock)
    with pytest.raises(FetchError, match="3600 s, more than the 60 s allowed"):
        client.get_json("musicbrainz", *mb_path())
    assert len(services.requests()) == 1


def test_timeout_then_success(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist/", Reply(200, {"id": "late"}, delay_s=0.6))
    client = HttpClient(settings_for(services, timeout_s=0.2), clock=fake_clock)
    resp = client.get_json("musicbrainz", *mb_path())
    assert resp.data["name"] == "Askyel"
    st = client.stats["musicbrainz"]
    assert (st.requests, st.retried) == (2, 1)
    assert fake_clock.sleeps and fake_clock.sleeps[0] == pytest.approx(1.0)  # backoff after the timeout


def test_timeouts_exhausted_raise_timeout(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist/", *[Reply(200, {}, delay_s=0.4)] * 2)
    client = HttpClient(settings_for(services, timeout_s=0.15, max_retries=1), clock=fake_clock)
    with pytest.raises(FetchError, match="timed out") as info:
        client.get_json("musicbrainz", *mb_path())
    assert info.value.kind == "timeout"


def test_malformed_json_fails_and_is_not_cached(services, settings_for, fake_clock, store):
    services.add_fault("musicbrainz", "/artist/", Reply(200, '{"id": "6b65", "name": "Askyel", "tags": ['))
    cache = ResponseCache(store)
    client = HttpClient(settings_for(services), cache=cache, clock=fake_clock)
    with pytest.raises(FetchError, match="malformed JSON") as info:
        client.get_json("musicbrainz", *mb_path())
    assert info.value.kind == "malformed"
    assert cache.count() == 0
    # Next time it is fetched again (and now succeeds).
    assert client.get_json("musicbrainz", *mb_path()).status == 200
    assert cache.count() == 1


def test_wrong_shape_is_malformed_not_cached(services, settings_for, fake_clock, store):
    services.add_fault("musicbrainz", "/artist/", Reply(200, {"unexpected": True}))
    cache = ResponseCache(store)
    client = HttpClient(settings_for(services), cache=cache, clock=fake_clock)
    with pytest.raises(FetchError, match="not the expected answer"):
        musicbrainz.lookup(client, ASKYEL)
    assert cache.count() == 0


def test_404_unknown_id_is_an_answer_and_cached(services, settings_for, fake_clock, store):
    unknown = "00000000-0000-4000-8000-000000000404"
    client = HttpClient(settings_for(services), cache=ResponseCache(store), clock=fake_clock)
    resp = musicbrainz.lookup(client, unknown)
    assert resp.status == 404 and resp.data == {"error": "Not Found",
                                                "help": "For usage, please see: https://musicbrainz.org/development/mmd"}
    assert musicbrainz.lookup(client, unknown).from_cache
    assert len(services.requests()) == 1


def test_conditional_request_revalidates_with_etag(services, settings_for, fake_clock, store):
    cache = ResponseCache(store)
    client = HttpClient(settings_for(services, expiry_s=0.0), cache=cache, clock=fake_clock)
    first = client.get_json("musicbrainz", *mb_path())
    second = client.get_json("musicbrainz", *mb_path())
    reqs = services.requests()
    assert reqs[1].headers.get("If-None-Match") and reqs[1].status == 304
    assert second.revalidated and second.data == first.data
    assert client.stats["musicbrainz"].revalidated == 1


def test_stale_answer_used_when_refresh_fails(services, settings_for, fake_clock, store):
    cache = ResponseCache(store)
    HttpClient(settings_for(services), cache=cache, clock=fake_clock).get_json("musicbrainz", *mb_path())
    services.add_fault("musicbrainz", "/artist/", *[Reply(503, {"error": "down"})] * 3)
    client = HttpClient(settings_for(services, expiry_s=0.0, max_retries=2), cache=cache, clock=fake_clock)
    resp = client.get_json("musicbrainz", *mb_path())
    assert resp.stale and resp.from_cache and resp.data["name"] == "Askyel"
    st = client.stats["musicbrainz"]
    assert (st.requests, st.retried, st.stale, st.failed) == (3, 2, 1, 0)


def test_offline_uses_only_the_cache(services, settings_for, fake_clock, store):
    cache = ResponseCache(store)
    HttpClient(settings_for(services), cache=cache, clock=fake_clock).get_json("musicbrainz", *mb_path())
    offline = HttpClient(settings_for(services, expiry_s=0.0), cache=cache, clock=fake_clock, offline=True)
    assert offline.get_json("musicbrainz", *mb_path()).data["name"] == "Askyel"  # stale but offline: used
    with pytest.raises(FetchError, match="--offline") as info:
        offline.get_json("musicbrainz", *mb_path("00000000-0000-4000-8000-000000000001"))
    assert info.value.kind == "offline"
    assert len(services.requests()) == 1


def test_secrets_never_reach_cache_keys(services, settings_for, fake_clock, store):
    from soundalike.enrich import lastfm

    cache = ResponseCache(store)
    client = HttpClient(settings_for(services), cache=cache, clock=fake_clock)
    resp = lastfm.similar(client, "Askyel", api_key=services.lastfm_key)
    assert services.requests()[0].params["api_key"] == services.lastfm_key
    assert "api_key" not in resp.url and services.lastfm_key not in resp.url
    rows = store.execute("SELECT key, url FROM enrich_responses").fetchall()
    assert rows and all(services.lastfm_key not in k + u for k, u in rows)


def test_listenbrainz_ratelimit_headers_defer_next_request(services, settings_for, fake_clock):
    services.add_fault("listenbrainz", "/similar-artists/json",
                       Reply(200, [], {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-In": "9"}))
    client = HttpClient(settings_for(services), clock=fake_clock)
    for _ in range(2):
        client.get_json("listenbrainz", "/similar-artists/json", {"artist_mbids": ASKYEL, "algorithm": "x"})
    t = [r.t for r in services.requests()]
    assert t[1] - t[0] == pytest.approx(9.0)


def test_unreachable_host_is_a_network_failure(settings_for, fake_clock):
    with FakeServices() as fs:
        urls = dict(fs.urls)
    # The server is gone: connection refused, retried, then reported.
    client = HttpClient(settings_for(fs, base_urls=urls, max_retries=1), clock=fake_clock)
    with pytest.raises(FetchError, match="cannot reach") as info:
        client.get_json("musicbrainz", *mb_path())
    assert info.value.kind == "network"


def test_request_key_sorts_and_drops_secrets():
    assert request_key("/", {"b": 2, "api_key": "s3cret", "a": "x y"}, secret=("api_key",)) == "/?a=x+y&b=2"
    assert request_key("/artist/x", None) == "/artist/x"


def test_header_names_are_case_insensitive(services, settings_for, fake_clock):
    services.add_fault("musicbrainz", "/artist/", Reply(503, {"error": "busy"}, {"retry-after": "5"}))
    client = HttpClient(settings_for(services), clock=fake_clock)
    assert client.get_json("musicbrainz", *mb_path()).status == 200
    t = [r.t for r in services.requests()]
    assert t[1] - t[0] == pytest.approx(5.0)
