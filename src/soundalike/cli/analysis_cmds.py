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

from ..compare import DEFAULT_CALIBRATION, load_view
from ..errors import ParameterError
from ..similarity import CALIBRATIONS, PROFILES
from ._common import cli_command, err, open_db, out, print_json
from .library_cmds import DbOpt

__all__ = ["register", "layout_2d", "svg_map"]


def layout_2d(score: np.ndarray) -> np.ndarray:
    """2-D coordinates whose distances follow ``1 - score`` (classical MDS).

    Parameters
    ----------
    score : np.ndarray [shape=(n, n)]   calibrated similarities in [0, 1]

    Returns
    -------
    np.ndarray [shape=(n, 2)]
    """
    n = score.shape[0]
    if n == 1:
        return np.zeros((1, 2))
    if n == 2:
        return np.array([[0.0, 0.0], [1.0 - float(score[0, 1]), 0.0]])
    D = 1.0 - 0.5 * (score + score.T)
    np.fill_diagonal(D, 0.0)
    D = np.clip(D, 0.0, None)
    # classical (Torgerson) MDS: deterministic, no iterations
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (D**2) @ J
    w, V = np.linalg.eigh(B)
    top = np.argsort(w)[::-1][:2]
    xy = V[:, top] * np.sqrt(np.maximum(w[top], 0.0))
    # fix the sign of each axis so the layout is reproducible across LAPACK builds
    return xy * np.where(xy[np.abs(xy).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)


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


def _similarity(db, backend, calibration, layer, profile):
    if calibration not in CALIBRATIONS:
        raise typer.BadParameter(f"--calibration {calibration!r}: choose one of {', '.join(CALIBRATIONS)}.")
    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    with open_db(db, readonly=True) as store:
        view = load_view(store, backend=backend, layer=layer)
        sim = view.artist_similarity(calibration=calibration, profile=profile)
        names = [view.artist_names[int(a)] for a in sim.labels]
    return view, sim, names


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def matrix(
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
        calibration: Annotated[str, typer.Option("--calibration")] = DEFAULT_CALIBRATION,
        layer: Annotated[Optional[int], typer.Option("--layer")] = None,
        profile: Annotated[str, typer.Option("--profile")] = "centroid",
        raw: Annotated[bool, typer.Option("--raw", help="Show raw cosine instead of the calibrated score.")] = False,
        out_path: Annotated[Optional[Path], typer.Option("--out", help="Write CSV (or .json) instead of a table.")] = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Artist × artist similarity matrix (calibrated scores in [0, 1]; --raw for raw cosine)."""
        view, sim, names = _similarity(db, backend, calibration, layer, profile)
        M = sim.raw_cosine if raw else sim.score
        doc = {"backend": view.model.backend, "weights_kind": view.model.weights_kind, "calibration": calibration,
               "layer": view.layer, "profile": profile, "values": "raw_cosine" if raw else "score",
               "artists": names, "artist_ids": [int(a) for a in sim.labels], "matrix": np.round(M, 4).tolist()}
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
        out.print(f"{doc['values']} — {view.model.backend} ({view.model.weights_kind} weights), calibration "
                  f"{calibration}, profile {profile}")
        t = Table("", *[str(i + 1) for i in range(len(names))])
        for i, (name, row) in enumerate(zip(names, M)):
            t.add_row(f"{i + 1} {name[:24]}", *[f"{v:.2f}" for v in row])
        out.print(t)

    @app.command("map")
    @cli_command
    def map_(
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
        calibration: Annotated[str, typer.Option("--calibration")] = DEFAULT_CALIBRATION,
        layer: Annotated[Optional[int], typer.Option("--layer")] = None,
        profile: Annotated[str, typer.Option("--profile")] = "centroid",
        out_path: Annotated[Optional[Path], typer.Option("--out", help="Write .svg, .csv or .json.")] = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """A 2-D map of the artists (classical MDS on 1 − calibrated score)."""
        view, sim, names = _similarity(db, backend, calibration, layer, profile)
        xy = layout_2d(sim.score)
        doc = {"backend": view.model.backend, "weights_kind": view.model.weights_kind, "calibration": calibration,
               "layer": view.layer, "profile": profile, "method": "classical MDS on 1 - score",
               "points": [{"artist": n, "artist_id": int(a), "x": round(float(x), 5), "y": round(float(y), 5)}
                          for n, a, (x, y) in zip(names, sim.labels, xy)]}
        if out_path is not None:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            if out_path.suffix == ".svg":
                title = f"{view.model.backend} ({view.model.weights_kind} weights), {calibration}, {profile}"
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
            t.add_row(p["artist"], f"{p['x']:.3f}", f"{p['y']:.3f}")
        out.print(t)
