"""Print the enrichment figures per fault scenario (requests made, retried, cached, ...), run
against the local fake services with FIXTURES and a fake clock (no network, no sleeping):

    python tests/enrich/figures.py

The same scenarios are asserted in the tests (test_http.py, test_sources.py, test_run.py,
test_resume.py); this only tabulates them. "fake s" is the time the politeness rules cost on
the fake clock (rate limit + backoff; network latency is not modelled).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_services import FakeClock, FakeServices, Reply, _load  # noqa: E402
from _enrich_support import demo_artists  # noqa: E402

from soundalike.enrich import enrich, musicbrainz  # noqa: E402
from soundalike.enrich.cache import ResponseCache  # noqa: E402
from soundalike.enrich.http import FetchError, HttpClient  # noqa: E402
from soundalike.enrich.settings import DEFAULT_RATES, EnrichSettings  # noqa: E402
from soundalike.store import Store  # noqa: E402

ASKYEL = _load("demo_artists.json")["artists"]["Askyel"]["mbid"]
ROWS: list[tuple] = []


def settings(fs, **kw) -> EnrichSettings:
    base = dict(base_urls=dict(fs.urls), lastfm_api_key=fs.lastfm_key, contact="figures@soundalike.invalid",
                timeout_s=0.2, max_retries=3)
    base.update(kw)
    return EnrichSettings().with_(**base)


def new_store() -> Store:
    s = Store(Path(tempfile.mkdtemp()) / "lib.db")
    with s.transaction() as db:
        for n in demo_artists():
            s.add_track(track_id=hashlib.sha256(n.encode()).hexdigest(), path=f"/fixture/{n}", artist=n, db=db)
    return s


def row(name, st, t, outcome, artists=1):
    ROWS.append((name, artists, st["requests"], st["retried"], st["cached"], st.get("revalidated", 0), st.get("stale", 0),
                 round(t, 2), outcome))


def one_request(name, faults=(), outcome_fn=None, **kw):
    clock = FakeClock()
    with FakeServices(clock=clock) as fs:
        for f in faults:
            fs.add_fault(*f[:2], *f[2])
        store = new_store()
        client = HttpClient(settings(fs, **kw), cache=ResponseCache(store), clock=clock)
        t0 = clock.monotonic()
        try:
            resp = musicbrainz.lookup(client, ASKYEL)
            outcome = f"HTTP {resp.status}"
        except FetchError as exc:
            outcome = f"FetchError({exc.kind})"
        row(name, client.stats["musicbrainz"].as_json(), clock.monotonic() - t0, outcome)


def main() -> None:
    busy = {"error": "Your requests are exceeding the allowable rate limit."}
    one_request("success (lookup)")
    one_request("429 x2 (Retry-After 7, 3) then 200", [("musicbrainz", "/artist/", [Reply(429, busy, {"Retry-After": "7"}),
                                                                                   Reply(429, busy, {"Retry-After": "3"})])])
    one_request("503 x2 (no Retry-After) then 200", [("musicbrainz", "/artist/", [Reply(503, busy), Reply(503, busy)])])
    one_request("503 x4: retries exhausted", [("musicbrainz", "/artist/", [Reply(503, busy)] * 4)])
    one_request("timeout (0.6 s > 0.2 s) then 200", [("musicbrainz", "/artist/", [Reply(200, {}, delay_s=0.6)])])
    one_request("malformed JSON", [("musicbrainz", "/artist/", [Reply(200, '{"id": ')])])

    # 404 unknown id, cached as an answer: second ask is free.
    clock = FakeClock()
    with FakeServices(clock=clock) as fs:
        client = HttpClient(settings(fs), cache=ResponseCache(new_store()), clock=clock)
        for _ in range(2):
            r = musicbrainz.lookup(client, "00000000-0000-4000-8000-000000000404")
        row("404 unknown id, asked twice", client.stats["musicbrainz"].as_json(), clock.monotonic() - 1000, f"HTTP {r.status}")

    # Paging: exact match on the third page of 2.
    clock = FakeClock()
    with FakeServices(clock=clock) as fs:
        fs.search_pages["Vril"] = [{"id": f"00000000-0000-4000-8000-{i:012d}", "name": n, "score": s}
                                   for i, (n, s) in enumerate([("Vrillon", 95), ("Vril Society", 93), ("Vrilly", 90),
                                                               ("Avril", 88), ("Vril", 86)])]
        client = HttpClient(settings(fs), clock=clock)
        c = musicbrainz.search(client, "Vril", limit=2, pages=5, min_score=80)
        row("search paging (limit 2, match on page 3)", client.stats["musicbrainz"].as_json(), clock.monotonic() - 1000,
            f"{len(c)} candidates")

    # Whole runs on the 10 demo artists, one shared host (the fake server) at 1 request/s.
    clock = FakeClock()
    with FakeServices(clock=clock) as fs:
        store = new_store()
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs), clock=clock)
        row("demo run, 3 sources", s.http, clock.monotonic() - t0, f"{s.artists['matched']} matched", 10)
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs), clock=clock)
        row("rerun (cache fresh)", s.http, clock.monotonic() - t0, f"{s.artists['matched']} matched", 10)
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs, expiry_s=0.0), clock=clock)
        row("rerun (cache expired: 304s)", s.http, clock.monotonic() - t0, f"{s.artists['matched']} matched", 10)
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs), clock=clock, offline=True)
        row("--offline", s.http, clock.monotonic() - t0, f"{s.artists['matched']} matched", 10)

    clock = FakeClock()
    with FakeServices(clock=clock) as fs:
        muld = _load("demo_artists.json")["artists"]["Muldjord"]["mbid"]
        fs.add_fault("listenbrainz", "/similar-artists/json", *[Reply(500, {"error": "boom"})] * 4, artist_mbids=muld)
        fs.add_fault("lastfm", "/", Reply(200, "<lfm status='failed'>"), artist="Askyel", method="artist.getsimilar")
        store = new_store()
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs), clock=clock)
        row("partial failures (LB 500 x4, Last.fm garbage)", s.http, clock.monotonic() - t0,
            f"{s.artists['matched']} matched, {s.artists['failed']} failed", 10)
        t0 = clock.monotonic()
        s = enrich(store, settings=settings(fs), clock=clock)
        row("  then rerun", s.http, clock.monotonic() - t0, f"{s.artists['matched']} matched", 10)

    # Politeness cost per artist: three hosts at the default rates.
    clock = FakeClock()
    with FakeServices(clock=clock) as mb, FakeServices(clock=clock) as lb, FakeServices(clock=clock) as lfm:
        urls = {"musicbrainz": mb.urls["musicbrainz"], "listenbrainz": lb.urls["listenbrainz"], "lastfm": lfm.urls["lastfm"]}
        st = EnrichSettings().with_(base_urls=urls, rates=dict(DEFAULT_RATES), lastfm_api_key=lfm.lastfm_key)
        store = new_store()
        t0 = clock.monotonic()
        s = enrich(store, settings=st, clock=clock)
        el = clock.monotonic() - t0
        row(f"polite rate, 3 hosts: {el / 10:.2f} s per artist", s.http, el, f"{s.artists['matched']} matched", 10)

    print("| scenario | artists | requests | retried | cached | 304 | stale | fake s | outcome |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
