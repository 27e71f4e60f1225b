"""``soundalike enrich``: artist tags, relations and similar-artist lists from MusicBrainz,
ListenBrainz and Last.fm, cached in the library database (``--offline`` reads only the cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ._common import cli_command, err, open_db, out, print_json, progress_bar, split_list
from .library_cmds import DbOpt


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def enrich(
        source: Annotated[Optional[list[str]], typer.Option(
            "--source", "-s", help="musicbrainz, listenbrainz, lastfm (repeatable or comma-separated; default all).")] = None,
        offline: Annotated[bool, typer.Option("--offline", help="Use only the cache; never touch the network.")] = False,
        review: Annotated[bool, typer.Option(
            "--review", help="List artists whose identity is ambiguous, not found or failed, with candidates; fetch nothing.")] = False,
        refresh: Annotated[bool, typer.Option("--refresh", help="Revalidate cached responses even when not expired.")] = False,
        export: Annotated[Optional[Path], typer.Option(
            "--export", help="Also write refs.csv, graph.csv and tags.csv (the hybrid's formats) into this folder.")] = None,
        db: DbOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Fetch artist identities, tags, relations and similar artists (cached; --offline uses the cache only)."""
        from ..enrich import EnrichSettings, enrich as run_enrich, export_csv, parse_sources
        from ..enrich.cache import load_identities
        from ..enrich.identity import review_lines

        from ..errors import ParameterError

        try:
            sources = parse_sources(split_list(source))
        except ParameterError as exc:
            raise typer.BadParameter(str(exc), param_hint="--source") from None
        if review:
            with open_db(db, readonly=True) as store:
                names = {a.artist_id: a.name for a in store.artists()}
                rows = [r for r in load_identities(store).values() if r.artist_id in names]
            pending = [r for r in rows if r.status != "matched"]
            if json_out:
                print_json([{**r.__dict__, "artist": names[r.artist_id]} for r in pending])
                return
            if not rows:
                out.print("No identities yet: run `soundalike enrich` first.")
                return
            for line in review_lines(pending, names):
                out.print(line, markup=False, highlight=False, soft_wrap=True)
            out.print(f"{len(pending)} of {len(rows)} artists need review.", highlight=False, soft_wrap=True)
            return
        settings = EnrichSettings.from_env()
        with open_db(db) as store:
            with progress_bar(not json_out) as prog:
                summary = run_enrich(store, sources=sources, offline=offline, refresh=refresh, settings=settings,
                                     progress=prog)
            paths = export_csv(store, export, settings=settings) if export is not None else None
        _print_summary(summary, settings, offline)
        if paths:
            err.print("exported " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False, soft_wrap=True)
        if json_out:
            doc = summary.as_json()
            if paths:
                doc["exported"] = {k: str(p) for k, p in paths.items()}
            print_json(doc)


def _print_summary(summary, settings, offline: bool) -> None:
    for f in summary.failures:
        err.print(f"[red]failed[/] " + escape(f"[{f.source}/{f.kind}] {f.artist}: {f.message}"), highlight=False,
                  soft_wrap=True)
    parts = [f"{s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) for s, c in summary.sources.items()]
    h = summary.http
    err.print(
        f"enrich: {summary.n_artists} artists — {summary.artists['matched']} matched, {summary.artists['ambiguous']} "
        f"ambiguous, {summary.artists['not_found']} not found, {summary.artists['failed']} failed"
        + (f"; {'; '.join(parts)}" if parts else "")
        + f"; requests {h.get('requests', 0)} (retried {h.get('retried', 0)}), cached {h.get('cached', 0)}, "
        f"revalidated {h.get('revalidated', 0)}" + (" (offline: cache only)" if offline else ""),
        highlight=False, soft_wrap=True,
    )
    if summary.fixture_responses:
        err.print(f"note: {summary.fixture_responses} cached responses are test FIXTURES (served by a local fake "
                  "server), not real service data.", highlight=False, soft_wrap=True)
    if summary.artists["ambiguous"] or summary.artists["not_found"]:
        err.print("Run `soundalike enrich --review` to see the candidates and pin ids in the manifest.", highlight=False, soft_wrap=True)
    if "contact not configured" in settings.contact and not offline and summary.http.get("requests"):
        err.print("note: set SOUNDALIKE_CONTACT (e-mail or URL) so MusicBrainz can reach you about your requests.",
                  highlight=False, soft_wrap=True)
