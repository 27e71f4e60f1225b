"""Attack 4: malformed parameters and odd tags never make a server error; HEAD works where GET does."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from _security_support import API_KEY, PASSWORD, USER

SUB = {"u": USER, "p": PASSWORD}


@pytest.fixture
def client(make_client):
    return make_client()


def _envelope(r) -> ET.Element:
    assert r.status_code == 200, r.text[:300]
    return ET.fromstring(r.content)  # raises when the XML is not well formed


def test_cover_art_of_a_non_ascii_digit(client):
    root = _envelope(client.get("/rest/getCoverArt", params={"id": "\u00b2", **SUB}))  # %C2%B2
    assert root.get("status") == "failed" and root.find("{*}error").get("code") == "70"


def test_scrobble_with_a_huge_time(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    root = _envelope(client.get("/rest/scrobble", params={"id": tid, "time": "9" * 400, **SUB}))
    assert root.get("status") == "failed" and "milliseconds" in root.find("{*}error").get("message")
    root = _envelope(client.get("/rest/scrobble", params={"id": tid, "time": "1700000000000", **SUB}))
    assert root.get("status") == "ok"


def test_long_seed_is_a_parameter_error(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    r = client.get(f"/api/tracks/{tid}/similar", params={"seed": "a" * 300}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 422 and r.json()["error"]["type"] == "ParameterError"


def test_control_characters_in_tags_stay_well_formed_xml(client, sec_library):
    bad = next(t for t in sec_library["tracks"] if "\x01" in t["title"])
    root = _envelope(client.get("/rest/getSong", params={"id": bad["track_id"], **SUB}))
    assert root.find("{*}song").get("title") == "bad\ufffdtitle"
    for _ in range(5):  # random songs: the bad title is among 24 tracks, asked for all of them
        root = _envelope(client.get("/rest/getRandomSongs", params={"size": 50, **SUB}))
        assert len(root.find("{*}randomSongs")) == len(sec_library["tracks"])
    r = client.get("/rest/getSong", params={"id": bad["track_id"], "f": "json", **SUB})
    assert r.json()["subsonic-response"]["song"]["title"] == "bad\x01title"  # JSON carries it escaped, unchanged


def test_head_wherever_get_works(client, sec_library):
    tid = sec_library["tracks"][0]["track_id"]
    auth = {"X-API-Key": API_KEY}
    for path in (f"/api/tracks/{tid}/audio", "/api/artists", f"/api/tracks/{tid}", "/api/health"):
        g, h = client.get(path, headers=auth), client.head(path, headers=auth)
        assert h.status_code == g.status_code == 200, path
        assert h.content == b"" and h.headers["content-type"] == g.headers["content-type"]
    h = client.head(f"/api/tracks/{tid}/audio", headers={**auth, "Range": "bytes=0-9"})
    assert h.status_code == 206 and h.headers["content-length"] == "10"
    h = client.head("/rest/stream", params={"id": tid, **SUB})
    assert h.status_code == 200 and h.headers["content-type"] == "audio/wav" and h.content == b""
    assert client.head("/rest/ping.view", params=SUB).status_code == 200
    spec = client.get("/openapi.json", headers=auth).json()
    assert all("head" not in ops for ops in spec["paths"].values())  # HEAD is implied, not documented twice


def test_large_form_bodies_are_refused(client):
    r = client.post("/rest/ping", data={"u": USER, "p": PASSWORD, "pad": "x" * 200_000})
    assert r.status_code == 413
