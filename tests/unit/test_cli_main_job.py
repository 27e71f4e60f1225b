"""The main job through the CLI: run → report, similar, status, backends, errors and exit codes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from soundalike.cli import app
from tests.conftest import SR

runner = CliRunner()


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One `soundalike run` over a small library with one bad file (descriptors backend)."""
    from tests.conftest import chirp, noise, tone
    import soundfile as sf

    root = tmp_path_factory.mktemp("cli")
    lib = root / "lib"
    for artist, ys in {"Tone Artist": [tone(220, 4), tone(330, 4)], "Noise Artist": [noise(4, seed=1), noise(4, seed=2)],
                       "Chirp Artist": [chirp(4), chirp(4, f0=300, f1=6000)]}.items():
        (lib / artist).mkdir(parents=True)
        for i, y in enumerate(ys):
            sf.write(str(lib / artist / f"{i}.wav"), y, SR)
    (lib / "Bad").mkdir()
    (lib / "Bad" / "broken.ogg").write_bytes(os.urandom(2000))
    db, out = root / "lib.db", root / "out"
    res = runner.invoke(app, ["run", str(lib), "--db", str(db), "--out", str(out), "--backend", "descriptors",
                              "--jobs", "1", "--fail-on-error"])
    return res, db, out, lib


def test_run_writes_reports_and_exits_3_on_failures(ran):
    res, db, out, _ = ran
    assert res.exit_code == 3, res.output  # --fail-on-error with one broken file
    assert "[decode]" in res.output and "broken.ogg" in res.output
    rep = json.loads((out / "report.json").read_text())
    for key in ("generated_at", "library", "n_tracks", "n_artists", "backends", "calibration", "artists", "pairs",
                "neighbours", "metrics"):
        assert key in rep
    assert rep["n_tracks"] == 6 and rep["n_artists"] == 3
    assert rep["backends"] == [{"name": "descriptors", "weights_kind": "none", "dim": rep["backends"][0]["dim"]}]
    q = rep["metrics"]["quality"]["descriptors"]["same_artist_map"]
    assert 0 <= q["value"] <= 1 and q["n_queries"] == 6
    md = (out / "report.md").read_text()
    assert "descriptors" in md and "weights" in md
    assert (out / "report.html").read_text().startswith("<!doctype html>")


def test_similar_json_contract(ran):
    _, db, _, _ = ran
    res = runner.invoke(app, ["similar", "tone artist", "--db", str(db), "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["query"]["artist"] == "Tone Artist" and doc["backend"] == "descriptors"
    assert {"weights_kind", "calibration", "layer", "profile", "signals_used"} <= set(doc)
    scores = [n["score"] for n in doc["neighbours"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert "Tone Artist" not in [n["artist"] for n in doc["neighbours"]]


def test_unknown_artist_is_one_clear_line(ran):
    _, db, _, _ = ran
    res = runner.invoke(app, ["similar", "Tone Artsit", "--db", str(db)])
    assert res.exit_code == 1
    assert "Error:" in res.output and "Did you mean: Tone Artist" in res.output
    assert "Traceback" not in res.output


def test_status_and_second_run_is_cached(ran, tmp_path):
    _, db, _, lib = ran
    res = runner.invoke(app, ["status", "--db", str(db), "--json"])
    st = json.loads(res.stdout)
    assert st["counts"]["tracks"] == 6 and st["models"][0]["tracks"] == 6
    res2 = runner.invoke(app, ["embed", "--db", str(db), "--backend", "descriptors", "--json"])
    assert json.loads(res2.stdout)["done"] == 0


def test_backends_json_and_usage_errors(tmp_path):
    res = runner.invoke(app, ["backends", "--json"])
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    assert {"musicnn-msd", "descriptors", "vggish", "mert-v1-95m"} <= names
    for r in rows:
        assert r["status"] in ("ready", "needs-extra", "weights-missing")
        assert set(r) >= {"name", "status", "weights_kind", "embedding_size", "sample_rate", "install_hint"}
    bad = runner.invoke(app, ["embed", "--backend", "nonesuch", "--db", str(tmp_path / "x.db")])
    assert bad.exit_code == 1 and "Unknown backend 'nonesuch'" in bad.output
    assert runner.invoke(app, ["similar"]).exit_code == 2
    missing = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
