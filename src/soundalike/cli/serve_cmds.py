"""``soundalike serve``: the HTTP API, the artist-map page and the Subsonic endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import cli_command, err, print_json
from .library_cmds import DbOpt


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def serve(
        db: DbOpt = None,
        port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8000,
        host: Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 to expose it).")] = "127.0.0.1",
        backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="Backend answering queries.")] = None,
        calibration: Annotated[Optional[str], typer.Option("--calibration", help="Default calibration.")] = None,
        library: Annotated[Optional[Path], typer.Option("--library", help="Folder that POST /api/admin/rescan ingests.")] = None,
        manifest: Annotated[Optional[Path], typer.Option("--manifest", help="Manifest the rescan ingests with.")] = None,
        max_upload_mb: Annotated[Optional[float], typer.Option("--max-upload-mb", min=0.001, help="Upload cap (default 20).")] = None,
        watch: Annotated[bool, typer.Option("--watch", help="Follow --library: new, changed, moved and deleted files are analysed and served at once.")] = False,
        get: Annotated[Optional[str], typer.Option("--get", help="Answer one GET (e.g. /api/health) on stdout and exit.")] = None,
    ) -> None:
        """Serve the library: JSON API (/api, docs at /docs), the map page (/), Subsonic (/rest).

        Subsonic is on only when SOUNDALIKE_SUBSONIC_USER + SOUNDALIKE_SUBSONIC_PASSWORD or
        SOUNDALIKE_API_KEY are set; write endpoints need SOUNDALIKE_API_TOKEN.
        """
        from ..serve import Settings, create_app

        settings = Settings.from_env(
            db, backend=backend, calibration=calibration, library_root=library, library_manifest=manifest,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb else None, watch=watch or None,
        )
        if not settings.db.exists():
            raise typer.BadParameter(f"{settings.db} does not exist; build it with `soundalike run` or `soundalike ingest`.",
                                     param_hint="--db")
        app = create_app(settings)
        if get is not None:
            from fastapi.testclient import TestClient

            with TestClient(app) as client:
                r = client.get(get)
            try:
                print_json(r.json())
            except json.JSONDecodeError:
                typer.echo(r.text)
            if r.status_code >= 400:
                raise typer.Exit(1)
            return
        import uvicorn

        err.print(f"soundalike serving {settings.db} on http://{host}:{port}/ (API docs: /docs"
                  f"{', Subsonic: /rest' if settings.subsonic_enabled else ''})")
        uvicorn.run(app, host=host, port=port, log_level="warning")
