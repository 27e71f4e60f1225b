"""Development data end to end: ingest a few real clips, embed descriptors, query similarity.

Uses ../shared/data/music (skipped when absent). Three artists × three clips keep it short.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def dev_db(shared_music, tmp_path_factory):
    from soundalike.cli import app

    root = tmp_path_factory.mktemp("dev")
    rows = list(csv.DictReader((shared_music / "manifest.csv").open()))
    by_artist: dict[str, list[dict]] = {}
    for r in rows:
        by_artist.setdefault(r["artist"], []).append(r)
    keep = [r for a in sorted(by_artist)[:3] for r in by_artist[a][:3]]
    music = root / "music"
    for r in keep:
        (music / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_music / r["path"], music / r["path"])
    with (music / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    db = root / "dev.db"
    runner = CliRunner()
    for args in (["ingest", str(music), "--manifest", str(music / "manifest.csv"), "--db", str(db)],
                 ["embed", "--backend", "descriptors", "--db", str(db), "--jobs", "1"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    return db, sorted(by_artist)[:3]


def run(*args):
    from soundalike.cli import app

    return CliRunner().invoke(app, list(args))


def test_similar_json_shape(dev_db):
    db, artists = dev_db
    res = run("similar", artists[0], "--db", str(db), "--json", "--calibration", "zscore", "--profile", "set")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    for key in ("query", "backend", "weights_kind", "calibration", "layer", "profile", "signals_used", "neighbours"):
        assert key in doc
    assert doc["backend"] == "descriptors" and doc["weights_kind"] == "none" and doc["profile"] == "set"
    assert [n["artist"] for n in doc["neighbours"]] and artists[0] not in [n["artist"] for n in doc["neighbours"]]
    for n in doc["neighbours"]:
        assert 0.0 <= n["score"] <= 1.0 and "raw_cosine" in n and set(n["contributions"]) == {"audio"}


def test_hybrid_with_csv_signals(dev_db, tmp_path):
    db, artists = dev_db
    (tmp_path / "refs.csv").write_text(f"artist,similar_artist,rank_or_score\n{artists[0]},{artists[2]},1\n")
    (tmp_path / "h.yaml").write_text("weights: {descriptors: 0.5, refs: 0.3, graph: 0.2}\ncsv: {refs: refs.csv}\n")
    res = run("similar", artists[0], "--db", str(db), "--json", "--config", str(tmp_path / "h.yaml"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert set(doc["signals_used"]) == {"descriptors", "refs", "graph"}
    by = {n["artist"]: n for n in doc["neighbours"]}
    # the listed artist carries refs and graph contributions; the unlisted one is scored on
    # descriptors alone (weights renormalised over the signals present, not penalised)
    assert {"descriptors", "refs", "graph"} <= set(by[artists[2]]["contributions"])
    assert set(by[artists[1]]["contributions"]) == {"descriptors"}
    assert by[artists[1]]["score"] == pytest.approx(by[artists[1]]["contributions"]["descriptors"], abs=1e-5)
    for n in doc["neighbours"]:
        assert sum(n["contributions"].values()) == pytest.approx(n["score"], abs=1e-5)
    assert doc["coverage"]["refs"] == pytest.approx(2 / 3, abs=1e-3)


def test_track_query_filters(dev_db):
    from soundalike.store import Store

    db, _ = dev_db
    with Store(db, readonly=True) as s:
        t = s.tracks()[0]
    res = run("similar", "--track", t.track_id, "--db", str(db), "--json", "--exclude-same-artist", "-k", "20")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["neighbours"] and all(n["artist_id"] != t.artist_id for n in doc["neighbours"])


def test_unknown_artist_suggests_names(dev_db):
    db, artists = dev_db
    res = run("similar", artists[0][:-1], "--db", str(db))
    assert res.exit_code == 1
    assert "Did you mean" in res.output and artists[0] in res.output


def test_matrix_and_map(dev_db, tmp_path):
    db, _ = dev_db
    assert run("matrix", "--db", str(db), "--out", str(tmp_path / "m.csv")).exit_code == 0
    lines = (tmp_path / "m.csv").read_text().strip().splitlines()
    assert len(lines) == 4
    res = run("map", "--db", str(db), "--json")
    assert res.exit_code == 0, res.output
    pts = json.loads(res.output)["points"]
    assert len(pts) == 3 and all(np.isfinite([p["x"], p["y"]]).all() for p in pts)
    assert run("map", "--db", str(db), "--out", str(tmp_path / "m.svg")).exit_code == 0
    assert (tmp_path / "m.svg").read_text().startswith("<svg")
