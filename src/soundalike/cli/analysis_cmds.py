"""Analysis commands: ``matrix`` (artist × artist scores) and ``map`` (a 2-D layout of artists)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from ..errors import ParameterError
from ..query import CALIBRATIONS, PROFILES, Engine, layout_method
from ._common import BackendOpt, CalibrationOpt, JsonOpt, LayerOpt, cli_command, err, open_db, out, print_json
from .library_cmds import DbOpt

__all__ = ["register", "svg_map"]


def svg_map(xy: np.ndarray, names: list[str], *, title: str, size: int = 640) -> str:
    """A self-contained SVG scatter of the layout with artist names."""
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    pad = 60
    P = pad + (xy - lo) / span * (size - 2 * pad)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="20" font-family="sans-serif" font-size="13">{html.escape(title)}</text>']
    for (x, y), name in zip(P, names):
        parts.append(f'<circle cx="{x:.1f}" cy="{size - y:.1f}" r="4" fill="#3367d6"/>')
        parts.append(f'<text x="{x + 6:.1f}" y="{size - y + 4:.1f}" font-family="sans-serif" font-size="11">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _check(calibration: str | None, profile: str) -> None:
    if calibration is not None and calibration not in CALIBRATIONS:
        raise typer.BadParameter(f"--calibration {calibration!r}: choose one of {', '.join(CALIBRATIONS)}.")
    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}.")


def matrix(
    db: DbOpt = None,
    backend: BackendOpt = None,
    calibration: CalibrationOpt = None,
    layer: LayerOpt = None,
    profile: Annotated[str, typer.Option("--profile")] = "centroid",
    raw: Annotated[bool, typer.Option("--raw", help="Show raw cosine instead of the calibrated score.")] = False,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write CSV (or .json) instead of a table.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Artist × artist similarity matrix (calibrated scores in [0, 1]; --raw for raw cosine)."""
    _check(calibration, profile)
    with open_db(db, readonly=True) as store:
        engine = Engine(store)
        vec = engine.vectors(backend, layer)
        ids, score, raw_cos, cal = engine.artist_scores(backend=vec.model.backend, layer=vec.layer,
                                                        calibration=calibration, profile=profile)
    names = [vec.artist_names[int(a)] for a in ids]
    M = raw_cos if raw else score
    doc = {"backend": vec.model.backend, "weights_kind": vec.model.weights_kind, "calibration": cal,
           "layer": vec.layer, "profile": profile, "values": "raw_cosine" if raw else "score",
           "artists": names, "artist_ids": [int(a) for a in ids], "matrix": np.round(M, 4).tolist()}
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.suffix == ".json":
            out_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["artist", *names])
            for name, row in zip(names, M):
                w.writerow([name, *[f"{v:.4f}" for v in row]])
            out_path.write_text(buf.getvalue())
        err.print(f"wrote {out_path}")
        return
    if json_out:
        print_json(doc)
        return
    out.print(Text(f"{doc['values']} — {vec.model.backend} ({vec.model.weights_kind} weights), calibration "
                   f"{cal}, profile {profile}"))
    t = Table("", *[str(i + 1) for i in range(len(names))])
    for i, (name, row) in enumerate(zip(names, M)):
        t.add_row(Text(f"{i + 1} {name[:24]}"), *[f"{v:.2f}" for v in row])
    out.print(t)


def map_(
    db: DbOpt = None,
    backend: BackendOpt = None,
    calibration: CalibrationOpt = None,
    layer: LayerOpt = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write .svg, .csv or .json.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A 2-D map of the artists: the same layout as the web page's /api/map (PCA of calibrated profiles)."""
    _check(calibration, "centroid")
    with open_db(db, readonly=True) as store:
        engine = Engine(store)
        vec = engine.vectors(backend, layer)
        ids, xy, cal = engine.layout(backend=vec.model.backend, layer=vec.layer, calibration=calibration)
    names = [vec.artist_names[int(a)] for a in ids]
    doc = {"backend": vec.model.backend, "weights_kind": vec.model.weights_kind, "calibration": cal,
           "layer": vec.layer, "profile": "centroid", "method": layout_method(len(ids)),
           "points": [{"artist": n, "artist_id": int(a), "x": round(float(x), 5), "y": round(float(y), 5)}
                      for n, a, (x, y) in zip(names, ids, xy)]}
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.suffix == ".svg":
            title = f"{vec.model.backend} ({vec.model.weights_kind} weights), {cal}"
            out_path.write_text(svg_map(xy, names, title=title))
        elif out_path.suffix == ".json":
            out_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
        elif out_path.suffix == ".csv":
            out_path.write_text("artist,artist_id,x,y\n" + "".join(
                f"\"{p['artist']}\",{p['artist_id']},{p['x']},{p['y']}\n" for p in doc["points"]))
        else:
            raise ParameterError(f"--out {out_path}: use a .svg, .csv or .json file name.")
        err.print(f"wrote {out_path}")
        return
    if json_out:
        print_json(doc)
        return
    t = Table("artist", "x", "y")
    for p in doc["points"]:
        t.add_row(Text(p["artist"]), f"{p['x']:.3f}", f"{p['y']:.3f}")
    out.print(t)


def register(app: typer.Typer) -> None:
    app.command()(cli_command(matrix))
    app.command("map")(cli_command(map_))
