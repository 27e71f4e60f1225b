"""A player's walk through soundalike's Subsonic server with the real py-opensonic client:
list → pick → stream → getSonicSimilarTracks → findSonicPath, plus album lists, genres,
random songs, cover art and scrobble."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from player_support import API_KEY, PASSWORD, PNG, USER

pytestmark = pytest.mark.requires_import("libopensonic")


@pytest.fixture(scope="module")
def conn(browse_server):
    import libopensonic

    c = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=browse_server[1])
    yield c
    c.cleanup()


def _body(conn, res) -> bytes:
    """Read an aiohttp response body on the connection's own event loop."""
    return asyncio.run_coroutine_threadsafe(res.read(), conn._loop).result()


def test_browse_stream_similar_path(conn, player_library):
    # list: the folder index names every artist
    indexes = conn.get_indexes()
    artists = {a.name: a.id for idx in indexes.index for a in idx.artist}
    assert set(artists) == {r["artist"] for r in player_library["rows"]}
    # pick: artist folder -> album folders -> songs
    bach = conn.get_music_directory(artists["Johann Sebastian Bach"])
    assert bach.name == "Johann Sebastian Bach" and [c.is_dir for c in bach.child] == [True]
    album = conn.get_music_directory(bach.child[0].id)
    assert album.name == "Johann Sebastian Bach Demo" and len(album.child) == 3
    song = album.child[0]
    assert not song.is_dir and song.artist == "Johann Sebastian Bach" and song.cover_art == song.id
    # stream: the original bytes
    data = _body(conn, conn.stream(song.id))
    by_title = {r["title"]: r for r in player_library["rows"]}
    assert data == (player_library["base"] / by_title[song.title]["path"]).read_bytes()
    # similar: the sonicSimilarity extension on the picked song
    matches = conn.get_sonic_similar_tracks(song.id, count=4)
    assert len(matches) == 4 and song.id not in [m.entry.id for m in matches]
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    # path: from the picked song to a song of another artist
    other = conn.get_music_directory(conn.get_music_directory(artists["Askyel"]).child[0].id).child[0]
    path = conn.find_sonic_path(song.id, other.id, count=4)
    assert [m.entry.id for m in path][0] == song.id and path[-1].entry.id == other.id and len(path) == 4


def test_album_lists_genres_random(conn, player_library):
    rows = player_library["rows"]
    albums = conn.get_album_list2("alphabeticalByName", size=50)
    names = [a.name for a in albums]
    assert names == sorted(names, key=str.casefold) and set(names) == {r["album"] for r in rows}
    assert [a.name for a in conn.get_album_list2("alphabeticalByName", size=2, offset=1)] == names[1:3]
    by_artist = [a.artist for a in conn.get_album_list2("alphabeticalByArtist", size=50)]
    assert by_artist == sorted(by_artist, key=str.casefold)
    assert len(conn.get_album_list2("random", size=3)) == 3
    classical = {a.name for a in conn.get_album_list2("byGenre", genre="baroque", size=50)}
    assert classical == {r["album"] for r in rows if r["genre"] == "baroque"}
    genres = {g.value: (g.song_count, g.album_count) for g in conn.get_genres()}
    want = {}
    for r in rows:
        n, albs = want.get(r["genre"], (0, set()))
        want[r["genre"]] = (n + 1, albs | {r["album"]})
    assert genres == {g: (n, len(a)) for g, (n, a) in want.items()}
    rnd = conn.get_random_songs(size=5, genre="baroque")
    assert len(rnd) == min(5, want["baroque"][0]) and {s.genre for s in rnd} == {"baroque"}
    assert len({s.id for s in conn.get_random_songs(size=500)}) == len(rows)


def test_cover_art_and_scrobble(conn, browse_server, player_library):
    import libopensonic

    covered = next(r for r in player_library["rows"] if player_library["base"] / r["path"] == player_library["cover"])
    song = next(s for s in conn.search3(covered["title"]).song if s.title == covered["title"])
    assert _body(conn, conn.get_cover_art(song.id)) == PNG
    assert _body(conn, conn.get_cover_art(song.album_id)) == PNG  # the album's cover: a song's picture
    bare = next(s for s in conn.get_random_songs(size=500) if s.album_id != song.album_id)
    with pytest.raises(libopensonic.errors.DataNotFoundError, match="no file"):
        conn.get_cover_art(bare.id)
    # scrobble is accepted, and feeds the "recent" and "frequent" album lists
    assert conn.get_album_list2("recent") == []
    assert conn.scrobble(bare.id) is True
    assert conn.scrobble(song.id) is True and conn.scrobble(song.id) is True
    assert [a.id for a in conn.get_album_list2("frequent")] == [song.album_id, bare.album_id]
    with pytest.raises(libopensonic.errors.DataNotFoundError):
        conn.scrobble("f" * 64)


def test_xml_genres_and_bad_list_type(browse_server):
    url = browse_server[0]
    r = httpx.get(f"{url}/rest/getGenres.view", params={"apiKey": API_KEY})
    ns = "{http://subsonic.org/restapi}"
    genres = ET.fromstring(r.content).find(ns + "genres").findall(ns + "genre")
    assert {g.text for g in genres} >= {"baroque", "electronic"} and all(g.get("songCount") for g in genres)
    doc = httpx.get(f"{url}/rest/getAlbumList2", params={"apiKey": API_KEY, "f": "json", "type": "best"}).json()
    err = doc["subsonic-response"]["error"]
    assert err["code"] == 0 and "alphabeticalByName" in err["message"]
    doc = httpx.get(f"{url}/rest/getMusicDirectory", params={"apiKey": API_KEY, "f": "json", "id": "al-0"}).json()
    assert doc["subsonic-response"]["error"]["code"] == 70
