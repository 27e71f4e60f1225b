"""Musical reasons on constructed audio with known tempo, key and loudness, through the real
``descriptors`` backend, the real store and musicnn's real MSD taggram (computed where the store
lacks it); and the pure comparison rules on hand-made traits."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from soundalike.query.reasons import Traits, aggregate_traits, compare_traits, reason_line, traits_from_descriptors

SR = 22050
A_MINOR = [(45, 57, 60, 64), (50, 57, 62, 65), (52, 56, 59, 64), (45, 57, 60, 64)]  # i iv V i
C_MAJOR = [(48, 60, 64, 67), (53, 60, 65, 69), (55, 62, 67, 71), (48, 60, 64, 67)]  # I IV V I


def _hz(midi: int) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def _song(bpm: float, chords: list[tuple[int, ...]], *, seconds: float = 12.0, gain: float = 1.0) -> np.ndarray:
    """A plucked chord on every beat (the cadence one chord per bar of 4 beats) plus a click."""
    import librosa

    beat = 60.0 / bpm
    n = int(seconds * SR)
    y = np.zeros(n, np.float64)
    t = np.arange(int(beat * SR)) / SR
    env = np.minimum(1.0, t / 0.01) * np.exp(-3.0 * t)
    for i, start in enumerate(np.arange(0.0, seconds - beat, beat)):
        chord = chords[(i // 4) % len(chords)]
        tone = sum(np.sin(2 * np.pi * _hz(p) * t) + 0.3 * np.sin(4 * np.pi * _hz(p) * t) for p in chord) / len(chord)
        s = int(start * SR)
        y[s:s + t.size] += 0.25 * env * tone
    y += 0.3 * librosa.clicks(times=np.arange(0.0, seconds, beat), sr=SR, length=n)
    return (gain * y).astype(np.float32)


@pytest.fixture(scope="module")
def constructed_store(tmp_path_factory):
    """Two artists: 'Minor120' (120 BPM, A minor) and 'Major126' (126 BPM, C major, 6 dB quieter)."""
    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    base = tmp_path_factory.mktemp("reasons")
    root = base / "music"
    songs = {"Minor120/a.wav": _song(120, A_MINOR), "Major126/a.wav": _song(126, C_MAJOR, gain=0.5)}
    for rel, y in songs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), y, SR)
    db = base / "lib.db"
    with Store(db) as store:
        ingest(store, root)
        embed(store, [load_backend("descriptors")])
    return db


def _ids(store) -> dict[str, int]:
    return {a.name: a.artist_id for a in store.artists()}


def test_reasons_name_the_measured_tempo_key_and_loudness(constructed_store):
    from soundalike.query.traits import TraitTable
    from soundalike.store import Store

    with Store(constructed_store, readonly=True) as store:
        table = TraitTable(store)
        ids = _ids(store)
    q, n = table.artist(ids["Minor120"]), table.artist(ids["Major126"])
    assert q.key == "A minor" and n.key == "C major"
    assert q.tempo_bpm == pytest.approx(120, abs=1.5) and n.tempo_bpm == pytest.approx(126, abs=1.5)
    assert n.loudness_lufs - q.loudness_lufs == pytest.approx(-6.0, abs=0.5)  # half the amplitude
    reasons = {r["kind"]: r for r in table.reasons(q, n)}
    assert reasons["tempo"]["text"] == "126 vs 120 BPM (faster by 6 BPM)"
    assert reasons["key"]["text"] == "C major vs A minor (relative keys)"
    assert reasons["loudness"]["text"].startswith("quieter by 6 LU (")
    assert reasons["loudness"]["text"].endswith(" LUFS)")
    assert (reasons["key"]["query"], reasons["key"]["neighbour"]) == ("A minor", "C major")
    back = {r["kind"]: r["text"] for r in table.reasons(n, q)}
    assert back["tempo"] == "120 vs 126 BPM (slower by 6 BPM)" and back["loudness"].startswith("louder by 6 LU")
    # Every estimate reason says it is an estimate.
    assert all("estimated" in r["text"] for r in table.reasons(q, n) if r["kind"] == "estimate")


@pytest.mark.requires_import("torch")
def test_taggram_is_computed_where_the_store_lacks_it(constructed_store, tmp_path):
    import shutil

    from soundalike.backends.musicnn import MSD_TAGS, find_musicnn_checkpoint
    from soundalike.analysis import fill_taggrams
    from soundalike.query.traits import TraitTable, taggram_model
    from soundalike.store import Store

    if find_musicnn_checkpoint("MSD_musicnn") is None:
        pytest.fail("musicnn's MSD weights are missing: pip install --no-deps musicnn==0.1.0")
    db = tmp_path / "old.db"
    shutil.copy(constructed_store, db)
    with Store(db) as store:
        assert taggram_model(store) is None  # an older store: descriptors only
        summary = fill_taggrams(store)
        assert summary is not None and summary.n_failed == 0
        tm = taggram_model(store)
        assert tm is not None and tm.weights_kind == "real" and tm.dim == 50 and tm.config["output"] == "taggram"
        assert fill_taggrams(store) is None  # nothing left to compute
        table = TraitTable(store)
        ids = _ids(store)
    q, n = table.artist(ids["Minor120"]), table.artist(ids["Major126"])
    assert set(q.tags) == set(MSD_TAGS) and all(0.0 <= p <= 1.0 for p in q.tags.values())
    tag_reasons = [r for r in table.reasons(q, n) if r["kind"] == "tag"]
    assert tag_reasons, (q.top_tags(), n.top_tags())
    for r in tag_reasons:
        assert r["text"].endswith("(musicnn tags)") and set(r["neighbour"]) <= set(MSD_TAGS)


def test_compare_rules_on_hand_made_traits():
    q = Traits(tempo_bpm=126.0, tonic=9, mode=0, loudness_lufs=-12.0, tags={"electronic": 0.6, "dance": 0.4, "rock": 0.05},
               estimates={"energy": 0.8, "danceability": 0.7, "acousticness": 0.1})
    n = Traits(tempo_bpm=128.0, tonic=9, mode=0, loudness_lufs=-8.0, tags={"electronic": 0.5, "dance": 0.3, "House": 0.2},
               estimates={"energy": 0.75, "danceability": 0.3, "acousticness": 0.15})
    r = compare_traits(q, n)
    assert [x["kind"] for x in r] == ["tag", "tag", "tempo", "key", "loudness", "estimate", "estimate", "estimate"]
    assert reason_line(r) == (
        "both: electronic, dance (musicnn tags) · more House (musicnn tags) · 128 vs 126 BPM · both A minor · "
        "louder by 4 LU (-8 vs -12 LUFS) · less danceable (estimated danceability 0.30 vs 0.70) · "
        "both high energy (estimated 0.75 vs 0.80) · both low acousticness (estimated 0.15 vs 0.10)")
    half = compare_traits(Traits(tempo_bpm=140.0), Traits(tempo_bpm=70.0))
    assert half[0]["text"] == "70 vs 140 BPM (half time)"
    keys = compare_traits(Traits(tonic=0, mode=1), Traits(tonic=7, mode=1))
    assert keys[0]["text"] == "G major vs C major (neighbouring keys)"
    assert compare_traits(Traits(), Traits(tempo_bpm=120.0)) == []  # nothing measured on both sides


def test_descriptor_values_round_trip_to_a_key_and_artist_aggregation():
    from soundalike.backends._descriptors_scores import key_circle

    for tonic in range(12):
        for mode in (0, 1):
            s, c = key_circle(tonic, mode)
            t = traits_from_descriptors({"key_sin": s, "key_cos": c, "mode": float(mode), "tempo_bpm": 0.0,
                                         "loudness_lufs": -70.0})
            assert (t.tonic, t.mode) == (tonic, mode)
            assert t.tempo_bpm is None and t.loudness_lufs is None  # no pulse, silence floor
    tracks = [Traits(tempo_bpm=120, tonic=9, mode=0, loudness_lufs=-10), Traits(tempo_bpm=124, tonic=9, mode=0, loudness_lufs=-10),
              Traits(tempo_bpm=90, tonic=0, mode=1, loudness_lufs=-10)]
    a = aggregate_traits(tracks)
    assert (a.tempo_bpm, a.key, a.n_tracks, round(a.key_share, 3)) == (120, "A minor", 3, 0.667)
    assert a.loudness_lufs == pytest.approx(-10.0)
    assert compare_traits(a, a)[1]["text"] == "both A minor (most tracks)"


def test_reasons_reach_the_cli_text_json_and_http_api(constructed_store):
    """One engine, one document: the CLI (text and --json), the Python API and the HTTP API all carry them."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    import soundalike
    from soundalike.cli import app
    from soundalike.serve import Settings, create_app

    runner = CliRunner()
    res = runner.invoke(app, ["similar", "Minor120", "--db", str(constructed_store), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (nb,) = doc["neighbours"]
    tempo = next(r for r in nb["reasons"] if r["kind"] == "tempo")
    assert tempo == {"kind": "tempo", "text": "126 vs 120 BPM (faster by 6 BPM)", "query": pytest.approx(120, abs=1.5),
                     "neighbour": pytest.approx(126, abs=1.5)}
    text = runner.invoke(app, ["similar", "Minor120", "--db", str(constructed_store)])
    assert text.exit_code == 0, text.output
    assert "1. Major126: " in text.stdout and "126 vs 120 BPM" in text.stdout and "C major vs A minor" in text.stdout
    py = soundalike.similar(constructed_store, artist="Minor120")
    assert py["neighbours"][0]["reasons"] == nb["reasons"]
    with TestClient(create_app(Settings(db=constructed_store)), base_url="http://localhost") as client:
        aid = doc["query"]["artist_id"]
        web = client.get(f"/api/artists/{aid}/similar").json()
        assert web["neighbours"][0]["reasons"] == nb["reasons"]
        tid = client.get(f"/api/artists/{aid}").json()["tracks"][0]["track_id"]
        tracks = client.get(f"/api/tracks/{tid}/similar").json()
        assert {r["kind"] for r in tracks["neighbours"][0]["reasons"]} >= {"tempo", "key", "loudness"}
        audio = client.get(f"/api/tracks/{tid}/audio", headers={"Range": "bytes=0-1023"})
        assert audio.status_code == 206 and audio.headers["content-type"] == "audio/wav"
        assert audio.headers["content-range"].startswith("bytes 0-1023/") and len(audio.content) == 1024
        assert client.get("/api/tracks/ffffff/audio").status_code == 404
        docs = client.get("/docs")
        assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
        assert "default-src 'self'" in docs.headers["content-security-policy"]
        assert client.get("/docs-assets/redoc.standalone.js").status_code == 200
        assert client.get("/docs-assets/..%2Fcore.py").status_code == 404
