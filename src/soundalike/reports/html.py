"""Self-contained HTML rendering (no external assets): tables and an inline-SVG heatmap."""

from __future__ import annotations

from html import escape

import numpy as np

from .tables import quality_rows, report_tables
from ..query.reasons import reason_line
from .verdict import verdict_html

__all__ = ["render_html", "heatmap_svg", "histogram_svg", "scatter_svg", "table_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem}
th{background:#f3f3f3}.warn{background:#fff3cd;padding:.5rem;border:1px solid #e0c36c}
.meta{color:#555}svg text{font-size:10px}caption{caption-side:top;text-align:left;color:#555;font-size:.8rem;padding:.25rem 0}
.note{color:#444;font-size:.85rem;max-width:1000px}.figs{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
figure{margin:0}figcaption{font-size:.85rem;color:#333}td.l{white-space:nowrap}
.why{color:#666;font-size:.8rem}#verdict li{margin:.3rem 0;max-width:1000px}.verdict-table caption{font-weight:600}
"""


def _color(v: float) -> str:
    v = min(max(v, 0.0), 1.0)
    r, g, b = int(255 * (1 - v) + 33 * v), int(255 * (1 - v) + 102 * v), int(255 * (1 - v) + 172 * v)
    return f"rgb({r},{g},{b})"


def _label_lines(name: str, width: int) -> list[str]:
    """A name in at most two lines of about `width` characters (split at a space when it can)."""
    if len(name) <= width:
        return [name]
    cut = name.rfind(" ", 0, width + 1)
    cut = cut if cut > width // 2 else width
    rest = name[cut:].strip()
    return [name[:cut].rstrip(), rest if len(rest) <= width else rest[: width - 1] + "…"]


def _label(x: float, y: float, name: str, width: int, *, anchor: str = "end", rotate: bool = False) -> str:
    """An axis label: the full name (wrapped to two lines; the whole name on hover)."""
    lines = _label_lines(name, width)
    dy0 = -5.5 * (len(lines) - 1)
    tr = f' transform="translate({x:.0f},{y:.0f}) rotate(-60)"' if rotate else f' x="{x:.0f}" y="{y:.0f}"'
    spans = "".join(f'<tspan x="{0 if rotate else f"{x:.0f}"}" dy="{dy0 if i == 0 else 11}">{escape(t)}</tspan>'
                    for i, t in enumerate(lines))
    return f'<text{tr} text-anchor="{anchor}"><title>{escape(name)}</title>{spans}</text>'


def _legend_svg(x: float, y: float, *, label: str, lo: float = 0.0, hi: float = 1.0, height: int = 160) -> str:
    """A vertical colour bar for the heatmap: `hi` at the top, `lo` at the bottom."""
    steps = 32
    h = height / steps
    parts = [f'<text x="{x:.0f}" y="{y - 8:.0f}">{escape(label)}</text>']
    for i in range(steps):
        v = hi - (hi - lo) * (i + 0.5) / steps
        parts.append(f'<rect x="{x:.0f}" y="{y + i * h:.1f}" width="14" height="{h + 0.6:.1f}" fill="{_color((v - lo) / (hi - lo))}"/>')
    parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="14" height="{height}" fill="none" stroke="#999"/>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        ty = y + height * (1 - frac)
        parts.append(f'<line x1="{x + 14:.0f}" y1="{ty:.1f}" x2="{x + 18:.0f}" y2="{ty:.1f}" stroke="#333"/>'
                     f'<text x="{x + 21:.0f}" y="{ty + 3:.1f}">{lo + (hi - lo) * frac:.2f}</text>')
    return "".join(parts)


def heatmap_svg(names: list[str], M: list[list[float]], *, title: str, legend: str = "calibrated score (0–1)") -> str:
    """A labelled square heatmap of values in [0, 1] with a colour legend; full names, wrapped
    to two lines when long, the whole name on hover (and each cell's pair and value on hover)."""
    n = len(names)
    cell = 22
    width = min(max((len(x) for x in names), default=8), 34)  # characters per label line
    pad = int(min(max(6.0 * width, 60), 6.0 * 34)) + 14
    size = pad + n * cell + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 110}" height="{size}" role="img" aria-label="{escape(title)}">']
    for i, name in enumerate(names):
        y = pad + i * cell + cell * 0.7
        parts.append(_label(pad - 4, y, name, width))
        parts.append(_label(pad + i * cell + cell * 0.7, pad - 4, name, width, anchor="start", rotate=True))
        for j in range(n):
            v = M[i][j]
            parts.append(
                f'<rect x="{pad + j * cell}" y="{pad + i * cell}" width="{cell}" height="{cell}" fill="{_color(v)}">'
                f"<title>{escape(names[i])} / {escape(names[j])}: {v:.3f}</title></rect>"
            )
    parts.append(_legend_svg(size + 10, pad, label=legend, height=max(80, min(200, n * cell))))
    parts.append("</svg>")
    return "".join(parts)


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40]


def table_html(t: dict) -> str:
    """One table of :func:`report_tables` as an HTML table with its caption and note."""
    h = [f"<h3 id='{_anchor(t['title'])}'>{escape(t['title'])}</h3><table><caption>{escape(t['caption'])}</caption><tr>"]
    h += [f"<th>{escape(str(c))}</th>" for c in t["columns"]]
    h.append("</tr>")
    for row in t["rows"]:
        h.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    h.append("</table>")
    if t.get("note"):
        h.append(f"<p class='note'>{escape(t['note'])}</p>")
    return "".join(h)


def histogram_svg(values, *, title: str, bins: int = 20, lo: float | None = None, hi: float | None = None) -> str:
    """Bar histogram of `values` (e.g. the artist-pair scores of one model)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    w, h, pad = 320, 160, 30
    lo = float(v.min()) if lo is None and v.size else (0.0 if lo is None else lo)
    hi = float(v.max()) if hi is None and v.size else (1.0 if hi is None else hi)
    if hi <= lo:
        hi = lo + 1e-6
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    top = max(int(counts.max()) if counts.size else 1, 1)
    bw = (w - 2 * pad) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 20}" role="img" aria-label="{escape(title)}">',
             f'<text x="{pad}" y="12">{escape(title)}</text>']
    for i, c in enumerate(counts):
        bh = (h - 2 * pad) * c / top
        parts.append(f'<rect x="{pad + i * bw:.1f}" y="{h - pad - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
                     f'fill="#2166ac"><title>{edges[i]:.3f}–{edges[i + 1]:.3f}: {c}</title></rect>')
    parts.append(f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>')
    parts.append(f'<text x="{pad}" y="{h - pad + 14}">{lo:.2f}</text>')
    parts.append(f'<text x="{w - pad}" y="{h - pad + 14}" text-anchor="end">{hi:.2f}</text>')
    parts.append(f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{w / 2:.0f}" y="{h + 10}" text-anchor="middle">{v.size} pairs</text></svg>')
    return "".join(parts)


_PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b15928"]


def scatter_svg(names: list[str], xy, *, title: str, groups: list | None = None) -> str:
    """The 2-D artist map: labelled points, coloured by group (genre) when given."""
    P = np.asarray(xy, dtype=float).reshape(-1, 2)
    w, h, pad = 680, 420, 40
    mn, mx = P.min(axis=0), P.max(axis=0)
    span = np.where(mx - mn > 0, mx - mn, 1.0)
    # points keep clear of the legend column on the right (labels run ~150 px to the right)
    Q = pad + (P - mn) / span * np.array([w - 2 * pad - 280, h - 2 * pad])
    gs = sorted({str(g) for g in groups}) if groups else []
    colour = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(gs)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 20}" role="img" aria-label="{escape(title)}">',
             f'<text x="{pad}" y="14">{escape(title)}</text>']
    for i, name in enumerate(names):
        c = colour.get(str(groups[i]), "#333") if groups else "#333"
        x, y = Q[i, 0], h - Q[i, 1]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{c}"><title>{escape(name)}'
                     f'{" — " + escape(str(groups[i])) if groups else ""}</title></circle>')
        parts.append(f'<text x="{x + 7:.1f}" y="{y + 3:.1f}">{escape(name[:22])}</text>')
    for j, g in enumerate(gs):
        parts.append(f'<rect x="{w - 110}" y="{30 + 14 * j}" width="9" height="9" fill="{colour[g]}"/>'
                     f'<text x="{w - 97}" y="{38 + 14 * j}">{escape(g)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _upper(M) -> np.ndarray:
    A = np.asarray(M, dtype=float)
    return A[np.triu_indices(A.shape[0], k=1)] if A.ndim == 2 and A.shape[0] > 1 else np.array([])


def render_html(report: dict) -> str:
    h = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>soundalike report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>soundalike report</h1>",
        f"<p class='meta'>Generated {escape(report['generated_at'])} · library <code>{escape(report['library'])}</code> · "
        f"{report['n_tracks']} tracks, {report['n_artists']} artists · calibration <code>{escape(report['calibration'])}</code></p>",
        f"<p class='meta'>{escape(report.get('score_meaning', ''))}</p>",
        verdict_html(report["verdict"]) if report.get("verdict") else "",
        "<h2>Backends</h2><table><tr><th>backend</th><th>weights</th><th>dim</th><th>layer</th><th>tracks</th></tr>",
    ]
    for m in report.get("models", []):
        h.append(f"<tr><td>{escape(m['name'])}</td><td>{escape(m['weights_kind'])} — {escape(m['weights_note'])}</td>"
                 f"<td>{m['dim']}</td><td>{m['layer']}</td><td>{m['n_tracks']}</td></tr>")
    h.append("</table><h2>Artists</h2><table><tr><th>artist</th><th>tracks</th><th>genre (label)</th></tr>")
    for a in report.get("artists", []):
        h.append(f"<tr><td>{escape(a['artist'])}</td><td>{a['n_tracks']}</td><td>{escape(a.get('genre') or '–')}</td></tr>")
    h.append("</table>")
    for m in report.get("models", []):
        h.append(f"<h2>{escape(m['name'])} — {escape(m['weights_kind'])} weights</h2>")
        if m["weights_kind"] == "random":
            h.append(f"<p class='warn'>{escape(m['weights_note'])}</p>")
        q = quality_rows(m)
        if q:
            h.append("<table><caption>Quality on this library's own labels</caption>"
                     "<tr><th>metric</th><th>value</th><th>ceiling</th><th>chance</th></tr>")
            h.extend(f"<tr><td>{escape(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>" for a, b, c, d in q)
            h.append("</table>")
        rc, sc = m["raw_cosine_pairs"], m["pairs"]
        h.append("<table><tr><th>artist pairs</th><th>raw cosine</th><th>calibrated</th></tr>")
        for key in ("min", "max", "mean", "std", "range"):
            h.append(f"<tr><td>{key}</td><td>{rc[key]:.3f}</td><td>{sc[key]:.3f}</td></tr>")
        h.append("</table>")
        if m.get("score_matrix") is not None:
            h.append(heatmap_svg(m["artists"], m["score_matrix"], title=f"{m['name']} calibrated scores"))
        else:
            h.append(f"<p class='meta'>{escape(m.get('matrix_note', ''))}</p>")
        if m.get("pairs_sample"):
            h.append(f"<p class='meta'>{escape(m['pairs_sample']['note'])} "
                     f"({m['pairs_sample']['n_artists']} of {m['pairs_sample']['of']} artists).</p>")
        h.append("<table><tr><th>artist</th><th>nearest artists (score; raw cosine) and musical reasons "
                 "(neighbour vs query; estimates are heuristic)</th></tr>")
        for artist, nbs in m["neighbours"].items():
            cells = "<br>".join(f"{escape(n['artist'])} ({n['score']:.2f}; {n['raw_cosine']:.2f})"
                                + (f" <span class='why'>{escape(reason_line(n['reasons']))}</span>" if n.get("reasons") else "")
                                for n in nbs)
            h.append(f"<tr><td>{escape(artist)}</td><td>{cells}</td></tr>")
        h.append("</table>")
    genre_of = {a["artist"]: a.get("genre") for a in report.get("artists", [])}
    models = report.get("models", [])
    if models:
        h.append("<h2 id='histograms'>Pair-score histograms</h2><p class='meta'>Raw cosine of centroid profiles over all artist pairs "
                 "(the seeds' measure), one panel per model.</p><div class='figs'>")
        for m in models:
            if m.get("raw_cosine_matrix") is None:
                continue  # a large library: no matrix in the report (its pair statistics are above)
            label = f"{m['name']} ({m['weights_kind']} weights) — raw cosine"
            h.append(f"<figure>{histogram_svg(_upper(m['raw_cosine_matrix']), title=label)}</figure>")
        h.append("</div>")
    maps = report.get("artist_maps") or {}
    if maps:
        h.append("<h2 id='maps'>Artist maps</h2><p class='meta'>PCA of the calibrated artist profiles (the layout of "
                 "`soundalike map` and the web page); colour = artist genre label.</p><div class='figs'>")
        for b, mp in maps.items():
            wk = next((m["weights_kind"] for m in models if m["name"] == b), "")
            title = f"{b} ({wk} weights), calibration {mp.get('calibration')}"
            h.append(f"<figure>{scatter_svg(mp['artists'], mp['xy'], title=title, groups=[genre_of.get(a) or '–' for a in mp['artists']])}</figure>")
        h.append("</div>")
    tables = report_tables(report)
    if tables:
        exp = report.get("experiment", {})
        h.append(f"<h2 id='evaluation'>Evaluation — experiment {escape(str(exp.get('name', '')))}</h2>")
        if exp.get("description"):
            h.append(f"<p class='note'>{escape(exp['description'])}</p>")
        h.extend(table_html(t) for t in tables)
    runs = report.get("runs") or []
    if runs:
        h.append("<h2 id='runs'>Run summary</h2><table><tr><th>stage</th><th>done</th><th>cached</th><th>failed</th></tr>")
        for r in runs:
            failed = ", ".join(f"{escape(k)}: {v}" for k, v in r.get("failed", {}).items()) or "0"
            h.append(f"<tr><td>{r['stage']}</td><td>{r['done']}</td><td>{r['cached']}</td><td>{failed}</td></tr>")
        h.append("</table>")
    h.append("</body></html>")
    return "\n".join(h)
