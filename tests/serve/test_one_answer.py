"""One answer everywhere (issue 13's gate): the CLI ``--json``, the Python API, the HTTP API and
Subsonic ask the one query engine and agree — same neighbours, same order, same scores (1e-6) —
for an artist and a track query at the default calibration, two explicit ones and with signals;
once more with the Faiss index forced on; ``soundalike map --json`` and ``/api/map`` agree."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from typer.testing import CliRunner

import soundalike
from soundalike.cli import app

from conftest import API_KEY, ServerThread  # tests/serve/conftest.py

ARTIST = "Chirpers"
CASES = [None, "nicdm", "csls", "signals"]  # default calibration, two explicit ones, a hybrid/explicit-signal query


def _cli(*args: str) -> dict:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _key(doc: dict) -> list[tuple]:
    return [(n["artist_id"], n.get("track_id")) for n in doc["neighbours"]]


def _same(a: dict, b: dict, what: str) -> None:
    assert _key(a) == _key(b), what
    assert [n["score"] for n in a["neighbours"]] == pytest.approx([n["score"] for n in b["neighbours"]], abs=1e-6), what
    assert a["calibration"] == b["calibration"], what


@pytest.fixture(scope="module")
def library_copy(serve_library, tmp_path_factory):
    db = tmp_path_factory.mktemp("one-answer") / "lib.db"
    shutil.copy(serve_library["db"], db)
    return db


@pytest.mark.parametrize("index", ["auto", pytest.param("faiss", marks=pytest.mark.requires_import("faiss"))])
def test_one_answer_everywhere(library_copy, monkeypatch, index):
    """Every surface, every case; with ``faiss`` every query takes its candidates from the saved index."""
    monkeypatch.setenv("SOUNDALIKE_INDEX", index)
    from soundalike.serve import Settings, create_app

    db = str(library_copy)
    with soundalike.Store(db, readonly=True) as store:
        track = next(t for t in soundalike.Engine(store).tracks if t.artist == "Low Tones")
    settings = Settings(db=library_copy, subsonic_user="listener", subsonic_password="pw", api_key=API_KEY)
    with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=60,
                                                                      headers={"X-API-Key": API_KEY}) as http:
        aid = http.get("/api/artists", params={"q": ARTIST}).json()["artists"][0]["artist_id"]
        default = http.get("/api/health").json()["default_calibration"]
        for case in CASES:
            opts, cli_opts, http_opts = {}, [], {}
            if case == "signals":
                opts["signals"], cli_opts, http_opts = ("audio", "descriptors"), ["--signals", "audio,descriptors"], \
                    {"signals": "audio,descriptors"}
            elif case is not None:
                opts["calibration"], cli_opts, http_opts = case, ["--calibration", case], {"calibration": case}
            # artist query
            cli = _cli("similar", ARTIST, "--db", db, "-k", "3", "--json", *cli_opts)
            py = soundalike.similar(db, ARTIST, k=3, **opts)
            web = http.get(f"/api/artists/{aid}/similar", params={"k": 3, **http_opts}).json()
            _same(cli, py, f"artist {case}: CLI vs Python")
            _same(cli, web, f"artist {case}: CLI vs HTTP")
            assert cli["calibration"] == (case if case in ("nicdm", "csls") else default)
            # track query (track answers take signals=audio only: asked explicitly)
            topts = {"signals": ("audio",)} if case == "signals" else opts
            tcli_opts = ["--signals", "audio"] if case == "signals" else cli_opts
            thttp = {"signals": "audio"} if case == "signals" else http_opts
            cli = _cli("similar", "--track", track.track_id[:10], "--db", db, "-k", "4", "--json", *tcli_opts)
            py = soundalike.similar(db, track=f"{track.artist} - {track.title}", k=4, **topts)
            web = http.get(f"/api/tracks/{track.track_id}/similar", params={"k": 4, **thttp}).json()
            _same(cli, py, f"track {case}: CLI vs Python")
            _same(cli, web, f"track {case}: CLI vs HTTP")
            assert ("index" in cli) == ("index" in web) == (index == "faiss")  # candidates came from the saved index
            if case is None:
                sub = http.get("/rest/getSonicSimilarTracks",
                               params={"id": track.track_id, "count": 4, "apiKey": API_KEY, "f": "json"}).json()
                matches = sub["subsonic-response"]["sonicMatch"]
                assert [m["entry"]["id"] for m in matches] == [n["track_id"] for n in cli["neighbours"]]
                assert [m["similarity"] for m in matches] == pytest.approx([n["score"] for n in cli["neighbours"]], abs=1e-6)
                info = http.get("/rest/getArtistInfo2", params={"id": aid, "count": 3, "apiKey": API_KEY, "f": "json"}).json()
                artist_doc = soundalike.similar(db, ARTIST, k=3)
                assert [int(a["id"]) for a in info["subsonic-response"]["artistInfo2"]["similarArtist"]] == \
                    [n["artist_id"] for n in artist_doc["neighbours"]]
        # the map: one layout
        web_map = http.get("/api/map").json()
    cli_map = _cli("map", "--db", db, "--json")
    assert web_map["method"] == cli_map["method"] and web_map["calibration"] == cli_map["calibration"]
    assert {p["artist_id"]: (p["x"], p["y"]) for p in web_map["points"]} == \
        {p["artist_id"]: (p["x"], p["y"]) for p in cli_map["points"]}
