"""Query commands: backends, similar, tracks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..backends import backend_statuses
from ..query import CALIBRATIONS, PROFILES, Engine, Query, split_signals
from ..signals import SIGNALS
from ._common import BackendOpt, CalibrationOpt, JsonOpt, LayerOpt, cli_command, open_db, out, print_json, split_list
from .library_cmds import DbOpt


def backends(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List embedding backends: ready / needs an extra / weights missing (and the fix)."""
    statuses = backend_statuses()
    if json_out:
        print_json([s.as_json() for s in statuses])
        return
    t = Table("backend", "status", "weights", "dim", "rate")
    for s in statuses:
        t.add_row(s.name, s.status, s.weights_kind or "–", str(s.embedding_size), str(s.sample_rate))
    out.print(t)
    # each fix whole (paths, URLs and commands are never cut by a table column), as plain text
    for s in statuses:
        if s.status != "ready" and s.install_hint:
            out.print(Text(f"{s.name}: {s.install_hint}"))


def similar(
    artist: Annotated[Optional[str], typer.Argument(help="Artist name (case and spacing are normalised).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many neighbours.")] = 10,
    db: DbOpt = None,
    backend: BackendOpt = None,
    calibration: CalibrationOpt = None,
    layer: LayerOpt = None,
    profile: Annotated[str, typer.Option("--profile", help="Artist profile: centroid or set.")] = "centroid",
    signals: Annotated[Optional[list[str]], typer.Option("--signals", help=f"Hybrid signals ({', '.join(SIGNALS)}); repeat or comma-separate.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Hybrid config YAML (weights, CSV inputs).")] = None,
    track: Annotated[Optional[str], typer.Option("--track", help="Query a track: a path, a track id prefix (>= 6 hex), a manifest id or 'Artist - Title'.")] = None,
    exclude_same_artist: Annotated[bool, typer.Option("--exclude-same-artist", help="Track queries: leave out the query's artist.")] = False,
    exclude_same_album: Annotated[bool, typer.Option("--exclude-same-album", help="Track queries: leave out the query's album.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Artists (or tracks) that sound like ARTIST, best first, with calibrated scores and explanations."""
    from ..hybrid import HybridConfig

    if calibration is not None and calibration not in CALIBRATIONS:
        raise typer.BadParameter(f"--calibration {calibration!r}: choose one of {', '.join(CALIBRATIONS)}.")
    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}.")
    sig = split_list(signals)
    for s_ in sig:
        if s_ not in SIGNALS:
            raise typer.BadParameter(f"--signals {s_!r}: choose among {', '.join(SIGNALS)}.")
    if (artist is None) == (track is None):
        raise typer.BadParameter("give an ARTIST or --track TRACK (one of them).")
    cfg = HybridConfig.from_yaml(config) if config is not None else None
    if cfg is not None and not sig:
        sig = [s_ for s_, w in cfg.weights.items() if w > 0]
    query = Query(artist=artist, track=track, k=k, backend=backend, calibration=calibration, layer=layer,
                  profile=profile, signals=split_signals(sig), hybrid_config=cfg,
                  exclude_seed_artists=exclude_same_artist, exclude_same_album=exclude_same_album)
    with open_db(db, readonly=True) as store:
        doc = Engine(store).run(query)
    if json_out:
        print_json(doc)
        return
    q = doc["query"]
    what = q.get("artist") if "artist_id" in q and "track_id" not in q else \
        f"track {q.get('title') or q['track_id'][:12]} ({q.get('artist')})"
    out.print(Text(f"Like {what} — {doc['backend']} ({doc['weights_kind']} weights), calibration "
                   f"{doc['calibration']} ({doc['calibration_source']}), layer {doc['layer']}, "
                   f"signals {', '.join(doc['signals_used'])}"))
    cols = ["#", "artist"] + (["track"] if track else []) + ["score", "raw cosine", "because"]
    t = Table(*cols)
    for i, nb in enumerate(doc["neighbours"], 1):
        because = ", ".join(f"{s_} {v:.2f}" for s_, v in sorted(nb["contributions"].items(), key=lambda kv: -kv[1]))
        raw = f"{nb['raw_cosine']:.3f}" if "raw_cosine" in nb else "–"
        row = [str(i), nb["artist"]] + ([nb.get("title") or nb["track_id"][:12]] if track else [])
        t.add_row(*[Text(c) for c in row], f"{nb['score']:.3f}", raw, because)
    out.print(t)
    if doc.get("labels_as_signals"):
        out.print(Text(f"note: {', '.join(doc['labels_as_signals'])} uses this library's genre labels as input."))


def tracks(
    artist: Annotated[Optional[str], typer.Argument(help="Only this artist's tracks (name, normalised).")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List tracks with id, path, artist and title (what `similar --track` accepts)."""
    with open_db(db, readonly=True) as store:
        engine = Engine(store)
        rows = engine.tracks
        if artist is not None:
            a = engine.artist(artist)
            rows = [t for t in rows if t.artist_id == a.artist_id]
    docs = [{"track_id": t.track_id, "path": t.path, "artist": t.artist, "artist_id": t.artist_id, "title": t.title,
             "album": t.album, "external_id": t.external_id} for t in rows]
    if json_out:
        print_json(docs)
        return
    t = Table("id", "artist", "title", "path")
    for d in docs:
        t.add_row(d["track_id"][:12], Text(d["artist"]), Text(d["title"] or "–"), Text(d["path"]))
    out.print(t)


def register(app: typer.Typer) -> None:
    app.command()(cli_command(backends))
    app.command()(cli_command(similar))
    app.command()(cli_command(tracks))
