"""The report's tables as plain data, rendered alike by ``markdown`` and ``html``.

Each table is ``{"title", "caption", "columns", "rows", "note"}``; the caption names the
data, the date, the backends' weights kinds and the calibration, so a table copied out of
the report still says what it measured.
"""

from __future__ import annotations

from typing import Any

__all__ = ["report_tables", "fmt", "caption"]

RANDOM_NOTE = "RANDOM weights: plumbing check only, not model quality"


def fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "✓" if x else "✗"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def caption(report: dict, *, calibration: str | None = None, extra: str = "") -> str:
    kinds = ", ".join(f"{b['name']} ({b['weights_kind']})" for b in report.get("backends", []))
    parts = [f"data: {report.get('library')} ({report.get('n_tracks')} tracks, {report.get('n_artists')} artists)",
             f"date: {report.get('generated_at')}"]
    if kinds:
        parts.append(f"backends (weights): {kinds}")
    if calibration:
        parts.append(f"calibration: {calibration}")
    if extra:
        parts.append(extra)
    return " · ".join(parts)


def _wk(r: dict) -> str:
    wk = str(r.get("weights_kind", ""))
    return f"{wk} ⚠ {RANDOM_NOTE}" if "random" in wk else wk


def _vcc(m: dict | None, nd: int = 2) -> str:
    """value (ceiling c, chance p)."""
    if not m:
        return "–"
    return f"{fmt(m.get('value'), nd)} (ceil {fmt(m.get('ceiling'), 2)}, chance {fmt(m.get('chance'), 2)})"


def _side_by_side(report: dict, met: dict) -> list[dict]:
    exp = report.get("experiment", {})
    gk = exp.get("genre_k", [1, 5])
    nk = exp.get("ndcg_k", 10)
    rows, na = [], []
    ok = [r for r in met.get("configurations", []) if r.get("status") == "ok"]
    keys = [*[f"genre_p_at_{k}" for k in gk], f"ndcg_at_{nk}", "same_artist_map"]
    # Ceiling and chance depend on the labels only: shown once in the header when every row agrees.
    shared = {}
    for key in keys:
        cc = {(round(r[key]["ceiling"], 4), round(r[key]["chance"], 4)) for r in ok
              if r.get(key) and r[key].get("ceiling") is not None and r[key].get("chance") is not None}
        if len(cc) == 1:
            shared[key] = next(iter(cc))

    def cell(r: dict, key: str) -> str:
        m = r.get(key)
        if not m:
            return "–"
        return fmt(m.get("value"), 2) if key in shared else _vcc(m)

    def head(key: str, label: str) -> str:
        return f"{label} (ceiling {shared[key][0]:.2f}, chance {shared[key][1]:.2f})" if key in shared else label

    for r in met.get("configurations", []):
        if r.get("status") != "ok":
            na.append([r.get("backend"), r.get("calibration") or "–", r.get("profile") or "–", r.get("status", "")])
            continue
        rc = r.get("raw_cosine_pairs") or {}
        hub = r.get("track_hubness_k5") or r.get("hubness_k5") or {}
        rows.append([
            r["backend"], _wk(r), r.get("calibration"), r.get("profile"),
            f"{fmt(rc.get('min'))}–{fmt(rc.get('max'))} ({fmt(rc.get('range'))})" if rc else "–",
            fmt(r.get("genre_separation")),
            *[cell(r, f"genre_p_at_{k}") for k in gk],
            cell(r, f"ndcg_at_{nk}"),
            cell(r, "same_artist_map"),
            f"{fmt(hub.get('skewness'), 2)} / {hub.get('max_k_occurrence', '–')} / {fmt(hub.get('anti_hub_share'), 2)}"
            if hub else "–",
        ])
    cols = ["backend", "weights", "calibration", "profile", "raw cosine min–max (range)", "genre separation",
            *[head(f"genre_p_at_{k}", f"genre P@{k}") for k in gk], head(f"ndcg_at_{nk}", f"genre nDCG@{nk}"),
            head("same_artist_map", "same-artist mAP (tracks)"),
            "hubness k=5: skew / max N5 / anti-hubs"]
    out = [{"title": "Models side by side", "caption": caption(report, extra="every calibration in its row"),
            "columns": cols, "rows": rows,
            "note": "Genre figures are artist-level (each artist ranks the other artists; artist genre = its most "
                    "frequent track genre); same-artist mAP and hubness are track-level. Ceiling = best any ranking "
                    "could score with these labels; chance = a random ranking. Genre separation = mean score of "
                    "same-genre artist pairs minus different-genre pairs. Artists whose genre no other artist shares "
                    "are not queries."}]
    costs = {}
    for r in ok:
        if r.get("cost") and r["backend"] not in costs:
            c = r["cost"]
            costs[r["backend"]] = [r["backend"], _wk(r), fmt(c["seconds_per_30s_clip"], 2),
                                   fmt(c["cpu_seconds_per_30s_clip"], 2), fmt(c["peak_rss_mb"], 0), str(c["n_clips"])]
    if costs:
        out.append({"title": "Cost per backend", "caption": caption(report),
                    "columns": ["backend", "weights", "s per 30 s clip (wall)", "CPU s per 30 s clip",
                                "peak RSS MiB", "clips measured"],
                    "rows": list(costs.values()),
                    "note": "Model work recorded by `soundalike embed` on the machine that built this library "
                            "(decoding excluded; peak RSS of the whole embed process). benchmarks/embed.py measures "
                            "end to end beside a naive baseline."})
    if na:
        out.append({"title": "Configurations not evaluated", "caption": caption(report), "columns":
                    ["backend", "calibration", "profile", "why"], "rows": na, "note": ""})
    return out


