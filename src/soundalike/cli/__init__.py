"""The ``soundalike`` command line (Typer + Rich): results on stdout, progress on stderr."""

from __future__ import annotations

import sys
from typing import Annotated

from ._early import start_for_command

if __name__ == "soundalike.cli" and sys.argv[0].endswith(("soundalike", "soundalike/__main__.py")):
    start_for_command(sys.argv[1:])  # the main job's workers start importing now (see _early)

import typer  # noqa: E402

from .. import __version__  # noqa: E402
from . import library_cmds, query_cmds  # noqa: E402
from ._common import STATE, setup_logging  # noqa: E402

__all__ = ["app", "main"]

app = typer.Typer(
    name="soundalike",
    help="Which artists and tracks sound like this one? Analyse a music library and ask.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"soundalike {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    STATE["debug"] = debug
    setup_logging(verbose)


library_cmds.register(app)
query_cmds.register(app)

# Optional command groups written in their own modules register themselves when present.
for _mod in ("soundalike.cli.analysis_cmds", "soundalike.cli.eval_cmds", "soundalike.cli.serve_cmds",
             "soundalike.cli.enrich_cmds", "soundalike.cli.scale_cmds", "soundalike.cli.models_cmds",
             "soundalike.cli.player_cmds", "soundalike.cli.watch_cmds"):
    try:
        __import__(_mod, fromlist=["register"]).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _mod:
            raise


def main() -> None:
    app()
