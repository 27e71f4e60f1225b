"""Reports of a library's similarity: JSON (everything), Markdown (tables), self-contained HTML.

Every report names backend, weights kind (real/random/none), calibration, data and date;
random-weight results are labelled as such, never as model quality.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._atomic import OutputWriteError, write_files_atomically
from .build import build_report
from .html import render_html
from .markdown import render_markdown

__all__ = ["build_report", "render_markdown", "render_html", "write_reports"]


def write_reports(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into `out_dir`, atomically."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"Cannot create the report folder {out}: {exc.strerror}; choose another --out.") from None
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    # all three rendered first, then written through temporaries and renamed together: a full
    # disk leaves the previous report whole (one OutputWriteError line), never a 0-byte file
    write_files_atomically({paths["json"]: json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                            paths["md"]: render_markdown(report), paths["html"]: render_html(report)})
    return paths
