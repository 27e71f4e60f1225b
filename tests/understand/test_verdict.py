"""The report's verdict from its own numbers, the seeds' tables beside them, and the heatmap's
colour legend and full names."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.reports.html import heatmap_svg, render_html
from soundalike.reports.markdown import render_markdown
from soundalike.reports.verdict import SEED_LOW_PAIRS, build_verdict, verdict_markdown
from soundalike.similarity import pair_stats


def _report(raw: np.ndarray, cal: np.ndarray, names: list[str], genres: list[str]) -> dict:
    model = {"name": "musicnn-msd", "weights_kind": "real", "weights_note": "real trained weights", "dim": 200, "layer": 0,
             "n_tracks": len(names), "artists": names, "raw_cosine_matrix": raw.tolist(), "score_matrix": cal.tolist(),
             "raw_cosine_pairs": pair_stats(raw), "pairs": pair_stats(cal), "neighbours": {},
             "metrics": {"same_artist_map": {"value": 0.61, "ceiling": 1.0, "chance": 0.08, "n_queries": 8}}}
    return {"generated_at": "2026-11-30T12:00:00+00:00", "library": "test", "n_tracks": len(names), "n_artists": len(names),
            "backends": [{"name": "musicnn-msd", "weights_kind": "real", "dim": 200}], "calibration": "mp-empirical",
            "artists": [{"artist": a, "n_tracks": 1, "genre": g} for a, g in zip(names, genres)],
            "models": [model], "metrics": {"quality": {"musicnn-msd": model["metrics"]}}}


def _constructed():
    """8 artists in 2 genres: raw cosine squeezed into 0.75–0.97 with a hub; calibrated spread and ordered."""
    rng = np.random.default_rng(0)
    genres = ["techno"] * 4 + ["pop"] * 4
    names = [f"Artist {i}" for i in range(8)]
    same = np.equal.outer(np.array(genres), np.array(genres))
    raw = 0.86 + 0.02 * rng.standard_normal((8, 8))
    raw[0, :] = raw[:, 0] = 0.97  # artist 0 is close to everyone: a hub
    raw = np.clip((raw + raw.T) / 2, 0.75, 0.97)
    cal = np.where(same, 0.8, 0.15) + 0.05 * rng.uniform(size=(8, 8))
    cal = (cal + cal.T) / 2
    np.fill_diagonal(raw, 1.0)
    np.fill_diagonal(cal, 1.0)
    return raw, cal, names, genres


def test_verdict_states_range_order_low_pairs_hubs_and_pick():
    raw, cal, names, genres = _constructed()
    v = build_verdict(_report(raw, cal, names, genres))
    line = v["lines"][0]
    assert "raw cosine spans 0.84–0.97 (range 0.13" in line and "the seeds saw 0.71–0.97" in line and "— wider." in line
    f = v["models"][0]
    assert f["auc_calibrated"] == pytest.approx(1.0) and f["auc_calibrated"] > f["auc_raw"]
    assert "the order is better" in line
    assert f["low_share_calibrated"] == pytest.approx(1.0) and f["low_share_raw"] == 0.0
    assert "100 % calibrated vs 0 % raw" in line
    assert f["hubs_raw"]["max_k_occurrence"] == 7  # artist 0 is in everyone's top 5
    assert f["hubs_calibrated"]["max_k_occurrence"] < 7 and "fewer hubs" in line
    assert v["lines"][1].startswith("Validation picks musicnn-msd with calibration mp-empirical")
    assert "same_artist_map 0.61 (ceiling 1.00, chance 0.08)" in v["lines"][1]
    # With the saved validation (5-fold CV by artist) the pick and its figures come from there.
    rep = _report(raw, cal, names, genres)
    rep["models"][0]["model_key"] = "k1"
    rep["validation"] = [{"backend": "musicnn-msd", "model_key": "k1", "calibration": "csls",
                          "method": "5-fold cross-validation by artist (seed 0), mean same-artist mAP",
                          "results": {"none": {"cv_map": 0.64}, "csls": {"cv_map": 0.66}}},
                         {"backend": "musicnn-msd", "model_key": "taggram-not-in-report", "calibration": "none",
                          "results": {"none": {"cv_map": 0.99}}}]
    picked = build_verdict(rep)["lines"][1]
    assert picked.startswith("Validation picks musicnn-msd with calibration csls (5-fold cross-validation by artist")
    assert ": 0.660 vs raw cosine 0.640" in picked
    # The seeds' tables sit beside this library's figures.
    assert [r[0] for r in v["range_table"]["rows"][:2]] == ["seeds: VGGish (spike 4)", "seeds: MERT (spike 5)"]
    assert v["range_table"]["rows"][0][1:] == ["0.711", "0.974", "0.263"]
    assert len(v["low_pairs_table"]["rows"]) == len(SEED_LOW_PAIRS)
    assert all(" ↔ " in r[1] and r[2] != r[2].split(" ↔ ")[0] for r in v["library_low_pairs_table"]["rows"])
    md = verdict_markdown(v)
    assert md.startswith("## Verdict") and "Vril ↔ Sabrina Carpenter" in md and "| this library: musicnn-msd raw cosine |" in md


def test_reports_open_with_the_verdict_and_the_heatmap_has_a_legend_and_full_names():
    raw, cal, names, genres = _constructed()
    long_name = "Giovanni Pierluigi da Palestrina and the Extraordinarily Long Choir"
    names[3] = long_name
    rep = _report(raw, cal, names, genres)
    rep["verdict"] = build_verdict(rep)
    md = render_markdown(rep)
    assert md.index("## Verdict") < md.index("## Backends")
    html = render_html(rep)
    assert html.index("id='verdict'") < html.index("<h2>Backends</h2>")
    svg = heatmap_svg(names, cal.tolist(), title="t")
    assert f"<title>{long_name}</title>" in svg  # the whole name on hover
    assert ">Giovanni Pierluigi da Palestrina</tspan>" in svg and ">and the Extraordinarily Long Choir</tspan>" in svg  # wrapped, not cut
    assert "calibrated score (0–1)" in svg and ">0.00<" in svg and ">1.00<" in svg  # the colour legend
