"""The JSON API against a small real library (FastAPI TestClient)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf


def _artists(client) -> dict[str, dict]:
    return {a["name"]: a for a in client.get("/api/artists", params={"limit": 100}).json()["artists"]}


def test_health_lists_library(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "ok" and doc["n_artists"] == 4 and doc["n_tracks"] == 12
    assert doc["default_backend"] == "descriptors" and doc["subsonic"] is False
    assert {"none", "center"} <= set(doc["calibrations"])


def test_artists_paged_and_searchable(client):
    r = client.get("/api/artists", params={"limit": 2, "offset": 1})
    assert r.status_code == 200
    doc = r.json()
    assert doc["total"] == 4 and len(doc["artists"]) == 2
    found = client.get("/api/artists", params={"q": "  NOISE"}).json()
    assert [a["name"] for a in found["artists"]] == ["The Noisemakers"]
    assert found["artists"][0]["genre"] == "noise"


def test_similar_artists_contract_shape(client):
    low = _artists(client)["Low Tones"]
    r = client.get(f"/api/artists/{low['artist_id']}/similar", params={"k": 3})
    assert r.status_code == 200
    doc = r.json()
    assert doc["query"] == {"artist": "Low Tones", "artist_id": low["artist_id"]}
    default = client.get("/api/health").json()["default_calibration"]
    assert doc["backend"] == "descriptors" and doc["weights_kind"] == "none" and doc["calibration"] == default
    assert doc["signals_used"] == ["audio"]
    nbs = doc["neighbours"]
    assert len(nbs) == 3 and low["artist_id"] not in [n["artist_id"] for n in nbs]
    scores = [n["score"] for n in nbs]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(n["contributions"] == {"audio": n["score"]} for n in nbs)


def test_similar_artists_matches_cli_json(client, serve_library):
    """The service gives the same answer as the Python API (the same engine)."""
    import soundalike

    ref = soundalike.similar(serve_library["db"], "Chirpers", k=3)
    got = client.get(f"/api/artists/{ref['query']['artist_id']}/similar", params={"k": 3}).json()
    assert [n["artist_id"] for n in got["neighbours"]] == [n["artist_id"] for n in ref["neighbours"]]
    assert [n["score"] for n in got["neighbours"]] == pytest.approx([n["score"] for n in ref["neighbours"]], abs=1e-5)


def test_similar_artists_other_calibration_and_hybrid(client):
    aid = _artists(client)["High Tones"]["artist_id"]
    r = client.get(f"/api/artists/{aid}/similar", params={"calibration": "none", "k": 2})
    assert r.status_code == 200 and r.json()["calibration"] == "none"
    r = client.get(f"/api/artists/{aid}/similar", params={"signals": "audio,descriptors", "k": 2})
    assert r.status_code == 200, r.text
    nb = r.json()["neighbours"][0]
    assert set(nb["signal_scores"]) >= {"audio", "descriptors"}
    assert sum(nb["contributions"].values()) == pytest.approx(nb["score"], abs=1e-4)


@pytest.mark.parametrize("path,status,etype", [
    ("/api/artists/999999/similar", 404, "UnknownArtistError"),
    ("/api/artists/abc/similar", 422, "ParameterError"),
    ("/api/artists/1/similar?k=0", 422, "ParameterError"),
    ("/api/artists/1/similar?calibration=bogus", 422, "ParameterError"),
    ("/api/artists/1/similar?backend=vggish", 422, "ParameterError"),
    ("/api/artists/1/similar?signals=astrology", 422, "ParameterError"),
    ("/api/tracks/deadbeef/similar", 404, "UnknownTrackError"),
    ("/api/nothing-here", 404, "NotFound"),
])
def test_errors_are_json_with_type_and_message(client, path, status, etype):
    r = client.get(path)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["type"] == etype and err["message"]


def _tracks_of(client, name: str) -> list[str]:
    aid = _artists(client)[name]["artist_id"]
    return [t["track_id"] for t in client.get(f"/api/artists/{aid}").json()["tracks"]]


def test_similar_tracks_seed_excluded_and_same_artist_first(client):
    seed = _tracks_of(client, "Chirpers")[0]
    doc = client.get(f"/api/tracks/{seed}/similar", params={"k": 4}).json()
    ids = [n["track_id"] for n in doc["neighbours"]]
    assert seed not in ids and len(ids) == 4
    assert doc["neighbours"][0]["artist"] == "Chirpers"


def test_similar_tracks_exclude_artist_multi_seed_and_artist_gap(client):
    a, b = _tracks_of(client, "Low Tones")[:2]
    doc = client.get(f"/api/tracks/{a}/similar", params={"k": 5, "exclude_artist": True}).json()
    assert all(n["artist"] != "Low Tones" for n in doc["neighbours"])
    doc = client.get(f"/api/tracks/{a}/similar", params={"k": 3, "seed": b}).json()
    assert doc["query"]["track_ids"] == [a, b]
    assert not {a, b} & {n["track_id"] for n in doc["neighbours"]}
    doc = client.get(f"/api/tracks/{a}/similar", params={"k": 4, "artist_gap": 3}).json()
    artists = [n["artist"] for n in doc["neighbours"]]
    assert len(set(artists)) == 4  # 4 artists exist: none repeats within 3


def test_path_between_two_tracks(client):
    start, end = _tracks_of(client, "Low Tones")[0], _tracks_of(client, "Chirpers")[0]
    doc = client.get("/api/path", params={"start": start, "end": end, "count": 5}).json()
    steps = [s["track_id"] for s in doc["steps"]]
    assert steps[0] == start and steps[-1] == end and len(steps) == 5 and len(set(steps)) == 5
    assert doc["steps"][0]["score"] == 1.0


def test_map_has_every_artist_in_unit_square(client):
    doc = client.get("/api/map").json()
    assert len(doc["points"]) == 4 and doc["genres"] == ["ambient", "electronic", "noise"]
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in doc["points"])


def test_query_upload_finds_the_right_artist(client, serve_library):
    data = serve_library["clip"].read_bytes()
    r = client.post("/api/query", files={"file": ("../../etc/passwd", data, "audio/wav")}, params={"k": 3})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["artists"][0]["artist"] == "Low Tones"
    assert doc["tracks"][0]["artist"] == "Low Tones"
    assert doc["model_matches_library"] is True and doc["genre"] is None and doc["genre_note"]


def test_query_upload_limits(client):
    r = client.post("/api/query", files={"file": ("a.txt", b"just some text, not audio", "text/plain")})
    assert r.status_code == 415 and r.json()["error"]["type"] == "NotAudio"
    big = b"RIFF" + b"\0" * (600 * 1024)  # over the 512 KiB cap of this app
    r = client.post("/api/query", files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and r.json()["error"]["type"] == "UploadTooLarge"
    # A WAV header on garbage: sniffed as audio, then refused by the decoder.
    r = client.post("/api/query", files={"file": ("bad.wav", b"RIFF\x10\0\0\0WAVEfmt garbage", "audio/wav")})
    assert r.status_code == 415, r.text
    # Real audio that is too short is a 422.
    buf = io.BytesIO()
    sf.write(buf, np.zeros(2205, np.float32) + 0.1, 22050, format="WAV")
    r = client.post("/api/query", files={"file": ("short.wav", buf.getvalue(), "audio/wav")})
    assert r.status_code == 422 and r.json()["error"]["type"] == "TooShortError"


def test_chunked_upload_over_limit_is_413(client):
    def gen():
        for _ in range(20):
            yield b"x" * 65536

    r = client.post("/api/query", content=gen(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413


def test_read_only_by_default_and_rescan_needs_token(serve_library, tmp_path):
    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    with TestClient(create_app(Settings(db=serve_library["db"])), base_url="http://localhost") as c:
        r = c.post("/api/admin/rescan")
        assert r.status_code == 403 and "SOUNDALIKE_API_TOKEN" in r.json()["error"]["message"]
        assert "access-control-allow-origin" not in c.get("/api/health", headers={"Origin": "http://evil.example"}).headers
    with TestClient(create_app(Settings(db=serve_library["db"], api_token="tok")), base_url="http://localhost") as c:
        assert c.post("/api/admin/rescan").status_code == 401
        assert c.post("/api/admin/rescan", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/artists").status_code == 401  # the token is a credential: reads need it too
        r = c.post("/api/admin/rescan", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 409 and "SOUNDALIKE_LIBRARY_ROOT" in r.json()["error"]["message"]


def test_cors_only_for_configured_origins(serve_library):
    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    app = create_app(Settings(db=serve_library["db"], cors_origins=("http://ok.example",)))
    with TestClient(app, base_url="http://localhost") as c:
        assert c.get("/api/health", headers={"Origin": "http://ok.example"}).headers["access-control-allow-origin"] == "http://ok.example"
        assert "access-control-allow-origin" not in c.get("/api/health", headers={"Origin": "http://evil.example"}).headers


def test_page_and_openapi_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "soundalike" in r.text
    spec = client.get("/openapi.json").json()
    assert "/api/artists/{artist_id}/similar" in spec["paths"] and "/api/query" in spec["paths"]


def test_subsonic_off_without_credentials(client):
    assert client.get("/rest/ping.view").status_code == 404


def test_serve_cli_get(serve_library):
    from typer.testing import CliRunner

    from soundalike.cli import app

    r = CliRunner().invoke(app, ["serve", "--db", str(serve_library["db"]), "--get", "/api/artists?q=chirp"])
    assert r.exit_code == 0, r.output
    assert '"Chirpers"' in r.output


def test_rescan_with_token_ingests_new_files_and_reloads(serve_library, tmp_path):
    import shutil
    import time

    from fastapi.testclient import TestClient

    from soundalike.serve import Settings, create_app

    root = tmp_path / "music"
    shutil.copytree(serve_library["root"], root)
    db = tmp_path / "lib.db"
    shutil.copy(serve_library["db"], db)
    t = np.arange(3 * 22050) / 22050
    (root / "Newcomer").mkdir()
    sf.write(str(root / "Newcomer" / "new.wav"), (0.3 * np.sin(2 * np.pi * 523 * t)).astype(np.float32), 22050)
    app = create_app(Settings(db=db, api_token="tok", library_root=root))
    with TestClient(app, base_url="http://localhost", headers={"Authorization": "Bearer tok"}) as c:
        r = c.post("/api/admin/rescan")
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 300
        while c.get("/api/health").json()["n_artists"] < 5:
            assert time.monotonic() < deadline, "rescan did not finish"
            time.sleep(0.5)
        new = c.get("/api/artists", params={"q": "newcomer"}).json()["artists"]
        assert new and new[0]["n_tracks"] == 1
        assert c.get(f"/api/artists/{new[0]['artist_id']}/similar", params={"k": 2}).status_code == 200
