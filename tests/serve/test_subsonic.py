"""Subsonic / OpenSubsonic endpoints, driven by real client libraries (py-opensonic, py-sonic)
against a real uvicorn server on a free loopback port."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import httpx
import pytest
from ci_support import import_or_skip

libopensonic = import_or_skip("libopensonic")
libsonic = import_or_skip("libsonic")

USER, PASSWORD, API_KEY = "listener", "s3cret pässword", "test-api-key-123"  # as in conftest.py


@pytest.fixture(scope="module")
def os_conn(subsonic_server):
    conn = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=subsonic_server.port)
    yield conn
    conn.cleanup()


@pytest.fixture(scope="module")
def ids(subsonic_server) -> dict:
    """Artist → (artist id, [song ids]) via the plain JSON API of the same server."""
    out = {}
    # with credentials configured, /api needs them too (here the API key header)
    with httpx.Client(base_url=subsonic_server.url, headers={"X-API-Key": API_KEY}) as c:
        for a in c.get("/api/artists").json()["artists"]:
            tracks = c.get(f"/api/artists/{a['artist_id']}").json()["tracks"]
            out[a["name"]] = (str(a["artist_id"]), [t["track_id"] for t in tracks])
    return out


def test_opensonic_browse(os_conn, ids):
    assert os_conn.ping() is True
    exts = {e.name: e.versions for e in os_conn.get_open_subsonic_extensions()}
    assert exts["sonicSimilarity"] == [1] and "apiKeyAuthentication" in exts
    assert os_conn.get_license()["license"]["valid"] is True
    artists = os_conn.get_artists()
    names = {a.name for idx in artists.index for a in idx.artist}
    assert names == set(ids)
    aid, songs = ids["Chirpers"]
    artist = os_conn.get_artist(aid)
    assert artist.name == "Chirpers" and len(artist.album) == 1
    album = os_conn.get_album(artist.album[0].id)
    assert album.id.startswith("al-") and {s.id for s in album.song} == set(songs)
    song = os_conn.get_song(songs[0])
    assert song.artist == "Chirpers" and song.artist_id == aid and song.genre == "electronic"
    found = os_conn.search3("chirp")
    assert [a.name for a in found.artist] == ["Chirpers"] and len(found.song) == 3
    assert len(os_conn.search3("").song) == 12  # OpenSubsonic: empty query lists everything


def test_opensonic_similarity(os_conn, ids):
    aid, songs = ids["Low Tones"]
    info = os_conn.get_artist_info2(aid, count=2)
    assert len(info.similar_artist) == 2 and aid not in [a.id for a in info.similar_artist]
    similar = os_conn.get_similar_songs2(songs[0], count=5)
    assert len(similar) == 5 and songs[0] not in [s.id for s in similar]
    assert similar[0].artist == "Low Tones"
    matches = os_conn.get_sonic_similar_tracks(songs[0], count=4)
    assert len(matches) == 4 and songs[0] not in [m.entry.id for m in matches]
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    end = ids["Chirpers"][1][0]
    path = os_conn.find_sonic_path(songs[0], end, count=5)
    assert [m.entry.id for m in path][0] == songs[0] and path[-1].entry.id == end and len(path) == 5
    assert path[0].similarity == 1.0


def test_opensonic_api_key_and_stream_with_range(subsonic_server, ids):
    conn = libopensonic.Connection("http://127.0.0.1", api_key=API_KEY, port=subsonic_server.port,
                                   use_get=True, use_views=False)
    try:
        assert conn.ping() is True
        song = ids["High Tones"][1][0]
        full = httpx.get(f"{subsonic_server.url}/rest/stream", params={"id": song, "apiKey": API_KEY})
        assert full.status_code == 200 and full.content[:4] == b"RIFF"
        part = httpx.get(f"{subsonic_server.url}/rest/stream.view", params={"id": song, "apiKey": API_KEY},
                         headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content == full.content[4:12]
        assert part.headers["content-range"].startswith(f"bytes 4-11/{len(full.content)}")
    finally:
        conn.cleanup()


def test_pysonic_token_and_legacy_auth(subsonic_server, ids):
    # py-sonic 1.2.0's useGET=True path references urllib2 (a Python 2 leftover), so it POSTs.
    for legacy in (False, True):
        conn = libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=subsonic_server.port, legacyAuth=legacy)
        assert conn.ping() is True
        aid, songs = ids["The Noisemakers"]
        res = conn.getSimilarSongs2(aid, count=3)  # seed = an artist id: all its songs are seeds
        assert res["status"] == "ok" and len(res["similarSongs2"]["song"]) == 3
        assert set(songs).isdisjoint(s["id"] for s in res["similarSongs2"]["song"])
        info = conn.getArtistInfo2(aid, count=3)
        assert len(info["artistInfo2"]["similarArtist"]) == 3
        assert conn.search3("noise")["searchResult3"]["artist"][0]["id"] == aid


def test_pysonic_wrong_password_is_error_40(subsonic_server):
    conn = libsonic.Connection("http://127.0.0.1", USER, "wrong", port=subsonic_server.port)
    with pytest.raises(libsonic.errors.CredentialError):
        conn.ping()


def _rest(server, endpoint: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}/rest/{endpoint}", params=params)


def test_xml_format_and_auth_errors(subsonic_server, ids):
    salt = "abc123"
    token = hashlib.md5((PASSWORD + salt).encode()).hexdigest()
    r = _rest(subsonic_server, "getSong.view", id=ids["Chirpers"][1][0], u=USER, t=token, s=salt)
    root = ET.fromstring(r.content)
    ns = "{http://subsonic.org/restapi}"
    assert root.tag == ns + "subsonic-response" and root.get("status") == "ok" and root.get("openSubsonic") == "true"
    assert root.get("type") == "soundalike" and root.find(ns + "song").get("artist") == "Chirpers"
    cases = [
        ({"u": USER, "p": "nope", "f": "json"}, 40),
        ({"u": USER, "p": "enc:" + PASSWORD.encode().hex(), "apiKey": API_KEY, "f": "json"}, 43),
        ({"apiKey": "wrong", "f": "json"}, 44),
        ({"f": "json"}, 10),
    ]
    for params, code in cases:
        doc = _rest(subsonic_server, "ping", **params).json()["subsonic-response"]
        assert doc["status"] == "failed" and doc["error"]["code"] == code, (params, doc)
    ok = _rest(subsonic_server, "ping", u=USER, p="enc:" + PASSWORD.encode().hex(), f="json").json()
    assert ok["subsonic-response"]["status"] == "ok"
    missing = _rest(subsonic_server, "getSong", id="f" * 64, apiKey=API_KEY, f="json").json()["subsonic-response"]
    assert missing["error"]["code"] == 70


def test_post_form_multiple_seeds_and_artist_gap(subsonic_server, ids):
    seeds = [ids["Low Tones"][1][0], ids["High Tones"][1][0]]
    r = httpx.post(f"{subsonic_server.url}/rest/getSonicSimilarTracks.view",
                   data={"id": seeds, "count": "4", "artistGap": "3", "apiKey": API_KEY, "f": "json"})
    doc = r.json()["subsonic-response"]
    assert doc["status"] == "ok"
    entries = [m["entry"] for m in doc["sonicMatch"]]
    assert len(entries) == 4 and not set(seeds) & {e["id"] for e in entries}
    assert len({e["artistId"] for e in entries}) == 4  # no artist repeats within 3
