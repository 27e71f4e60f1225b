"""Markdown rendering of a report: tables shaped like the seeds', honestly labelled."""

from __future__ import annotations

from .tables import fmt, quality_rows, report_tables
from ..query.reasons import reason_line
from .verdict import verdict_markdown

__all__ = ["render_markdown", "markdown_table"]


def _cell(x) -> str:
    return fmt(x).replace("|", "\\|").replace("\n", " ")


def markdown_table(t: dict) -> list[str]:
    """One table of :func:`report_tables` as Markdown lines (title, caption, table, note)."""
    lines = [f"### {t['title']}", "", f"_{t['caption']}_", "",
             "| " + " | ".join(_cell(c) for c in t["columns"]) + " |",
             "|" + "---|" * len(t["columns"])]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t["rows"]]
    if t.get("note"):
        lines += ["", t["note"]]
    return lines + [""]


def _fmt(x: float | None, nd: int = 3) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def render_markdown(report: dict) -> str:
    lines = [
        "# soundalike report",
        "",
        f"- generated: {report['generated_at']}",
        f"- library: `{report['library']}` ({report['n_tracks']} tracks, {report['n_artists']} artists)",
        f"- calibration: `{report['calibration']}` — {report.get('score_meaning', '')}",
        "",
        verdict_markdown(report["verdict"]) if report.get("verdict") else "",
        "## Backends",
        "",
        "| backend | weights | dim | layer | tracks embedded |",
        "|---|---|---|---|---|",
    ]
    for m in report.get("models", []):
        lines.append(f"| {m['name']} | {m['weights_kind']} ({m['weights_note']}) | {m['dim']} | {m['layer']} | {m['n_tracks']} |")
    lines += ["", "## Artists", ""]
    names = ", ".join(f"{b['name']} ({b['weights_kind']} weights)" for b in report.get("backends", []))
    lines += [f"Embedded with: {names or 'no backend yet'}.", ""]
    lines += ["| artist | tracks | genre (label) |", "|---|---|---|"]
    for a in report.get("artists", []):
        lines.append(f"| {a['artist']} | {a['n_tracks']} | {a.get('genre') or '–'} |")
    for m in report.get("models", []):
        rc, sc = m["raw_cosine_pairs"], m["pairs"]
        lines += [
            "",
            f"## {m['name']} — {m['weights_kind']} weights, calibration `{report['calibration']}`",
            "",
            f"_{m['weights_note']}._",
            "",
            *(["Quality on this library's own labels:", "", "| metric | value | ceiling | chance |", "|---|---|---|---|"]
              + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in quality_rows(m)] + [""] if quality_rows(m) else []),
            "Artist-pair statistics (centroid profiles):",
            "",
            "| statistic | raw cosine (seeds' measure) | calibrated score |",
            "|---|---|---|",
        ]
        for key in ("min", "max", "mean", "std", "range"):
            lines.append(f"| {key} | {_fmt(rc.get(key))} | {_fmt(sc.get(key))} |")
        lines += ["", "Nearest artists (score; raw cosine) — musical reasons, neighbour vs query:", "", "| artist | neighbours |", "|---|---|"]
        for artist, nbs in m["neighbours"].items():
            cells = "<br>".join(f"{n['artist']} ({n['score']:.2f}; {n['raw_cosine']:.2f})"
                                + (f" — {reason_line(n['reasons'])}" if n.get("reasons") else "") for n in nbs)
            lines.append(f"| {artist} | {cells} |")
    tables = report_tables(report)
    if tables:
        exp = report.get("experiment", {})
        lines += ["", f"## Evaluation — experiment `{exp.get('name', '')}`", ""]
        if exp.get("description"):
            lines += [exp["description"].strip(), ""]
        for t in tables:
            lines += markdown_table(t)
    runs = report.get("runs") or []
    if runs:
        lines += ["", "## Run summary", "", "| stage | done | cached | failed |", "|---|---|---|---|"]
        for r in runs:
            failed = ", ".join(f"{k}: {v}" for k, v in r.get("failed", {}).items()) or "0"
            lines.append(f"| {r['stage']} | {r['done']} | {r['cached']} | {failed} |")
    return "\n".join(lines) + "\n"
