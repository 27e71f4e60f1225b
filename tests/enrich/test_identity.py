"""Artist identity: pinned MBIDs win, searches are classified, nothing is guessed silently."""

from __future__ import annotations

from _enrich_support import add_artist

from soundalike.enrich import enrich
from soundalike.enrich.cache import load_identities, load_status
from soundalike.enrich.identity import decide, review_lines
from soundalike.enrich.musicbrainz import Candidate

A = "00000000-0000-4000-8000-00000000000a"
B = "00000000-0000-4000-8000-00000000000b"


def cand(mbid, name, score, dis="", aliases=()):
    return Candidate(mbid, name, score, dis, aliases=list(aliases))


def test_decide_exact_strong_match():
    status, best, _ = decide("  daft   PUNK ", [cand(A, "Daft Punk", 100), cand(B, "Daft Punk Tribute", 60)])
    assert status == "matched" and best.mbid == A


def test_decide_alias_counts_as_exact():
    status, best, _ = decide("Tohoshinki", [cand(A, "東方神起", 98, aliases=["TVXQ", "Tohoshinki"])])
    assert status == "matched" and best.mbid == A


def test_decide_homonyms_are_ambiguous():
    status, best, reason = decide("Nirvana", [cand(A, "Nirvana", 100, "90s US grunge band"), cand(B, "Nirvana", 100, "60s UK band")])
    assert status == "ambiguous" and "2 artists are named 'Nirvana'" in reason and "60s UK band" in reason


def test_decide_low_score_or_other_name_is_ambiguous():
    assert decide("Muldjord", [cand(A, "Muldjord", 72)])[0] == "ambiguous"
    status, best, reason = decide("Muldjord", [cand(A, "Muldjorden", 99)])
    assert status == "ambiguous" and best.mbid == A and "no candidate is named" in reason


def test_decide_nothing_found():
    assert decide("Zzz", [])[:2] == ("not_found", None)


def test_pinned_mbid_is_used_without_search(store, services, settings_for, fake_clock):
    pinned = "6b658c7e-6ec5-5aca-b9f1-d80faeeefb1c"  # the Askyel fixture
    add_artist(store, "Askyel", mbid=pinned.upper())
    s = enrich(store, sources=["musicbrainz"], settings=settings_for(services), clock=fake_clock)
    assert s.artists["matched"] == 1
    ident = next(iter(load_identities(store).values()))
    assert (ident.status, ident.origin, ident.mbid) == ("matched", "library", pinned)
    assert [r.path for r in services.requests()] == [f"/artist/{pinned}"]  # lookup only, no search


def test_pinned_unknown_mbid_404_is_not_found_with_fix(store, services, settings_for, fake_clock):
    aid = add_artist(store, "Ghost", mbid="00000000-0000-4000-8000-000000000404")
    s = enrich(store, sources=["musicbrainz", "listenbrainz"], settings=settings_for(services), clock=fake_clock)
    status, message = load_status(store)[(aid, "musicbrainz")]
    assert status == "not_found" and "fix the pinned artist_mbid" in message
    assert s.sources["musicbrainz"]["not_found"] == 1 and s.sources["listenbrainz"]["not_found"] == 1


def test_invalid_pinned_mbid_fails_clearly(store, services, settings_for, fake_clock):
    add_artist(store, "Broken", mbid="not-a-uuid")
    s = enrich(store, sources=["musicbrainz"], settings=settings_for(services), clock=fake_clock)
    assert s.artists["failed"] == 1 and services.requests() == []
    assert "not a MusicBrainz id" in s.failures[0].message and "artist_mbid" in s.failures[0].message


def test_ambiguous_is_flagged_listed_and_not_used(store, services, settings_for, fake_clock):
    services.search_pages["Nirvana"] = [
        {"id": A, "name": "Nirvana", "score": 100, "disambiguation": "[fixture] 90s US grunge band"},
        {"id": B, "name": "Nirvana", "score": 100, "disambiguation": "[fixture] 60s UK band"},
    ]
    aid = add_artist(store, "Nirvana")
    s = enrich(store, sources=["musicbrainz", "listenbrainz"], settings=settings_for(services), clock=fake_clock)
    assert s.artists["ambiguous"] == 1
    ident = load_identities(store)[aid]
    assert ident.status == "ambiguous" and ident.score == 100 and len(ident.candidates) == 2
    # No lookup with a guessed id: only the search was sent.
    assert [r.path for r in services.requests()] == ["/artist"]
    assert load_status(store)[(aid, "musicbrainz")][0] == "skipped"
    lines = review_lines([ident], {aid: "Nirvana"})
    assert lines[0].startswith("Nirvana: ambiguous") and any("60s UK band" in ln for ln in lines)
    assert any("artist_mbid" in ln for ln in lines)


def test_not_found_identity(store, services, settings_for, fake_clock):
    add_artist(store, "No Such Fixture Artist")
    s = enrich(store, sources=["musicbrainz"], settings=settings_for(services), clock=fake_clock)
    assert s.artists["not_found"] == 1 and s.identity["not_found"] == 1
