"""The report's first paragraph: does this library answer the seeds' question?

The seeds (spike 4/5 notes) found every artist pair between raw cosine 0.711 and 0.974 with
VGGish (0.808–0.971 with MERT) and the pairs they expected LOW (different genres, 0.1–0.4) all
high. :func:`build_verdict` reads a report document and says, from its own numbers:

* the range of raw cosine and of the calibrated score, and whether the order of pairs got
  better — same-genre pairs above different-genre pairs (AUC; chance 0.5);
* the expected-LOW analogue: the share of different-genre pairs below 0.4 (the top of the
  seeds' expected band), raw vs calibrated;
* hubs: the largest k-occurrence (k = 5) and its skewness, raw vs calibrated;
* which backend and calibration validation picks, with the ranking metrics beside their
  ceilings and chance;

and lays the seeds' own tables (range; expected-LOW pairs) beside this library's figures. The
seeds' artists are not in the development library, so their pairs are compared through the
genre relation they stand for (different genres), not by name.

Render-only helpers (:func:`verdict_markdown`, :func:`verdict_html`) turn it into text.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

__all__ = ["build_verdict", "verdict_markdown", "verdict_html", "SEED_RANGES", "SEED_LOW_PAIRS", "LOW_BAND_TOP"]

#: the seeds' range table (spike 4 VGGish, spike 5 MERT), raw cosine of artist pairs
SEED_RANGES = [
    {"source": "seeds: VGGish (spike 4)", "min": 0.711, "max": 0.974},
    {"source": "seeds: MERT (spike 5)", "min": 0.808, "max": 0.971},
]
#: the seeds' expected-LOW pairs: (pair, genres, expected band, VGGish, MERT)
SEED_LOW_PAIRS = [
    ("Vril ↔ Sabrina Carpenter", "Minimal Techno ↔ Pop", (0.1, 0.3), 0.711, 0.892),
    ("TroyBoi ↔ Calibre", "Trap ↔ Liquid DnB", (0.2, 0.4), 0.891, 0.955),
    ("PEEKABOO ↔ Vril", "Bass ↔ Minimal", (0.2, 0.4), 0.786, 0.808),
    ("IMANU ↔ Vril", "Neurofunk ↔ Minimal", (0.2, 0.4), 0.869, 0.822),
]
#: the top of the seeds' expected band for different-genre pairs
LOW_BAND_TOP = 0.4
HUB_K = 5


def _pairs(M: np.ndarray) -> np.ndarray:
    return M[np.triu_indices(M.shape[0], k=1)]


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(score of a same-genre pair > score of a different-genre pair), ties half (Mann–Whitney U)."""
    if pos.size == 0 or neg.size == 0:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(pos, neg).statistic / (pos.size * neg.size))


def _hubs(M: np.ndarray) -> dict | None:
    n = M.shape[0]
    if n <= HUB_K + 1:
        return None
    from ..metrics import hubness

    h = hubness(M, k=HUB_K)
    return {"max_k_occurrence": h["max_k_occurrence"], "skewness": round(h["skewness"], 2), "n": n}


def _model_figures(m: dict, genre_of: dict[str, str | None]) -> dict | None:
    names = m.get("artists") or []
    raw, cal = m.get("raw_cosine_matrix"), m.get("score_matrix")
    if raw is None or cal is None or len(names) < 3:
        return None
    R, S = np.asarray(raw, float), np.asarray(cal, float)
    genres = [genre_of.get(a) for a in names]
    iu = np.triu_indices(len(names), k=1)
    labelled = np.array([genres[i] is not None and genres[j] is not None for i, j in zip(*iu)])
    same = np.array([genres[i] == genres[j] for i, j in zip(*iu)]) & labelled
    diff = ~same & labelled
    r, s = _pairs(R), _pairs(S)
    out: dict[str, Any] = {
        "backend": m.get("name"), "weights_kind": m.get("weights_kind"), "n_artists": len(names),
        "calibration": m.get("calibration"),
        "raw": {"min": float(r.min()), "max": float(r.max())},
        "calibrated": {"min": float(s.min()), "max": float(s.max())},
        "n_same_genre_pairs": int(same.sum()), "n_different_genre_pairs": int(diff.sum()),
        "auc_raw": _auc(r[same], r[diff]), "auc_calibrated": _auc(s[same], s[diff]),
        "low_share_raw": float((r[diff] < LOW_BAND_TOP).mean()) if diff.any() else None,
        "low_share_calibrated": float((s[diff] < LOW_BAND_TOP).mean()) if diff.any() else None,
        "hubs_raw": _hubs(R), "hubs_calibrated": _hubs(S),
    }
    # the library's own "expected LOW" pairs: different genres, highest raw cosine (the seeds' failure mode)
    order = np.argsort(-r[diff], kind="mergesort")[:4]
    di = [(int(i), int(j)) for i, j, d in zip(*iu, diff) if d]
    out["worst_different_genre_pairs"] = [
        {"pair": f"{names[di[o][0]]} ↔ {names[di[o][1]]}", "genres": f"{genres[di[o][0]]} ↔ {genres[di[o][1]]}",
         "raw_cosine": round(float(r[diff][o]), 3), "calibrated": round(float(s[diff][o]), 3)} for o in order]
    return out


