"""Experiment files: validation with errors naming the key; running configurations over a store."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.evaluate import NOT_AVAILABLE, load_experiment, parse_experiment, run_experiment

from _eval_fixtures import fill_store  # tests/unit is on sys.path (pytest prepend mode)

BASE = {"name": "t", "backends": ["toy"], "calibrations": ["none", "center"], "profiles": ["centroid", "set"]}


def doc(**kw):
    d = dict(BASE)
    d.update(kw)
    return d


@pytest.mark.parametrize("bad, key", [
    ({"backends": []}, "backends"),
    ({"calibrations": ["nope"]}, "calibrations"),
    ({"profiles": ["median"]}, "profiles"),
    ({"colour": 1}, "colour"),
    ({"expected_pairs": [{"a": "A", "b": "B", "range": [0.5, 0.1]}]}, r"expected_pairs\[0\].range"),
    ({"expected_pairs": [{"a": "A"}]}, r"expected_pairs\[0\]"),
    ({"metrics": {"genre_k": [0]}}, "metrics.genre_k"),
    ({"metrics": {"foo": 1}}, "metrics.foo"),
    ({"ensembles": [["toy"]]}, r"ensembles\[0\]"),
    ({"classification": {"estimators": ["forest"]}}, "classification.estimators"),
    ({"backends": [{"name": "mert-v1-95m", "layer": -1}]}, r"backends\[0\].layer"),
])
def test_validation_errors_name_the_key(bad, key):
    with pytest.raises(ParameterError, match=f"key '{key}'"):
        parse_experiment(doc(**bad), source="x.yaml")


def test_not_a_mapping():
    with pytest.raises(ParameterError, match="mapping"):
        parse_experiment([1, 2], source="x.yaml")


def test_parse_defaults_and_shapes(tmp_path):
    e = parse_experiment(doc(
        db="lib.db", backends=["toy", {"name": "mert-v1-95m", "layer": 6}], ensembles=["toy+other"],
        expected_pairs=[{"a": "Alpha", "b": "Delta", "range": "0.0–0.3", "note": "rock vs jazz"}],
    ), base=tmp_path)
    assert e.db == tmp_path / "lib.db"
    assert [b.label for b in e.backends] == ["toy", "mert-v1-95m@6"]
    assert e.ensembles == [["toy", "other"]]
    assert (e.expected_pairs[0].low, e.expected_pairs[0].high) == (0.0, 0.3)
    assert e.genre_k == [1, 5] and e.ndcg_k == 10 and e.hubness_k == [5, 10] and e.resamples == 1000


def test_load_experiment_file(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("name: x\nbackends: [toy]\ndb: sub/lib.db\n")
    e = load_experiment(p)
    assert e.db == tmp_path.resolve() / "sub" / "lib.db"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        load_experiment(p)
    with pytest.raises(ParameterError, match="does not exist"):
        load_experiment(tmp_path / "missing.yaml")


def test_spike5_yaml_is_valid():
    from pathlib import Path

    e = load_experiment(Path(__file__).resolve().parents[2] / "experiments" / "spike5.yaml")
    assert "descriptors" in [b.name for b in e.backends]
    assert set(e.calibrations) >= {"none", "center"} and set(e.profiles) == {"centroid", "set"}
    assert any(p.a == "Obsidian Shell" and p.b == "Johann Sebastian Bach" for p in e.expected_pairs)


def _rows(res, **kw):
    return [r for r in res["configurations"] if all(r.get(k) == v for k, v in kw.items())]


def test_run_experiment_on_clean_clusters(store):
    fill_store(store)
    exp = parse_experiment(doc(
        expected_pairs=[{"a": "alpha", "b": "Delta", "range": [0.0, 0.6]}, {"a": "Alpha", "b": "Nobody", "range": [0, 1]}],
        references={"Alpha": ["Bravo", "Charlie"]}, metrics={"genre_k": [1, 2], "overlap_k": 2, "hubness_k": [2]},
        classification={"estimators": ["logreg"], "backends": ["toy"]},
    ))
    res = run_experiment(exp, store)
    ok = _rows(res, status="ok")
    assert len(ok) == 4  # 2 calibrations x 2 profiles
    r = _rows(res, calibration="center", profile="centroid")[0]
    assert r["genre_P@1"]["value"] == 1.0 and r["genre_P@1"]["ceiling"] == 1.0
    assert r["genre_P@1"]["chance"] == pytest.approx(2 / 5)
    assert r["genre_P@2"]["value"] == 1.0
    assert r["same_artist_MAP"]["value"] > 0.9 and r["same_artist_MAP"]["chance"] < 0.3
    assert r["overlap@2"]["per_artist"]["Alpha"] == 1.0
    pair, missing = r["expected_pairs"]
    assert pair["pass"] and "raw_cosine" in pair
    assert "not in this library" in missing["error"]
    assert set(r["track_hubness"]) == {"k=2"}
    assert r["weights_kind"] == "real"
    assert res["winners"] and all("best" in w for w in res["winners"])
    cls = res["classification"]
    assert cls["status"] == "ok" and {run["scheme"] for run in cls["runs"]} == {"grouped", "stratified"}


def test_missing_backend_is_skipped_not_fatal(store):
    fill_store(store)
    res = run_experiment(parse_experiment(doc(backends=["toy", "vggish"], calibrations=["none"])), store)
    assert _rows(res, backend="vggish")[0]["status"].startswith("skipped")
    assert _rows(res, backend="toy")[0]["status"] == "ok"


def test_unavailable_calibration_is_reported(store, monkeypatch):
    import soundalike.query.engine as engine

    fill_store(store)
    real_fit = engine.fit_space

    def fit(vec, *, level, calibration, profile="centroid"):
        if calibration == "center":
            raise ParameterError("calibration='center' is not valid")
        return real_fit(vec, level=level, calibration=calibration, profile=profile)

    monkeypatch.setattr(engine, "fit_space", fit)
    res = run_experiment(parse_experiment(doc()), store)
    bad = _rows(res, calibration="center")
    assert bad and all(r["status"].startswith(NOT_AVAILABLE) for r in bad)
    assert all(r["status"] == "ok" for r in _rows(res, calibration="none"))


def test_ensemble_rows(store):
    fill_store(store)
    fill_store(store, backend="toy2", seed=1)
    res = run_experiment(parse_experiment(doc(backends=["toy", "toy2"], ensembles=[["toy", "toy2"]],
                                              calibrations=["none"], profiles=["centroid"])), store)
    ens = _rows(res, backend="toy+toy2")[0]
    assert ens["status"] == "ok" and ens["kind"] == "ensemble" and ens["n_tracks"] == 18
    assert np.isfinite(ens["genre_P@1"]["value"])
