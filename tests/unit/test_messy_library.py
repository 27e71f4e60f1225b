"""Names and artists of a messy library on every surface (issue 24): the CLI (text and JSON),
playlists and m3u8, the page's API and Subsonic show the same title and artist credit; the
artist rule can change without analysing audio, ids of unchanged artists stay; a store written
before the naming rules is upgraded from its files' tags."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import _messy_library as messy
from soundalike.cli import app
from soundalike.store import Store

API_KEY = "naming-test-key"


def _add_vectors(db: Path) -> None:
    """Seeded vectors, one cluster per artist (the surfaces are tested, not the analysis)."""
    rng = np.random.default_rng(0)
    with Store(db) as store:
        store.register_model(model_key="tv", backend="test-vec", config={"default_layer": 0}, weights_sha256=None,
                             weights_kind="none", dim=8, n_layers=1)
        centres: dict[int, np.ndarray] = {}
        with store.transaction() as tx:
            for t in store.tracks():
                c = centres.setdefault(t.artist_id, rng.normal(size=8) * 3)
                store.put_embeddings(tx, track_id=t.track_id, model_key="tv",
                                     vectors=(c + rng.normal(size=8)).reshape(1, 1, 8))


def _ingest(root: Path, db: Path, *args: str) -> None:
    r = CliRunner().invoke(app, ["ingest", str(root), "--db", str(db), "--json", "--jobs", "1", *args])
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("messy")
    root = messy.build(base / "Music").resolve()
    db = base / "library.db"
    _ingest(root, db)
    _add_vectors(db)
    return {"root": root, "db": db, "base": base}


def _cli(library: dict, *args: str) -> str:
    r = CliRunner().invoke(app, [*args, "--db", str(library["db"])], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    return r.stdout


def _by_rel(library: dict, docs: list[dict]) -> dict[str, dict]:
    return {str(Path(d["path"]).relative_to(library["root"])): d for d in docs}


def test_cli_tracks_and_status_show_one_naming_rule(library):
    docs = _by_rel(library, json.loads(_cli(library, "tracks", "--json")))
    assert set(docs) == set(messy.EXPECTED)
    for rel, (_artist, credit, title, _source) in messy.EXPECTED.items():
        assert (docs[rel]["artist"], docs[rel]["title"]) == (credit, title), rel
    # grouped under the primary artist: the feat. credit shares Daft Punk's id, AC/DC is one artist
    assert docs["Daft Punk/Random Access/01 Get Lucky.mp3"]["artist_id"] == docs[
        "Daft Punk/Random Access/02 Contact.flac"]["artist_id"]
    status = json.loads(_cli(library, "status", "--json"))
    assert status["artist_rule"] == "auto" and status["artist_sources"] == messy.COUNTS["auto"]
    assert {a["artist"] for a in status["artists"]} == messy.ARTISTS["auto"]
    text = _cli(library, "tracks")
    assert "Eureka" in text and "Hyperballad" in text and "–" not in text  # no nameless track
    assert "Artists by rule auto: 7 mixed-album, 4 albumartist, 4 folder, 2 artist" in _cli(library, "status")


@pytest.mark.parametrize("ref, rel", [
    ("Askyel - 03 Eureka", "Askyel/Pilot/03 Eureka.flac"),
    ("askyel - eureka", "Askyel/Pilot/03 Eureka.flac"),
    ("ACDC - tnt", "AC_DC/Highway/02 T.N.T..flac"),
    ("AC/DC - Intro", "AC_DC/Highway/01 Intro.flac"),
    ("Sigur Ros - Hoppipolla", "Sigur Rós/Takk/02 Hoppípolla.ogg"),
    ("Kestrel ft. Nova - Tide", "Various Artists/Summer Hits/02 Tide.flac"),  # the credit shown
    ("Kestrel - Tide", "Various Artists/Summer Hits/02 Tide.flac"),  # or its artist
    ("Doug Kaufman - 02 Heroes Rite", "Wesnoth Project/Wesnoth OST/02 Heroes Rite.ogg"),
])
def test_similar_by_artist_title_lists_named_neighbours(library, ref, rel):
    doc = json.loads(_cli(library, "similar", "--track", ref, "--json", "-k", "5"))
    path = str(library["root"] / rel)
    tid = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert doc["query"]["track_id"] == tid
    assert all(nb["title"] and nb["artist"] for nb in doc["neighbours"])
    text = _cli(library, "similar", "--track", ref, "-k", "3")
    assert tid[:12] not in text and all(nb["title"] in text for nb in doc["neighbours"][:3])


def test_a_title_of_several_artists_names_no_track(library):
    r = CliRunner().invoke(app, ["similar", "--track", "Intro", "--db", str(library["db"])])
    assert r.exit_code == 1 and "No track 'Intro'" in r.output


def test_playlist_and_m3u8_use_the_same_names(library, tmp_path):
    out = tmp_path / "p.m3u8"
    doc = json.loads(_cli(library, "playlist", "Askyel - Eureka", "-n", "4", "--json"))
    assert doc["seeds"][0]["name"] == "Askyel - Eureka"
    _cli(library, "playlist", "Askyel - Eureka", "-n", "4", "--out", str(out))
    extinf = [line.split(",", 1)[1] for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("#EXTINF")]
    assert extinf == [f"{t['artist']} - {t['title']}" for t in doc["tracks"]]
    expected = messy.EXPECTED
    assert extinf == ["{1} - {2}".format(*expected[str(Path(t["path"]).relative_to(library["root"]))])
                      for t in doc["tracks"]]


def test_page_api_and_subsonic_show_the_same_names(library):
    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    tracks = {t.track_id: t for t in Store(library["db"], readonly=True).tracks()}
    settings = Settings(db=library["db"], subsonic_user="u", subsonic_password="p", api_key=API_KEY)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        for rel, (_artist, credit, title, _source) in messy.EXPECTED.items():
            tid = hashlib.sha256((library["root"] / rel).read_bytes()).hexdigest()
            page = client.get(f"/api/tracks/{tid}", params={"apiKey": API_KEY},
                              headers={"X-API-Key": API_KEY}).json()
            assert (page["artist"], page["title"]) == (credit, title), rel
            song = client.get("/rest/getSong", params={"id": tid, "apiKey": API_KEY, "f": "json"}).json()
            song = song["subsonic-response"]["song"]
            assert (song["artist"], song["title"], song["artistId"]) == (credit, title, str(page["artist_id"])), rel
            assert tracks[tid].artist == credit
        # the page's artist view lists the soundtrack's composers apart, each track named
        artists = client.get("/api/artists", params={"limit": 100}, headers={"X-API-Key": API_KEY}).json()["artists"]
        doug = next(a for a in artists if a["name"] == "Doug Kaufman")
        detail = client.get(f"/api/artists/{doug['artist_id']}", headers={"X-API-Key": API_KEY}).json()
        assert sorted(t["title"] for t in detail["tracks"]) == ["Battle Epic", "Heroes Rite"]
        found = client.get("/rest/search3", params={"query": "eureka", "apiKey": API_KEY, "f": "json"}).json()
        assert [s["title"] for s in found["subsonic-response"]["searchResult3"]["song"]] == ["Eureka"]


def _ids(db: Path) -> dict[str, int]:
    with Store(db, readonly=True) as s:
        return {a.name: a.artist_id for a in s.artists()}


def test_changing_the_rule_rederives_artists_and_keeps_ids(library, tmp_path, monkeypatch):
    db = tmp_path / "copy.db"
    shutil.copy(library["db"], db)
    before = _ids(db)
    # the files are gone: a re-derivation reads nothing but the store
    moved = library["base"] / "moved-away"
    (tmp_path / "empty").mkdir()
    library["root"].rename(moved)
    try:
        r = CliRunner().invoke(app, ["ingest", str(tmp_path / "empty"), "--db", str(db), "--artist-from", "album"])
    finally:
        moved.rename(library["root"])
    assert r.exit_code == 0, r.output
    assert "artist rule auto -> album: 7 track(s) changed artist" in r.output
    with Store(db, readonly=True) as s:
        assert s.artist_sources() == messy.COUNTS["album"]
        assert {a.name for a in s.artists()} == messy.ARTISTS["album"]
        # the saved calibrators were refitted on the new artists (no query refits them)
        from soundalike.query.vectors import load_vectors

        assert s.calibration_default("tv", 0)["fingerprint"] == load_vectors(s, model_key="tv").fingerprint()
    after = _ids(db)
    assert all(after[n] == before[n] for n in after if n in before)  # unchanged names keep their ids
    _ingest(library["root"], db, "--artist-from", "auto")
    assert _ids(db) == before  # the composers come back under their old ids
    # the rule is remembered: a later ingest without the option keeps it
    _ingest(library["root"], db, "--artist-from", "track")
    _ingest(library["root"], db)
    with Store(db, readonly=True) as s:
        assert s.artist_rule() == "track" and s.artist_sources() == messy.COUNTS["track"]


def _old_store(db: Path, root: Path, *, manifest: dict[str, str] | None = None) -> None:
    """A store as soundalike wrote it before the naming rules: album artist first, file stems."""
    from soundalike import _migrations
    from soundalike.library import read_tags

    con = sqlite3.connect(db)
    old = [(n, fn) for n, fn in _migrations.MIGRATIONS if n != "m124_track_naming"]
    con.execute("CREATE TABLE migrations(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied TEXT NOT NULL)")
    for name, fn in old:
        fn(con)
        con.execute("INSERT INTO migrations(name, applied) VALUES (?, 'then')", (name,))
    for rel in messy.EXPECTED:
        p = root / rel
        tags = read_tags(p)
        artist = (manifest or {}).get(rel) or tags.get("albumartist") or tags.get("artist") or rel.split("/")[0]
        key = " ".join(artist.split()).casefold()
        con.execute("INSERT OR IGNORE INTO artists(name, name_key) VALUES (?, ?)", (artist, key))
        aid = con.execute("SELECT artist_id FROM artists WHERE name_key=?", (key,)).fetchone()[0]
        tid = hashlib.sha256(p.read_bytes()).hexdigest()
        con.execute("INSERT INTO tracks(track_id, path, artist_id, title, album) VALUES (?,?,?,?,?)",
                    (tid, str(p), aid, tags.get("title"), tags.get("album")))
    # a track whose file is gone since
    con.execute("INSERT INTO tracks(track_id, path, artist_id, title) VALUES ('ab' || hex(randomblob(31)), ?, 1, NULL)",
                (str(root / "Gone/Album/07 Lost Song.flac"),))
    con.commit()
    con.close()


def test_upgrading_an_old_store_rederives_from_tags(library, tmp_path):
    db = tmp_path / "old.db"
    _old_store(db, library["root"], manifest={"Simon & Garfunkel/Bookends/01 Intro.ogg": "Paul Simon"})
    before = dict(sqlite3.connect(db).execute("SELECT name, artist_id FROM artists"))
    # a read-only open (the service) before any upgrade still shows file-name titles
    with Store(db, readonly=True) as s:
        titles = {Path(t.path).name: t.title for t in s.tracks()}
    assert titles["03 Eureka.flac"] == "Eureka" and titles["07 Lost Song.flac"] == "Lost Song"
    with Store(db) as s:
        assert "m124_track_naming" in s.migrated
        docs = {str(Path(t.path).relative_to(library["root"])): t for t in s.tracks()}
        sources = s.artist_sources()
        after = {a.name: a.artist_id for a in s.artists()}
    for rel, (artist, credit, title, _source) in messy.EXPECTED.items():
        if rel.startswith("Simon"):
            assert docs[rel].artist_name == "Paul Simon"  # the manifest's artist is kept, not the tags'
            continue
        assert (docs[rel].artist_name, docs[rel].artist, docs[rel].title) == (artist, credit, title), rel
    assert docs["Gone/Album/07 Lost Song.flac"].title == "Lost Song"
    assert sources == {"mixed-album": 7, "albumartist": 4, "folder": 4, "manifest": 1, "artist": 1, "kept": 1}
    # same names, same ids; the split soundtrack's composers are new artists
    for name in ("Askyel", "Daft Punk", "AC/DC", "Sigur Rós", "Paul Simon", "Björk", "Nova"):
        assert after[name] == before[name], name
    assert "Wesnoth Project" not in after and {"Doug Kaufman", "Mattias Westlund", "Jeremy Nicoll"} <= set(after)
