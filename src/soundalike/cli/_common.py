"""Shared CLI plumbing: one error handler, --db resolution, list options, progress on stderr."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import SoundalikeError
from ..naming import ARTIST_RULES
from ..store import Store, default_db_path

__all__ = ["BackendOpt", "CalibrationOpt", "LayerOpt", "JsonOpt", "err", "out", "cli_command", "open_db", "split_list", "progress_bar", "print_json", "refresh_defaults", "STATE",
           "ArtistFromOpt", "apply_artist_rule"]

# options shared by the query commands (similar, matrix, map, tracks)
BackendOpt = Annotated[Optional[str], typer.Option("--backend", "-b", help="Backend (default: the best stored one).")]
CalibrationOpt = Annotated[Optional[str], typer.Option("--calibration", help="Calibration (default: the backend's validated default).")]
LayerOpt = Annotated[Optional[int], typer.Option("--layer", help="Layer of a multi-layer backend.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="The JSON document on stdout.")]
def _check_artist_from(value: str | None) -> str | None:
    if value is not None and value not in ARTIST_RULES:
        raise typer.BadParameter(f"takes {', '.join(ARTIST_RULES)}, got {value!r}.")
    return value


ArtistFromOpt = Annotated[Optional[str], typer.Option(
    "--artist-from", metavar="auto|track|album", callback=_check_artist_from,
    help="Which tag names a track's artist: auto (the album artist, but a compilation's or soundtrack's tracks keep "
         "their own), track or album. The library remembers it (env SOUNDALIKE_ARTIST_FROM; at first auto).")]

err = Console(stderr=True, soft_wrap=True)  # one error = one line, whatever the width
out = Console(highlight=False, soft_wrap=True)
STATE: dict[str, Any] = {"debug": False}


def cli_command(fn: Callable) -> Callable:
    """Turn a ``SoundalikeError`` into one clear line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SoundalikeError as exc:
            if STATE["debug"]:
                raise
            # the message holds user text (paths, names): never read it as Rich markup
            err.print(Text.assemble(("Error: ", "bold red"), str(exc)), highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("Interrupted; what was committed is kept, rerun to continue.")
            raise typer.Exit(130) from None

    return wrapper


def open_db(db: Path | None, *, readonly: bool = False) -> Store:
    return Store(db if db is not None else default_db_path(), readonly=readonly)


def apply_artist_rule(store: Store, value: str | None) -> int:
    """Make ``--artist-from`` (else ``$SOUNDALIKE_ARTIST_FROM``) the library's artist rule.

    A change re-derives the stored artists from their tags (no audio is read) and says so on
    stderr; returns how many tracks changed artist. Without either, the library's rule stays.
    """
    rule = value or os.environ.get("SOUNDALIKE_ARTIST_FROM") or None
    if rule is None:
        return 0
    if rule not in ARTIST_RULES:
        raise typer.BadParameter(f"SOUNDALIKE_ARTIST_FROM takes {', '.join(ARTIST_RULES)}, got {rule!r}.")
    before = store.artist_rule()
    moved = store.set_artist_rule(rule)
    if before != rule:
        err.print(f"artist rule {before} -> {rule}: {moved} track(s) changed artist (from the stored tags)",
                  markup=False, highlight=False)
    return moved


def split_list(values: Iterable[str] | None) -> list[str]:
    """Repeatable options that also accept commas: ``--backend a --backend b,c``."""
    items: list[str] = []
    for v in values or []:
        items.extend(x.strip() for x in v.split(",") if x.strip())
    return list(dict.fromkeys(items))


@contextmanager
def progress_bar(enabled: bool = True):
    """Yield a ``progress(stage, done, total)`` callback drawing rich bars on stderr."""
    if not enabled:
        yield None
        return
    # per-track updates with the rate and the time left (long runs)
    with Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=err, transient=False) as prog:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total, rate="")
            prog.update(tasks[stage], completed=done, total=total)
            speed = prog.tasks[tasks[stage]].speed  # rich's moving estimate, items per second
            prog.update(tasks[stage], rate=f"{speed:.2f} tracks/s" if speed else "")

        yield update


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def refresh_defaults(store: Store, *, quiet: bool = False) -> list[dict]:
    """After vectors changed: choose and save each model's default calibration (query engine).

    One line per model on stderr: the choice and its validation figure.
    """
    from ..query import refresh_calibrators

    done = refresh_calibrators(store)
    if not quiet:
        for d in done:
            if d.get("unchanged"):
                continue
            fig = d.get("results", {}).get(d["calibration"], {}).get("cv_map")
            how = f"5-fold-by-artist mAP {fig:.3f}" if fig is not None else d["method"]
            err.print(f"default calibration of {d['backend']}: {d['calibration']} ({how})", markup=False, highlight=False)
    return done
