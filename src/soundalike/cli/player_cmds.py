"""Commands that reach the player and the data scientist: playlist, mpd queue|radio, prune, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import cli_command, err, open_db, out, print_json
from .library_cmds import DbOpt


HostOpt = Annotated[Optional[str], typer.Option("--host", help="MPD host or socket (default: $MPD_HOST, else localhost).")]
PortOpt = Annotated[Optional[int], typer.Option("--port", help="MPD port (default: $MPD_PORT, else 6600).")]
PasswordOpt = Annotated[Optional[str], typer.Option("--password", help="MPD password (default: from MPD_HOST=password@host).")]
MusicDirOpt = Annotated[Optional[Path], typer.Option("--music-dir", help="MPD's music_directory as the store sees it "
                                                    "(default: learnt from the playing song's path).")]

mpd_app = typer.Typer(help="Fill MPD's queue with tracks that sound like the song playing.", no_args_is_help=True)


@mpd_app.command("queue")
@cli_command
def mpd_queue(
    n: Annotated[int, typer.Option("-n", min=1, help="How many tracks to append.")] = 20,
    host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, music_dir: MusicDirOpt = None,
    artist_gap: Annotated[int, typer.Option("--artist-gap", min=0)] = 3,
    db: DbOpt = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
) -> None:
    """Append N tracks that sound like the song MPD is playing."""
    from ..mpd_client import MpdSettings, connect, queue_similar

    client = connect(MpdSettings.resolve(host, port, password))
    try:
        with open_db(db, readonly=True) as store:
            res = queue_similar(client, store, n=n, music_dir=music_dir, artist_gap=artist_gap, backend=backend)
    finally:
        client.disconnect()
    for name in res.added:
        out.print(name)
    msg = f"queued {len(res.added)} tracks like {res.playing}"
    if res.skipped_outside:
        msg += f"; {res.skipped_outside} similar tracks lie outside MPD's music directory (check --music-dir)"
    err.print(msg)


@mpd_app.command("radio")
@cli_command
def mpd_radio(
    n: Annotated[int, typer.Option("-n", min=1, help="Tracks appended at each top-up.")] = 10,
    keep: Annotated[int, typer.Option("--keep", min=1, help="Top up when fewer songs than this follow the playing one.")] = 3,
    host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, music_dir: MusicDirOpt = None,
    artist_gap: Annotated[int, typer.Option("--artist-gap", min=0)] = 3,
    db: DbOpt = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
) -> None:
    """Keep MPD's queue topped up with similar tracks as songs play, until stopped (Ctrl-C)."""
    from ..mpd_client import MpdSettings, connect, radio

    settings = MpdSettings.resolve(host, port, password)
    client = connect(settings)
    err.print(f"radio on MPD at {settings.where}: topping up below {keep} queued songs; Ctrl-C stops")
    try:
        with open_db(db, readonly=True) as store:
            radio(client, store, n=n, keep=keep, music_dir=music_dir, artist_gap=artist_gap, backend=backend,
                  on_topup=lambda r: err.print(f"queued {len(r.added)} tracks like {r.playing}"))
    finally:
        client.disconnect()


def register(app: typer.Typer) -> None:
    app.add_typer(mpd_app, name="mpd")

    @app.command()
    @cli_command
    def playlist(
        seeds: Annotated[Optional[list[str]], typer.Argument(help="Tracks (path, id prefix, manifest track_id, \"Artist - Title\") or artists.")] = None,
        n: Annotated[int, typer.Option("-n", min=1, help="Playlist length.")] = 30,
        path: Annotated[Optional[tuple[str, str]], typer.Option("--path", help="START END: a sonic path from one track to another.")] = None,
        artist_gap: Annotated[int, typer.Option("--artist-gap", min=0, help="No artist repeats within this many tracks.")] = 3,
        out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write an .m3u8 playlist file.")] = None,
        root: Annotated[Optional[Path], typer.Option("--root", help="Make the m3u8 paths relative to this folder.")] = None,
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b")] = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """A mix that sounds like the seeds (seeds left out, artists spaced, no recording twice), or a path."""
        from ..playlist import make_playlist, sonic_path, write_m3u8

        if bool(seeds) == (path is not None):
            raise typer.BadParameter("give SEED... or --path START END (one of them, not both).")
        with open_db(db, readonly=True) as store:
            if path is not None:
                pl = sonic_path(store, path[0], path[1], n=n, backend=backend)
            else:
                pl = make_playlist(store, seeds or [], n=n, artist_gap=artist_gap, backend=backend)
        if out_file is not None:
            write_m3u8(pl, out_file, root=root)
            err.print(f"wrote {len(pl.tracks)} tracks to {out_file}")
        if json_out:
            print_json(pl.as_json())
            return
        if out_file is None:
            for i, t in enumerate(pl.tracks, 1):
                out.print(f"{i:>3}  {t.score:.3f}  {t.artist} - {t.title or Path(t.path).stem}")
        if pl.rules.get("artist_gap_relaxed"):
            err.print(f"note: the library ran out of other artists; some artists repeat within {artist_gap} tracks.")

    @app.command()
    @cli_command
    def prune(
        db: DbOpt = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")] = False,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Drop tracks whose files are gone, with their vectors, and refresh the saved calibrators."""
        from ..prune import prune as prune_store

        with open_db(db, readonly=dry_run) as store:
            report = prune_store(store, dry_run=dry_run)
        if json_out:
            print_json(report.as_json())
            return
        verb = "would remove" if dry_run else "removed"
        for t in report.removed:
            out.print(f"{verb} {t.track_id[:12]}  {t.artist} - {t.title or Path(t.path).stem}  ({t.path})")
        for tid, old, new in report.moved:
            out.print(f"{'would move' if dry_run else 'moved'} {tid[:12]}  {old} -> {new}")
        n = len(report.removed)
        summary = f"{n} track{'s' if n != 1 else ''} {verb}"
        if report.forgotten_paths:
            summary += f", {len(report.forgotten_paths)} stale other path(s) {'to forget' if dry_run else 'forgotten'}"
        if report.calibrators_refreshed:
            summary += "; saved calibrators refreshed"
        err.print(summary + ("; run without --dry-run to apply." if dry_run and (n or report.moved) else "."))

    @app.command()
    @cli_command
    def export(
        format: Annotated[str, typer.Option("--format", help="npz (NumPy, always available) or parquet (needs the parquet extra).")] = "npz",
        out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write (default: vectors-BACKEND.FORMAT).")] = None,
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="Model to export (default: the library's default).")] = None,
        layer: Annotated[Optional[int], typer.Option("--layer", help="Layer of a multi-layer backend.")] = None,
    ) -> None:
        """Write track ids, paths, artists and vectors of one model for data scientists."""
        from ..export import FORMATS, export_vectors

        if format not in FORMATS:
            raise typer.BadParameter(f"--format {format!r}: choose one of {', '.join(FORMATS)}.")
        with open_db(db, readonly=True) as store:
            target = out_path or Path(f"vectors-{backend or 'default'}.{format}")
            table = export_vectors(store, target, format=format, backend=backend, layer=layer)
        m = table.meta
        err.print(f"wrote {len(table)} tracks × {m['dim']} dims of {m['backend']} ({m['weights_kind']} weights, "
                  f"layer {m['layer']}) to {target}")
