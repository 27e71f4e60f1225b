"""Query commands: backends, similar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..backends import backend_statuses
from ..compare import DEFAULT_CALIBRATION, similar_artists_json
from ._common import cli_command, open_db, out, print_json, split_list
from .library_cmds import DbOpt


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def backends(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
        """List embedding backends: ready / needs an extra / weights missing (and the fix)."""
        statuses = backend_statuses()
        if json_out:
            print_json([s.as_json() for s in statuses])
            return
        t = Table("backend", "status", "weights", "dim", "rate", "how to make it ready")
        for s in statuses:
            t.add_row(s.name, s.status, s.weights_kind or "–", str(s.embedding_size), str(s.sample_rate), s.install_hint)
        out.print(t)

    @app.command()
    @cli_command
    def similar(
        artist: Annotated[str, typer.Argument(help="Artist name (case and spacing are normalised).")],
        k: Annotated[int, typer.Option("-k", min=1, help="How many neighbours.")] = 10,
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
        calibration: Annotated[str, typer.Option("--calibration")] = DEFAULT_CALIBRATION,
        layer: Annotated[Optional[int], typer.Option("--layer", help="Layer of a multi-layer backend.")] = None,
        profile: Annotated[str, typer.Option("--profile", help="centroid or set.")] = "centroid",
        signals: Annotated[Optional[list[str]], typer.Option("--signals", help="Hybrid signals, e.g. audio,tags.")] = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Artists that sound like ARTIST, best first, with calibrated scores."""
        sig = split_list(signals)
        if sig and sig != ["audio"]:
            raise typer.BadParameter(f"signals {sig} need the hybrid scorer, which this build lacks.")
        with open_db(db, readonly=True) as store:
            doc = similar_artists_json(store, artist, k=k, backend=backend, calibration=calibration, layer=layer, profile=profile)
        if json_out:
            print_json(doc)
            return
        out.print(f"Artists like {doc['query']['artist']} — {doc['backend']} ({doc['weights_kind']} weights), "
                  f"calibration {doc['calibration']}, layer {doc['layer']}")
        t = Table("#", "artist", "score", "raw cosine")
        for i, nb in enumerate(doc["neighbours"], 1):
            t.add_row(str(i), nb["artist"], f"{nb['score']:.3f}", f"{nb['raw_cosine']:.3f}")
        out.print(t)
