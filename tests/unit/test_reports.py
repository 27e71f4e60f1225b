"""Reports: the CONTRACTS JSON keys, Markdown tables, self-contained HTML with its figures."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from ci_support import import_or_skip, skip_or_fail

from soundalike.evaluate import experiment_report, parse_experiment, run_experiment
from soundalike.reports import build_report, render_html, render_markdown, write_reports
from soundalike.reports.html import histogram_svg, scatter_svg
from soundalike.reports.tables import report_tables

from _eval_fixtures import fill_store  # tests/unit is on sys.path (pytest prepend mode)

CONTRACT_KEYS = {"generated_at", "library", "n_tracks", "n_artists", "backends", "calibration", "artists", "pairs",
                 "neighbours", "metrics"}


def test_build_report_keeps_contract_keys(store):
    fill_store(store)
    rep = build_report(store, backends=["toy"], calibration="center", k=3, library="toy library")
    assert CONTRACT_KEYS <= set(rep)
    assert rep["backends"] == [{"name": "toy", "weights_kind": "real", "dim": 8}]
    assert set(rep["pairs"]) >= {"min", "max", "mean", "std"}
    assert all(len(v) == 3 for v in rep["neighbours"].values())
    assert {a["genre"] for a in rep["artists"]} == {"rock", "jazz"}


@pytest.fixture
def evaluated(store):
    fill_store(store)
    fill_store(store, backend="noise", weights_kind="random", seed=3)
    exp = parse_experiment({
        "name": "toy", "backends": ["toy", "noise"], "calibrations": ["none", "center"], "profiles": ["centroid"],
        "ensembles": [["toy", "noise"]],
        "expected_pairs": [{"a": "Alpha", "b": "Delta", "range": [0.0, 0.3], "note": "rock vs jazz"}],
        "classification": {"estimators": ["logreg"], "backends": ["toy", "noise"]},
        "metrics": {"genre_k": [1, 2], "hubness_k": [2]},
    })
    return experiment_report(exp, store, run_experiment(exp, store))


def test_experiment_report_json(evaluated, tmp_path):
    rep = evaluated
    assert CONTRACT_KEYS <= set(rep)
    met = rep["metrics"]
    assert {"configurations", "winners", "classification"} <= set(met)
    json.dumps(rep, allow_nan=False)  # strict JSON: no NaN, no numpy types
    assert not any(k.startswith("_") for row in met["configurations"] for k in row)
    # random weights never win a "best configuration" line
    assert all("noise /" not in w["best"] for w in met["winners"])
    assert set(rep["artist_maps"]) == {"toy", "noise"}
    assert len(rep["artist_maps"]["toy"]["xy"]) == 6


def test_markdown_tables(evaluated):
    md = render_markdown(evaluated)
    for title in ("Models side by side", "Which configuration wins", "Expected pairs — calibration `none`",
                  "Variance analysis", "Genre classification: artist-grouped CV"):
        assert title in md
    assert "ceiling" in md and "chance" in md
    assert "RANDOM weights" in md  # the random-weight backend is labelled in its rows
    # every evaluation table carries a caption naming data, date and weights
    captions = re.findall(r"^_data: .*_$", md, flags=re.M)
    assert len(captions) >= 5 and all("date:" in c and "(real)" in c for c in captions)
    assert "Obsidian" not in md and "Alpha ↔ Delta" in md


def test_html_is_self_contained(evaluated, tmp_path):
    paths = write_reports(evaluated, tmp_path)
    html = paths["html"].read_text()
    assert "<svg" in html and html.count("<table") >= 6
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN, no external assets
    assert "Artist maps" in html and "Pair-score histograms" in html
    assert json.loads(paths["json"].read_text())["metrics"]["configurations"]
    assert paths["md"].read_text().startswith("# soundalike report")


def test_report_tables_empty_without_experiment(store):
    fill_store(store)
    assert report_tables(build_report(store, backends=["toy"])) == []
    assert "Evaluation" not in render_html(build_report(store, backends=["toy"]))


def test_svg_helpers():
    h = histogram_svg([0.1, 0.2, 0.2, 0.9], title="t", bins=4, lo=0.0, hi=1.0)
    assert h.count("<rect") == 4 and "4 pairs" in h
    s = scatter_svg(["a", "b"], [[0, 0], [1, 1]], title="m", groups=["x", "y"])
    assert s.count("<circle") == 2 and ">x<" in s


@pytest.mark.browser
def test_html_renders_in_chromium(evaluated, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    sync_api = import_or_skip("playwright.sync_api")
    if chromium is None:
        skip_or_fail("no chromium executable (apt-get install chromium)")
    paths = write_reports(evaluated, tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(paths["html"].as_uri())
        assert page.locator("svg").count() >= 5
        assert page.locator("#evaluation").is_visible()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
