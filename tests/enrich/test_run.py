"""Whole runs on the demo library's artists against the fake services: summary, partial failures,
offline reruns, the hybrid's signal inputs and the CSV export, and the time per artist at the
polite rate (on the fake clock)."""

from __future__ import annotations

import csv

import pytest
from _fake_services import FakeClock, FakeServices, Reply

from soundalike.enrich import enrich, export_csv, signal_inputs
from soundalike.enrich.cache import ResponseCache, load_status
from soundalike.enrich.settings import DEFAULT_RATES, EnrichSettings


def test_full_run_counts(demo_store, services, settings_for, fake_clock):
    s = enrich(demo_store, settings=settings_for(services), clock=fake_clock)
    assert (s.artists["matched"], s.artists["ambiguous"], s.artists["not_found"], s.artists["failed"]) == (10, 0, 0, 0)
    assert {src: dict(c) for src, c in s.sources.items()} == {"musicbrainz": {"ok": 10}, "listenbrainz": {"ok": 10},
                                                                "lastfm": {"ok": 10}}
    # 10 artists x (search + lookup + ListenBrainz + 2 Last.fm) = 50 requests, nothing retried.
    assert (s.http["requests"], s.http["retried"], s.http["cached"]) == (50, 0, 0)
    assert s.fixture_responses == 50


def test_partial_failures_reported_per_artist_rest_goes_on(demo_store, services, settings_for, fake_clock):
    # ListenBrainz fails for one artist (500 every time); Last.fm answers garbage for another.
    ids = {a.name: a.artist_id for a in demo_store.artists()}
    from _fake_services import _load
    muld = _load("demo_artists.json")["artists"]["Muldjord"]["mbid"]
    services.add_fault("listenbrainz", "/similar-artists/json", *[Reply(500, {"error": "boom"})] * 4, artist_mbids=muld)
    services.add_fault("lastfm", "/", Reply(200, "<lfm status='failed'>"), artist="Askyel", method="artist.getsimilar")
    s = enrich(demo_store, settings=settings_for(services), clock=fake_clock)
    assert s.artists["failed"] == 2 and s.artists["matched"] == 8
    assert {(f.artist, f.source, f.kind) for f in s.failures} == {("Muldjord", "listenbrainz", "http"),
                                                                  ("Askyel", "lastfm", "malformed")}
    st = load_status(demo_store)
    assert st[(ids["Muldjord"], "listenbrainz")][0] == "failed" and st[(ids["Muldjord"], "musicbrainz")][0] == "ok"
    assert s.sources["listenbrainz"] == {"ok": 9, "failed": 1}
    # 50 answers + 3 retries of the 500; the failures were not cached, the rest was.
    assert (s.http["requests"], s.http["retried"]) == (53, 3)
    assert ResponseCache(demo_store).count() == 48
    # A rerun fetches only what failed.
    before = len(services.requests())
    s2 = enrich(demo_store, settings=settings_for(services), clock=fake_clock)
    assert s2.artists["matched"] == 10 and (s2.http["requests"], s2.http["cached"]) == (2, 48)
    assert len(services.requests()) - before == 2


def test_offline_rerun_sends_nothing(demo_store, services, settings_for, fake_clock):
    enrich(demo_store, settings=settings_for(services), clock=fake_clock)
    n = len(services.requests())
    s = enrich(demo_store, settings=settings_for(services, expiry_s=0.0), clock=fake_clock, offline=True)
    assert len(services.requests()) == n
    assert s.artists["matched"] == 10 and (s.http["requests"], s.http["cached"]) == (0, 50) and s.offline


def test_offline_with_empty_cache_fails_per_artist(demo_store, settings_for, fake_clock):
    with FakeServices() as fs:
        s = enrich(demo_store, settings=settings_for(fs), clock=fake_clock, offline=True)
        assert fs.requests() == []
    assert s.artists["failed"] == 10 and s.identity["failed"] == 10
    # Identities need the (uncached) search; Last.fm, asked by name, fails the same way.
    assert {(f.source, f.kind) for f in s.failures} == {("identity", "identity"), ("lastfm", "offline")}
    assert "--offline" in s.failures[0].message


def test_lastfm_without_key_is_skipped(demo_store, services, settings_for, fake_clock):
    s = enrich(demo_store, sources=["lastfm"], settings=settings_for(services, lastfm_api_key=None), clock=fake_clock)
    assert s.sources["lastfm"] == {"skipped": 10}
    assert all(r.service == "musicbrainz" for r in services.requests())  # identities only
    st = load_status(demo_store)
    assert "LASTFM_API_KEY" in next(iter(st.values()))[1]


def test_lastfm_bad_key_stops_lastfm_for_the_run(demo_store, services, settings_for, fake_clock):
    s = enrich(demo_store, sources=["lastfm"], settings=settings_for(services, lastfm_api_key="wrong"), clock=fake_clock)
    assert s.sources["lastfm"] == {"failed": 10}
    assert len(services.requests("lastfm")) == 1  # asked once, then stopped asking


