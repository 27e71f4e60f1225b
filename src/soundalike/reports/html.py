"""Self-contained HTML rendering (no external assets): tables and an inline-SVG heatmap."""

from __future__ import annotations

from html import escape

__all__ = ["render_html", "heatmap_svg"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem}
th{background:#f3f3f3}.warn{background:#fff3cd;padding:.5rem;border:1px solid #e0c36c}
.meta{color:#555}svg text{font-size:10px}
"""


def _color(v: float) -> str:
    v = min(max(v, 0.0), 1.0)
    r, g, b = int(255 * (1 - v) + 33 * v), int(255 * (1 - v) + 102 * v), int(255 * (1 - v) + 172 * v)
    return f"rgb({r},{g},{b})"


def heatmap_svg(names: list[str], M: list[list[float]], *, title: str) -> str:
    """A labelled square heatmap of values in [0, 1]."""
    n = len(names)
    cell, pad = 22, 170
    size = pad + n * cell + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" aria-label="{escape(title)}">']
    for i, name in enumerate(names):
        y = pad + i * cell + cell * 0.7
        parts.append(f'<text x="{pad - 4}" y="{y:.0f}" text-anchor="end">{escape(name[:26])}</text>')
        parts.append(f'<text transform="translate({pad + i * cell + cell * 0.7:.0f},{pad - 4}) rotate(-60)">{escape(name[:26])}</text>')
        for j in range(n):
            v = M[i][j]
            parts.append(
                f'<rect x="{pad + j * cell}" y="{pad + i * cell}" width="{cell}" height="{cell}" fill="{_color(v)}">'
                f"<title>{escape(names[i])} / {escape(names[j])}: {v:.3f}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict) -> str:
    h = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>soundalike report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>soundalike report</h1>",
        f"<p class='meta'>Generated {escape(report['generated_at'])} · library <code>{escape(report['library'])}</code> · "
        f"{report['n_tracks']} tracks, {report['n_artists']} artists · calibration <code>{escape(report['calibration'])}</code></p>",
        f"<p class='meta'>{escape(report.get('score_meaning', ''))}</p>",
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
        rc, sc = m["raw_cosine_pairs"], m["pairs"]
        h.append("<table><tr><th>artist pairs</th><th>raw cosine</th><th>calibrated</th></tr>")
        for key in ("min", "max", "mean", "std", "range"):
            h.append(f"<tr><td>{key}</td><td>{rc[key]:.3f}</td><td>{sc[key]:.3f}</td></tr>")
        h.append("</table>")
        h.append(heatmap_svg(m["artists"], m["score_matrix"], title=f"{m['name']} calibrated scores"))
        h.append("<table><tr><th>artist</th><th>nearest artists (score; raw cosine)</th></tr>")
        for artist, nbs in m["neighbours"].items():
            cells = "; ".join(f"{escape(n['artist'])} ({n['score']:.2f}; {n['raw_cosine']:.2f})" for n in nbs)
            h.append(f"<tr><td>{escape(artist)}</td><td>{cells}</td></tr>")
        h.append("</table>")
    runs = report.get("runs") or []
    if runs:
        h.append("<h2>Run summary</h2><table><tr><th>stage</th><th>done</th><th>cached</th><th>failed</th></tr>")
        for r in runs:
            failed = ", ".join(f"{escape(k)}: {v}" for k, v in r.get("failed", {}).items()) or "0"
            h.append(f"<tr><td>{r['stage']}</td><td>{r['done']}</td><td>{r['cached']}</td><td>{failed}</td></tr>")
        h.append("</table>")
    h.append("</body></html>")
    return "\n".join(h)