def _first_ok(met: dict, backend: str, calibration: str, profile: str = "centroid") -> dict | None:
    for r in met.get("configurations", []):
        if (r.get("status") == "ok" and r["backend"] == backend and r.get("calibration") == calibration
                and r.get("profile") == profile):
            return r
    return None


def _backends_ok(met: dict) -> list[str]:
    seen = []
    for r in met.get("configurations", []):
        if r.get("status") == "ok" and r.get("kind") != "hybrid" and r["backend"] not in seen:
            seen.append(r["backend"])
    return seen


def _expected_pairs(report: dict, met: dict) -> list[dict]:
    backs = _backends_ok(met)
    cal = report.get("calibration", "center")
    tables = []
    for c in dict.fromkeys(["none", cal]):
        rs = {b: _first_ok(met, b, c) for b in backs}
        rs = {b: r for b, r in rs.items() if r}
        if not rs:
            continue
        first = next(iter(rs.values()))
        rows = []
        for i, p in enumerate(first.get("expected_pairs", [])):
            row = [f"{p['a']} ↔ {p['b']}", p.get("note", ""), f"{fmt(p['low'], 1)}–{fmt(p['high'], 1)}"]
            for b, r in rs.items():
                q = r["expected_pairs"][i]
                if "error" in q:
                    row.append(q["error"])
                elif c == "none":
                    row.append(f"{fmt(q.get('raw_cosine'))} {fmt(q.get('raw_pass'))} (pct {fmt(q['value'], 2)})")
                else:
                    row.append(f"{fmt(q['value'])} {fmt(q['pass'])} (cos {fmt(q.get('raw_cosine'), 2)})")
            rows.append(row)
        if not rows:
            continue
        what = ("raw cosine of centroid profiles, as in the seeds (its percentile beside it)" if c == "none" else
                "calibrated score = the pair's percentile among all artist pairs (raw cosine beside it)")
        tables.append({"title": f"Expected pairs — calibration `{c}`", "caption": caption(report, calibration=c),
                       "columns": ["artist pair", "genres", "expected", *[f"{b} ({_wk(r)})" for b, r in rs.items()]],
                       "rows": rows, "note": f"Value: {what}; ✓ inside the expected range."})
    return tables


def _variance(report: dict, met: dict) -> list[dict]:
    backs = _backends_ok(met)
    rs = {b: _first_ok(met, b, "none") for b in backs}
    rs = {b: r for b, r in rs.items() if r and r.get("raw_cosine_pairs")}
    if not rs:
        return []
    rows = []
    for key in ("min", "max", "range", "mean", "std"):
        rows.append([key, *[fmt(r["raw_cosine_pairs"].get(key)) for r in rs.values()]])
    rows.append(["genre separation", *[fmt(r.get("raw_genre_separation")) for r in rs.values()]])
    return [{"title": "Variance analysis (raw cosine of centroid profiles, all artist pairs)",
             "caption": caption(report, calibration="none"), "columns": ["statistic", *[f"{b} ({_wk(r)})" for b, r in rs.items()]],
             "rows": rows, "note": "The seeds' success measure was a wider range; a range says little about ranking "
                                   "quality (see genre P@k and nDCG). Ensemble (a+b) vectors are z-scored blocks "
                                   "(backends.ensemble.combine_blocks), so their cosines are centred near 0."}]


