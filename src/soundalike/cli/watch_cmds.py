"""``soundalike watch``: keep a library's store current while its folder changes."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import cli_command, err, open_db, split_list
from .library_cmds import DbOpt, JobsOpt, WindowOpt


def _describe(event) -> str:
    s = event.summary
    if event.kind == "analysed" and s is not None and s.ingest is not None:
        i = s.ingest
        emb = f", {s.embed.done} embedded" if s.embed is not None else ""
        return f"{len(event.paths) or i.done + i.cached} file(s): {i.done} new or changed, {i.cached} known{emb}, {s.n_failed} failed"
    if event.kind == "removed" and s is not None:
        return f"{len(event.paths)} file(s) gone: {s.removed} track(s) forgotten"
    if event.kind == "calibrated":
        return "default calibrations refreshed"
    return event.message


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def watch(
        library: Annotated[Path, typer.Argument(help="Music folder to follow.")],
        db: DbOpt = None,
        backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend(s); default: those of run.")] = None,
        window: WindowOpt = "middle",
        jobs: JobsOpt = 1,
        settle: Annotated[float, typer.Option("--settle", min=0.0, help="Seconds a file's size and mtime must stay unchanged before it is analysed.")] = 2.0,
        rescan: Annotated[float, typer.Option("--rescan", min=0.0, help="Seconds between full rescans (where events do not arrive); 0: never.")] = 3600.0,
        poll: Annotated[bool, typer.Option("--poll", help="Poll the folder instead of file-system events (network mounts).")] = False,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Files per analysis batch.")] = 64,
        catch_up: Annotated[bool, typer.Option("--catch-up/--no-catch-up", help="Analyse the whole folder first (what changed while nobody watched).")] = True,
    ) -> None:
        """Follow LIBRARY: new, changed, moved and deleted files update the store until Ctrl-C.

        Files are analysed once they stop changing (--settle); a moved file keeps its id; nothing is
        pruned when the folder is missing or most of it vanishes at once (reported instead).
        Each batch is committed before the next starts: Ctrl-C or kill -9 keeps what was committed.
        """
        from ..analysis import default_backend_names, executor_for
        from ..audio import WindowPolicy
        from ..backends import load_backend
        from ..watch import LibraryWatcher, WatchOptions, require_watchfiles

        require_watchfiles()
        if not library.expanduser().is_dir():
            raise typer.BadParameter(f"{library} is not a folder.", param_hint="LIBRARY")
        names = split_list(backend) or default_backend_names(
            note=lambda _n, why: err.print(f"[yellow]note:[/] {why}", highlight=False))
        policy = WindowPolicy.parse(window)
        models = [load_backend(n) for n in names]
        executor = executor_for(models, jobs)
        opts = WatchOptions(settle_s=settle, rescan_s=rescan, poll=poll, batch_size=batch_size)
        stop = threading.Event()
        # SIGTERM (systemd, docker stop) ends the watch like Ctrl-C: after the batch in flight
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            with open_db(db) as store:
                watcher = LibraryWatcher(store, library, models, policy=policy, executor=executor, options=opts,
                                         on_change=lambda ev: err.print(f"watch: {_describe(ev)}", markup=False,
                                                                        highlight=False))
                err.print(f"watching {watcher.root} ({', '.join(names) or 'no backend'}); Ctrl-C stops", markup=False)
                try:
                    watcher.run(stop, catch_up=catch_up)
                except KeyboardInterrupt:
                    err.print("stopped: everything analysed so far is committed", markup=False)
                    raise typer.Exit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            executor.close()