def _hub_word(raw: dict, cal: dict) -> str:
    top_down = cal["max_k_occurrence"] < raw["max_k_occurrence"]
    top_same = cal["max_k_occurrence"] == raw["max_k_occurrence"]
    skew_ok = cal["skewness"] <= raw["skewness"] + 0.1
    if top_down and skew_ok:
        return "fewer hubs"
    if top_same and skew_ok:
        return "hubs about the same"
    if top_down:
        return "mixed: the largest hub shrank, but the k-occurrence is more skewed"
    return "hubs not reduced"


def _pick(report: dict) -> dict | None:
    """Which backend + calibration validation picks, with its ranking metrics (when the report has them).

    ``report["validation"]`` is :func:`soundalike.query.validation_summary` (per model: the saved
    default calibration and each calibration's cross-validated same-artist mAP); without it, the
    backend with the highest same-artist mAP in this report is named, saying so.
    """
    quality = (report.get("metrics") or {}).get("quality") or {}
    keys = {m.get("model_key"): m.get("name") for m in report.get("models", [])}
    rows = [v for v in (report.get("validation") or []) if isinstance(v, dict) and v.get("model_key") in keys
            and (v.get("results") or {}).get(v.get("calibration"), {}).get("cv_map") is not None]
    if rows:
        best = max(rows, key=lambda v: v["results"][v["calibration"]]["cv_map"])
        others = [f"{v['backend']} {v['calibration']} {v['results'][v['calibration']]['cv_map']:.3f}" for v in rows if v is not best]
        raw = (best["results"].get("none") or {}).get("cv_map")
        basis = (f"{best.get('method', 'cross-validation by artist')}: {best['results'][best['calibration']]['cv_map']:.3f}"
                 + (f" vs raw cosine {raw:.3f}" if raw is not None else "")
                 + (f"; other backends: {', '.join(others)}" if others else ""))
        return {"backend": best["backend"], "calibration": best["calibration"],
                "metrics": quality.get(best["backend"], {}), "basis": basis}
    best_name, best_v = None, -1.0
    for name, met in quality.items():
        v = (met.get("same_artist_map") or {}).get("value")
        if v is not None and v > best_v:
            best_name, best_v = name, v
    if best_name is None:
        return None
    return {"backend": best_name, "calibration": report.get("calibration"), "metrics": quality[best_name],
            "basis": "no validation saved: highest same-artist mAP of the backends in this report (this run's calibration)"}


