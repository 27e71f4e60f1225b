"""``soundalike models list|pull NAME|import PATH``: the weights of the backends that need them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from ..backends import _pull, _sources
from ._common import cli_command, err, out, print_json

__all__ = ["register"]

models_app = typer.Typer(help="List, pull, verify and import model weights.", no_args_is_help=True)


class _RichTransfer:
    """Byte progress on stderr: one bar per file with size, rate and time left."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        if self.task is not None:
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(name, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(src: _sources.WeightsSource) -> bool:
    """Ask for a yes on a terminal; scripts (no terminal) must pass --accept-licence."""
    if not _stdin_is_terminal():
        return False
    return typer.confirm(f"Accept the {src.licence} licence of {src.name} (non-commercial use only)?", default=False,
                         err=True)


def _short(revision: str | None) -> str:
    """A hub commit shortened as git does; other revisions (tags, package versions) as they are."""
    if revision and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision[:12]
    return revision or "-"


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:,.1f} MB"


@models_app.command("list")
@cli_command
def list_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Every backend that needs weights: ready / missing / bad-checksum, where, size, source, licence, revision."""
    rows = _sources.all_statuses()
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    colour = {"ready": "green", "missing": "yellow", "bad-checksum": "red"}
    out.print(f"{'name':<16}{'status':<14}{'licence':<14}{'revision':<16}{'size':>11}  path", highlight=False)
    for r in rows:
        status = f"[{colour[r.status]}]{r.status:<14}[/]"
        out.print(f"{r.name:<16}{status}{r.licence:<14}{escape(_short(r.revision)):<16}{_mb(r.size_bytes):>11}  "
                  f"{escape(r.path or '')}", highlight=False)
        if r.detail:
            out.print(f"{'':<16}[dim]{escape(r.detail)}[/]", highlight=False)


@models_app.command("pull")
@cli_command
def pull_cmd(
    name: Annotated[str, typer.Argument(help="Backend whose weights to fetch (see `soundalike models list`).")],
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit (MERT); default main.")] = None,
    accept_licence: Annotated[bool, typer.Option("--accept-licence", help="Accept a non-commercial licence without asking (scripts).")] = False,
    progress_on: Annotated[bool, typer.Option("--progress/--no-progress", help="Draw a progress bar on stderr.")] = True,
) -> None:
    """Fetch weights from their source, verify the sha256 and put them in place (resumable, atomic)."""
    src = _sources.source_for(name)
    if src.kind != "pip":
        err.print(_pull.licence_line(src), highlight=False)
        _pull.check_licence(src, accept_licence, _confirm)  # before any byte is fetched
    columns = (TextColumn("{task.description:>28}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not progress_on) as progress:
        result = _pull.pull(name, revision=revision, accept_licence=True, transfer=_RichTransfer(progress))
    _print_ready(result)
    for file, digest in sorted(result.files.items()):
        out.print(f"{digest}  {escape(str(result.folder / file))}", highlight=False)


@models_app.command("import")
@cli_command
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A downloaded snapshot folder or weights file.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Backend the files belong to (guessed when omitted).")] = None,
    link: Annotated[bool, typer.Option("--link", help="Symlink the files instead of copying them.")] = False,
) -> None:
    """Verify weights on disk (machines without internet) and put them where the backends look."""
    result = _pull.import_weights(path, name=name, link=link)
    _print_ready(result, "linked" if link else "copied")
    for file, digest in sorted(result.files.items()):
        out.print(f"{digest}  {escape(str(result.folder / file))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _print_ready(result, *notes: str) -> None:
    """One line on stderr: where the weights now are, their revision and size."""
    details = ", ".join([f"revision {escape(result.revision)}", _mb(result.size_bytes), *notes])
    err.print(f"{result.name}: ready in {escape(str(result.folder))} ({details})", highlight=False)