def _winners(report: dict, met: dict) -> list[dict]:
    rows = []
    n_cfg = sum(1 for r in met.get("configurations", []) if r.get("status") == "ok")
    for w in met.get("winners", []):
        d, ci = w.get("difference"), w.get("interval")
        rows.append([w["metric"], w["best"], fmt(w["value"]),
                     f"{fmt(ci['low'])}–{fmt(ci['high'])}" if ci else "–", w["runner_up"], fmt(w["runner_up_value"]),
                     f"{fmt(d['mean'])} [{fmt(d['low'])}, {fmt(d['high'])}]" if d else "–",
                     ("yes" if d["excludes_zero"] else "no (a tie at this sample size)") if d else "–",
                     (f"{fmt(w['vs_raw']['mean'])} [{fmt(w['vs_raw']['low'])}, {fmt(w['vs_raw']['high'])}]"
                      if w.get("vs_raw") else "–")])
    if not rows:
        return []
    return [{"title": "Which configuration wins", "caption": caption(report, extra="random-weight models excluded"),
             "columns": ["metric", "best", "value", "95% interval", "runner-up", "value", "difference [95% interval]",
                         "clear win?", "best minus raw cosine (same backend/profile)"], "rows": rows,
             "note": "Percentile bootstrap, 1,000 resamples of query artists (whole artists for track-level figures), "
                     f"paired on the same queries. The best of {n_cfg} configurations is picked on the same data, so "
                     "its value is optimistic; a difference whose interval contains 0 is a tie."}]


def _classification(report: dict, met: dict) -> list[dict]:
    cls = met.get("classification")
    if not cls or cls.get("status") != "ok":
        return [] if not cls else [{"title": "Genre classification", "caption": caption(report), "columns": ["status"],
                                    "rows": [[cls.get("status")]], "note": ""}]
    wk = cls.get("weights_kind", {})
    by = {}
    for run in cls["runs"]:
        for name, sc in run["results"].items():
            by.setdefault((run["estimator"], name), {})[run["scheme"]] = sc
    rows = []
    for (est, name), s in by.items():
        g, st = s.get("grouped"), s.get("stratified")
        kinds = "+".join(sorted({wk.get(b, "?") for b in name.split("+")}))
        rows.append([est, name, kinds, fmt(g["accuracy"]), fmt(g["macro_f1"]), fmt(st["accuracy"]), fmt(st["macro_f1"]),
                     fmt(st["accuracy"] - g["accuracy"]), fmt(g["chance"], 2)])
    tables = [{"title": "Genre classification: artist-grouped CV beside the leaky split",
               "caption": caption(report, extra=f"{cls['n_tracks']} tracks, {cls['n_artists']} artists, genres "
                                                f"{', '.join(cls['genres'])}; 5-fold, seed 0"),
               "columns": ["estimator", "features", "weights", "grouped accuracy", "grouped macro F1",
                           "stratified accuracy (leaky)", "stratified macro F1 (leaky)", "leak (acc. gap)", "chance"],
               "rows": rows,
               "note": "Grouped = no artist on both sides of a split (the honest figure); stratified = tracks of an "
                       "artist on both sides, which rewards recognising the artist. Ensembles average the members' "
                       "probabilities. Chance = share of the commonest genre."}]
    aside = cls.get("set_aside") or {}
    if aside:
        tables.append({"title": "Genres set apart (fewer than two artists)", "caption": caption(report),
                       "columns": ["genre", "support (tracks)", "artists"],
                       "rows": [[g, v["support"], ", ".join(v["artists"])] for g, v in aside.items()],
                       "note": "Not in the grouped-CV scores: with one artist, any split puts it on one side only."})
    best = max(((k, s["grouped"]) for k, s in by.items() if "grouped" in s), key=lambda kv: kv[1]["macro_f1"], default=None)
    if best:
        (est, name), g = best
        labels = g["labels"]
        tables.append({"title": f"Confusion matrix (grouped CV, best macro F1: {est} on {name})", "caption": caption(report),
                       "columns": ["true \\ predicted", *labels],
                       "rows": [[labels[i], *row] for i, row in enumerate(g["confusion"])],
                       "note": "Per class P/R/F1/support: " + "; ".join(
                           f"{c} {fmt(v['precision'], 2)}/{fmt(v['recall'], 2)}/{fmt(v['f1'], 2)}/{v['support']}"
                           for c, v in g["per_class"].items())})
    return tables


def report_tables(report: dict) -> list[dict]:
    """Every evaluation table of a report (empty when the report has no experiment metrics)."""
    met = report.get("metrics") or {}
    if not met.get("configurations"):
        return []
    return [*_side_by_side(report, met), *_winners(report, met), *_expected_pairs(report, met),
            *_variance(report, met), *_classification(report, met)]


def quality_rows(model: dict) -> list[tuple[str, str, str, str]]:
    """(metric, value, ceiling, chance) rows of a report section's quick quality metrics."""
    rows = []
    for key, label in (("same_artist_map", "same-artist track mAP"), ("genre_p_at_1", "artist genre P@1"),
                       ("genre_p_at_5", "artist genre P@5")):
        m = (model.get("metrics") or {}).get(key)
        if m:
            rows.append((f"{label} ({m['n_queries']} queries)", fmt(m["value"]), fmt(m["ceiling"]), fmt(m["chance"])))
    h = (model.get("metrics") or {}).get("hubness_k5")
    if h:
        rows.append(("hubness: largest 5-occurrence / skewness", f"{h['max_k_occurrence']} / {fmt(h['skewness'], 2)}", "–", "–"))
    return rows

