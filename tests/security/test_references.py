"""Attacks 1 and 2: a track reference from the network is never a path, costs a bounded amount of
work whatever the library's size, and is refused above 256 characters."""

from __future__ import annotations

import hashlib

import pytest
from _security_support import API_KEY, USER, PASSWORD, FileAccess

AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def client(make_client):
    return make_client()


def _ask(client, tid: str, ref: str, where: str):
    if where == "seed":
        return client.get(f"/api/tracks/{tid}/similar", params={"seed": ref}, headers=AUTH)
    if where == "start":
        return client.get("/api/path", params={"start": ref, "end": tid}, headers=AUTH)
    return client.get("/api/path", params={"start": tid, "end": ref}, headers=AUTH)


@pytest.mark.parametrize("where", ["seed", "start", "end"])
def test_server_paths_are_never_read(client, sec_library, tmp_path, monkeypatch, where):
    """An existing file and a missing one get the same answer, and neither is opened or even stat'ed."""
    tid = sec_library["tracks"][0]["track_id"]
    secret = tmp_path / "canary-secret.txt"
    secret.write_text("not music")
    missing = tmp_path / "canary-missing.txt"
    library_file = sec_library["tracks"][1]["path"]  # a stored track's own path is no reference over HTTP either
    spy = FileAccess(monkeypatch, "canary-")
    answers = {}
    for ref in (str(secret), str(missing)):
        r = _ask(client, tid, ref, where)
        answers[ref] = (r.status_code, r.json()["error"]["type"], r.json()["error"]["message"].replace(ref, "<ref>"))
    assert spy.seen == []
    a, b = answers.values()
    assert a == b and a[0] == 404 and a[1] == "UnknownTrackError"
    assert "path" not in a[2].split("(tried", 1)[1]  # the answer does not claim to have tried a path
    r = _ask(client, tid, library_file, where)
    assert r.status_code == 404


def test_home_relative_paths_are_not_expanded(client, sec_library, monkeypatch):
    tid = sec_library["tracks"][0]["track_id"]
    spy = FileAccess(monkeypatch, ".ssh")
    r = _ask(client, tid, "~/.ssh/id_rsa", "seed")
    assert r.status_code == 404 and spy.seen == []


def test_long_references_are_refused(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    for ref in ("a" * 300, " - " * 4000, "/" + "x" * 300):
        r = _ask(client, tid, ref, "seed")
        assert r.status_code == 422, (ref[:10], r.text[:200])
        assert "256" in r.json()["error"]["message"]
    assert _ask(client, tid, "a" * 256, "seed").status_code == 404  # at the cap: an ordinary unknown reference


def test_seed_lists_are_capped(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    r = client.get(f"/api/tracks/{tid}/similar", params={"seed": [f"x{i}" for i in range(60)]}, headers=AUTH)
    assert r.status_code == 422 and "at most 50" in r.json()["error"]["message"]
    r = client.get("/rest/getSimilarSongs2", params={"id": [tid] * 60, "u": USER, "p": PASSWORD, "f": "json"})
    assert "at most 50" in r.json()["subsonic-response"]["error"]["message"]


def test_references_still_resolve(client, sec_library):
    t = sec_library["tracks"][5]
    tid = sec_library["tracks"][0]["track_id"]
    for ref in (t["track_id"][:8], f"{t['artist']} - {t['title']}"):
        r = client.get(f"/api/tracks/{tid}/similar", params={"seed": ref, "include_seeds": True, "k": 30}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert t["track_id"] in r.json()["query"]["track_ids"]


def test_unknown_reference_suggests_close_tracks(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    r = _ask(client, tid, "Artist 3 - Glwo", "seed")
    msg = r.json()["error"]["message"]
    assert r.status_code == 404 and "Closest: Artist 3 - Glow" in msg


def _catalogue(n: int):
    from soundalike.store import Track

    return [Track(hashlib.sha256(str(i).encode()).hexdigest(), f"/m/{i}.wav", i // 10, f"Artist {i // 10:05d}",
                  f"Track {i % 10}", None, 30.0, None, ()) for i in range(n)]


@pytest.mark.parametrize("ref", ["f" * 128, "Artist 00042 - Trakc 3", " - " * 80, "zz" * 100])
def test_unknown_reference_work_does_not_grow_with_the_library(ref):
    """The work of one unknown reference is counted (normalisations, edit-similarity comparisons) on a
    library of 2,000 and one of 20,000 tracks: the same bounded amount (no time is measured)."""
    import difflib

    from soundalike.errors import UnknownTrackError
    from soundalike.library import artist_key
    from soundalike.query import refs, suggest
    from soundalike.query.suggest import RERANK

    work = []
    for n in (2_000, 20_000):
        calls = {"key": 0, "ratio": 0}

        def key(s: str) -> str:
            calls["key"] += 1
            return artist_key(s)

        lookup = suggest.TrackLookup(_catalogue(n), key=key, label=refs.track_label, title=lambda t: t.title)
        calls["key"] = 0
        real_ratio = difflib.SequenceMatcher.ratio

        def ratio(self):
            calls["ratio"] += 1
            return real_ratio(self)

        difflib.SequenceMatcher.ratio = ratio
        try:
            with pytest.raises(UnknownTrackError):
                refs.resolve_track(lookup.tracks, ref, paths=False, lookup=lookup)
        finally:
            difflib.SequenceMatcher.ratio = real_ratio
        work.append(dict(calls))
    small, large = work
    assert large == small  # independent of the library's size
    assert large["ratio"] <= RERANK
    assert large["key"] <= 2 * ref.count(" - ") + 1  # linear in the reference (each " - " split once)
