"""Reports of a library's similarity: JSON (everything), Markdown (tables), self-contained HTML.

Every report names backend, weights kind (real/random/none), calibration, data and date;
random-weight results are labelled as such, never as model quality.
"""

from __future__ import annotations

import json
from pathlib import Path

from .build import build_report
from .html import render_html
from .markdown import render_markdown

__all__ = ["build_report", "render_markdown", "render_html", "write_reports"]


def write_reports(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths
