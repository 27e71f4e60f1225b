"""experiments/spike5.yaml end to end on development clips: evaluate command, reports, classifiers.

Uses ../shared/data/music (skipped when absent): 7 artists × 2 clips embedded with the
descriptors backend keep it short. When a full development database is at hand
(``SOUNDALIKE_DEV_DB``, e.g. one built with musicnn-msd + descriptors over all 93 clips), the
whole experiment runs on it too.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SPIKE5 = REPO / "experiments" / "spike5.yaml"
ARTISTS = ["Askyel", "Emxx52", "Doug Kaufman", "Mattias Westlund", "Obsidian Shell", "Muldjord", "Johann Sebastian Bach"]


def run(*args):
    from soundalike.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def small_db(shared_music, tmp_path_factory):
    root = tmp_path_factory.mktemp("spike5")
    rows = list(csv.DictReader((shared_music / "manifest.csv").open()))
    keep = [r for a in ARTISTS for r in [x for x in rows if x["artist"] == a][:2]]
    music = root / "music"
    for r in keep:
        (music / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_music / r["path"], music / r["path"])
    with (music / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    db = root / "dev.db"
    for args in (["ingest", music, "--manifest", music / "manifest.csv", "--db", db],
                 ["embed", "--backend", "descriptors", "--db", db, "--jobs", "1"]):
        res = run(*args)
        assert res.exit_code == 0, res.output
    return db, root


def test_evaluate_spike5_on_descriptors(small_db):
    db, root = small_db
    out = root / "report"
    res = run("evaluate", SPIKE5, "--db", db, "--out", out, "--calibration", "none,center,mp-empirical", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # progress lines go to stderr
    assert set(doc["reports"]) == {"json", "md", "html"}
    rep = json.loads((out / "report.json").read_text())
    met = rep["metrics"]
    ok = [r for r in met["configurations"] if r["status"] == "ok"]
    # descriptors × 3 calibrations × 2 profiles; the other backends have no vectors here
    assert {(r["backend"], r["calibration"], r["profile"]) for r in ok if r["kind"] == "backend"} == {
        ("descriptors", c, p) for c in ("none", "center", "mp-empirical") for p in ("centroid", "set")}
    skipped = {r["backend"] for r in met["configurations"] if r["status"].startswith("skipped")}
    assert {"musicnn-msd", "vggish"} <= skipped
    row = next(r for r in ok if r["calibration"] == "center" and r["profile"] == "centroid")
    # 3 genres with two artists each (+ Bach alone: not a query) -> ceiling 1, chance 1/6 (1 of 6 others)
    assert row["genre_P@1"]["n_queries"] == 6 and row["genre_P@1"]["ceiling"] == 1.0
    assert row["genre_P@1"]["chance"] == pytest.approx(1 / 6, abs=1e-6)  # JSON rounds to 6 digits
    assert 0.0 <= row["same_artist_MAP"]["value"] <= 1.0
    pair = next(p for p in row["expected_pairs"] if p["a"] == "Obsidian Shell" and p["b"] == "Johann Sebastian Bach")
    assert 0.0 <= pair["value"] <= 1.0 and isinstance(pair["pass"], bool)
    cls = met["classification"]
    # only descriptors is stored: grouped and stratified runs on 3 genres; baroque set apart
    assert cls["status"] == "ok" and "baroque" in cls["set_aside"] and cls["genres"] == ["electronic", "metal", "orchestral"]
    md = (out / "report.md").read_text()
    assert "Obsidian Shell ↔ Johann Sebastian Bach" in md and "Genres set apart" in md


def test_classify_commands(small_db):
    db, root = small_db
    res = run("classify", "evaluate", "--db", db, "-b", "descriptors", "-e", "logreg", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {r["scheme"] for r in doc["runs"]} == {"grouped", "stratified"}
    model = root / "genre.skops"
    res = run("classify", "train", "--db", db, "-b", "descriptors", "--out", model)
    assert res.exit_code == 0, res.output
    res = run("classify", "predict", "--db", db, "--model", model, "--artist", "muldjord", "--json")
    assert res.exit_code == 0, res.output
    preds = json.loads(res.stdout)["predictions"]
    assert len(preds) == 2 and all(p["artist"] == "Muldjord" for p in preds)


def test_bad_experiment_is_a_clean_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nbackends: [descriptors]\ncalibrations: [loud]\n")
    res = run("evaluate", p, "--db", tmp_path / "x.db")
    assert res.exit_code == 1
    assert "calibrations" in res.output and "loud" in res.output


@pytest.mark.skipif(not os.environ.get("SOUNDALIKE_DEV_DB"), reason="set SOUNDALIKE_DEV_DB to a full development database")
def test_full_spike5(tmp_path):
    res = run("evaluate", SPIKE5, "--db", os.environ["SOUNDALIKE_DEV_DB"], "--out", tmp_path, "--json")
    assert res.exit_code == 0, res.output
    met = json.loads((tmp_path / "report.json").read_text())["metrics"]
    real = [r for r in met["configurations"] if r["status"] == "ok" and r.get("weights_kind") == "real"]
    assert real and all(r["genre_P@1"]["value"] > r["genre_P@1"]["chance"] for r in real)