def _fmt(x: float | None, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _metric_text(name: str, m: dict) -> str:
    if not isinstance(m, dict) or m.get("value") is None:
        return ""
    extra = []
    if m.get("ceiling") is not None:
        extra.append(f"ceiling {_fmt(m['ceiling'])}")
    if m.get("chance") is not None:
        extra.append(f"chance {_fmt(m['chance'])}")
    return f"{name} {_fmt(m['value'])}" + (f" ({', '.join(extra)})" if extra else "")


def build_verdict(report: dict) -> dict:
    """The verdict of a report document: sentences and the seeds' tables beside this library's.

    Returns
    -------
    dict
        ``{"lines": [str], "models": [figures per backend], "pick": {...} | None,
        "range_table": {"columns", "rows"}, "low_pairs_table": {"columns", "rows"},
        "library_low_pairs_table": {"columns", "rows"}}``
    """
    genre_of = {a["artist"]: a.get("genre") for a in report.get("artists", [])}
    cal = report.get("calibration", "")
    figs = [f for f in (_model_figures(m, genre_of) for m in report.get("models", [])) if f is not None]
    for f in figs:
        f["calibration"] = f["calibration"] or cal
    lines: list[str] = []
    for f in figs:
        rw = f["raw"]["max"] - f["raw"]["min"]
        cw = f["calibrated"]["max"] - f["calibrated"]["min"]
        wk = {"real": "", "none": " (signal processing, no weights)"}.get(f["weights_kind"], f" ({f['weights_kind']} weights)")
        line = (f"{f['backend']}{wk}: raw cosine spans {_fmt(f['raw']['min'])}–{_fmt(f['raw']['max'])} "
                f"(range {_fmt(rw)}; the seeds saw 0.71–0.97); calibrated ({f['calibration']}) {_fmt(f['calibrated']['min'])}–"
                f"{_fmt(f['calibrated']['max'])} (range {_fmt(cw)}) — {'wider' if cw > rw + 0.05 else 'not wider'}.")
        if f["auc_raw"] is not None:
            better = (f["auc_calibrated"] or 0) - (f["auc_raw"] or 0)
            line += (f" Same-genre pairs rank above different-genre pairs with AUC {_fmt(f['auc_calibrated'])} calibrated "
                     f"vs {_fmt(f['auc_raw'])} raw (chance 0.50): the order is "
                     f"{'better' if better > 0.01 else 'worse' if better < -0.01 else 'about the same'}.")
        if f["low_share_raw"] is not None:
            line += (f" Different-genre pairs below {LOW_BAND_TOP} (the seeds' expected-LOW band): "
                     f"{100 * f['low_share_calibrated']:.0f} % calibrated vs {100 * f['low_share_raw']:.0f} % raw.")
        hr, hc = f["hubs_raw"], f["hubs_calibrated"]
        if hr and hc:
            line += (f" Hubs (k={HUB_K}): largest k-occurrence {hr['max_k_occurrence']} → {hc['max_k_occurrence']}, "
                     f"skewness {hr['skewness']} → {hc['skewness']}: {_hub_word(hr, hc)}.")
        lines.append(line)
    pick = _pick(report)
    if pick is not None:
        # CONTRACTS metric names only (older spellings with "@" or capitals are aliases of the same numbers)
        mets = [_metric_text(k, v) for k, v in (pick.get("metrics") or {}).items()
                if isinstance(v, dict) and "@" not in k and k == k.lower()]
        mets = [m for m in mets if m]
        lines.append(f"Validation picks {pick['backend']} with calibration {pick.get('calibration')} "
                     f"({pick['basis']})" + (f". Ranking metrics in this report, beside ceiling and chance: "
                                             f"{'; '.join(mets)}." if mets else "."))
    if not figs:
        lines.append("Too few artists with vectors for a verdict (need at least 3).")
    range_rows = [[r["source"], _fmt(r["min"], 3), _fmt(r["max"], 3), _fmt(r["max"] - r["min"], 3)] for r in SEED_RANGES]
    for f in figs:
        range_rows.append([f"this library: {f['backend']} raw cosine", _fmt(f["raw"]["min"], 3), _fmt(f["raw"]["max"], 3),
                           _fmt(f["raw"]["max"] - f["raw"]["min"], 3)])
        range_rows.append([f"this library: {f['backend']} calibrated ({f['calibration']})", _fmt(f["calibrated"]["min"], 3),
                           _fmt(f["calibrated"]["max"], 3), _fmt(f["calibrated"]["max"] - f["calibrated"]["min"], 3)])
    low_rows = [[p, g, f"{lo}–{hi}", _fmt(v, 3), _fmt(m, 3)] for p, g, (lo, hi), v, m in SEED_LOW_PAIRS]
    lib_rows = [[f"{f['backend']} ({f['calibration']})", w["pair"], w["genres"], _fmt(w["raw_cosine"], 3), _fmt(w["calibrated"], 3),
                 "yes" if w["calibrated"] < LOW_BAND_TOP else "no"]
                for f in figs for w in f["worst_different_genre_pairs"]]
    return {
        "lines": lines, "models": figs, "pick": pick,
        "range_table": {"title": "Range of artist-pair scores: the seeds and this library",
                        "columns": ["source", "min", "max", "range"], "rows": range_rows},
        "low_pairs_table": {"title": "The seeds' expected-LOW pairs (their artists are not in this library)",
                            "columns": ["pair", "genres", "expected", "VGGish (seeds)", "MERT (seeds)"], "rows": low_rows},
        "library_low_pairs_table": {
            "title": f"This library's different-genre pairs with the highest raw cosine (the seeds' failure mode)",
            "columns": ["backend (calibration)", "pair", "genres", "raw cosine", "calibrated", f"below {LOW_BAND_TOP}"],
            "rows": lib_rows},
    }


def _md_table(t: dict) -> str:
    out = [f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in t["rows"]]
    return "\n".join(out)


def verdict_markdown(v: dict) -> str:
    """The verdict as Markdown (sentences, then the seeds' tables beside this library's)."""
    parts = ["## Verdict", ""] + [f"- {line}" for line in v["lines"]] + [""]
    for key in ("range_table", "low_pairs_table", "library_low_pairs_table"):
        if v[key]["rows"]:
            parts += [_md_table(v[key]), ""]
    return "\n".join(parts)


def _html_table(t: dict) -> str:
    h = [f"<table class='verdict-table'><caption>{escape(t['title'])}</caption><tr>"]
    h += [f"<th>{escape(str(c))}</th>" for c in t["columns"]]
    h.append("</tr>")
    h += ["<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in t["rows"]]
    h.append("</table>")
    return "".join(h)


def verdict_html(v: dict) -> str:
    """The verdict as an HTML section (no external assets)."""
    h = ["<section id='verdict'><h2>Verdict</h2><ul>"]
    h += [f"<li>{escape(line)}</li>" for line in v["lines"]]
    h.append("</ul><div class='figs'>")
    h += [_html_table(v[k]) for k in ("range_table", "low_pairs_table", "library_low_pairs_table") if v[k]["rows"]]
    h.append("</div></section>")
    return "".join(h)