def test_signal_inputs_from_the_cache(demo_store, services, settings_for, fake_clock):
    settings = settings_for(services)
    enrich(demo_store, settings=settings, clock=fake_clock)
    ids = {a.name: a.artist_id for a in demo_store.artists()}
    sig = signal_inputs(demo_store, settings=settings)
    assert set(sig) == {"tags", "refs", "graph", "coverage"}
    assert sig["coverage"] == {"tags": 10, "refs": 10, "graph": 8, "artists": 10}
    # Tags: MusicBrainz votes and Last.fm counts, normalised to the artist's top tag.
    assert sig["tags"][ids["Muldjord"]] == {"metal": 1.0, "death metal": 0.5, "heavy metal": pytest.approx(0.333333)}
    # Graph: fixture relations between library artists, and the shared outside band.
    graph = {(a, b, k): w for a, b, k, w in sig["graph"]}
    pair = tuple(sorted((ids["Askyel"], ids["Maxstack (Max McCracken)"])))
    assert graph[(*pair, "collaboration")] == 1.0
    metal = tuple(sorted((ids["Muldjord"], ids["Obsidian Shell"])))
    assert graph[(*metal, "shared member of band")] == 0.5
    assert all(a < b for a, b, _, _ in sig["graph"])
    # Refs: only library artists by default, scores in (0, 1], best neighbour 1.0.
    refs = {(a, b): s for a, b, s in sig["refs"]}
    assert refs[(ids["Askyel"], ids["Maxstack (Max McCracken)"])] == 1.0
    assert all(isinstance(b, int) and 0 < s <= 1 for _, b, s in sig["refs"])
    outside = signal_inputs(demo_store, settings=settings, include_outside=True)["refs"]
    assert any(isinstance(b, str) and b.startswith("Fixture Outside Artist") for _, b, _ in outside)


def test_signal_inputs_ignore_ambiguous_identities(store, services, settings_for, fake_clock):
    from _enrich_support import add_artist

    services.search_pages["Askyel"] = [{"id": "6b658c7e-6ec5-5aca-b9f1-d80faeeefb1c", "name": "Askyel", "score": 60}]
    add_artist(store, "Askyel")
    settings = settings_for(services, lastfm_api_key=None)
    enrich(store, settings=settings, clock=fake_clock)
    sig = signal_inputs(store, settings=settings)
    assert sig["tags"] == {} and sig["refs"] == [] and sig["graph"] == []


def test_signal_inputs_on_a_database_without_enrichment(store):
    sig = signal_inputs(store)
    assert (sig["tags"], sig["refs"], sig["graph"]) == ({}, [], [])


def test_export_csv_formats(demo_store, services, settings_for, fake_clock, tmp_path):
    settings = settings_for(services)
    enrich(demo_store, settings=settings, clock=fake_clock)
    paths = export_csv(demo_store, tmp_path / "csv", settings=settings)
    with open(paths["refs"], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["artist", "similar_artist", "rank_or_score"]
    assert ["Askyel", "Maxstack (Max McCracken)", "1"] in rows
    assert any(r[1].startswith("Fixture Outside Artist") for r in rows[1:])
    with open(paths["graph"], newline="", encoding="utf-8") as fh:
        graph = list(csv.reader(fh))
    assert graph[0] == ["artist_a", "artist_b", "kind", "weight"] and ["Muldjord", "Obsidian Shell", "shared member of band", "0.5"] in graph
    with open(paths["tags"], newline="", encoding="utf-8") as fh:
        tags = list(csv.reader(fh))
    assert tags[0] == ["artist", "tag", "weight"] and ["Muldjord", "metal", "1"] in tags


def test_time_per_artist_at_the_polite_rate(demo_store, settings_for):
    """Three separate hosts at the default rates (MusicBrainz 1/s, ListenBrainz 1/s, Last.fm 4/s):
    the fake clock shows the time politeness costs per artist (network latency excluded)."""
    clock = FakeClock()
    with FakeServices(clock=clock) as mb, FakeServices(clock=clock) as lb, FakeServices(clock=clock) as lfm:
        urls = {"musicbrainz": mb.urls["musicbrainz"], "listenbrainz": lb.urls["listenbrainz"], "lastfm": lfm.urls["lastfm"]}
        settings = EnrichSettings().with_(base_urls=urls, rates=dict(DEFAULT_RATES), lastfm_api_key=lfm.lastfm_key)
        t0 = clock.monotonic()
        s = enrich(demo_store, settings=settings, clock=clock)
        elapsed = clock.monotonic() - t0
        mb_times = [r.t for r in mb.requests()]
    assert s.artists["matched"] == 10 and s.http["requests"] == 50
    assert min(b - a for a, b in zip(mb_times, mb_times[1:])) >= 1.0 - 1e-9
    # Two MusicBrainz requests per artist at 1/s bound the run: about 2 s per artist.
    per_artist = elapsed / 10
    assert 1.8 <= per_artist <= 2.1, per_artist
