"""``soundalike serve``: the HTTP API, the artist-map page and the Subsonic endpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import cli_command, err, print_json
from .library_cmds import DbOpt


def _joined(values: list[str] | None) -> tuple[str, ...] | None:
    """Repeatable and comma-separated option values; None when not given (the environment decides)."""
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _own_credentials(settings) -> dict[str, str]:
    if settings.api_token:
        return {"Authorization": f"Bearer {settings.api_token}"}
    if settings.api_key:
        return {"X-API-Key": settings.api_key}
    if settings.subsonic_user and settings.subsonic_password is not None:
        raw = f"{settings.subsonic_user}:{settings.subsonic_password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {}


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
        public: Annotated[bool, typer.Option("--public", help="Serve /api and the page without credentials even when "
                                                              "some are configured (said at start-up).")] = False,
        allowed_host: Annotated[Optional[list[str]], typer.Option(
            "--allowed-host", help="Host name clients may use besides loopback names and IP addresses (a reverse "
                                   "proxy's public name; '.example.org' for its subdomains); repeatable.")] = None,
        trusted_proxy: Annotated[Optional[list[str]], typer.Option(
            "--trusted-proxy", help="Address or network of a reverse proxy whose X-Forwarded-For/-Proto are believed; "
                                    "repeatable.")] = None,
    ) -> None:
        """Serve the library: JSON API (/api, docs at /docs), the map page (/), Subsonic (/rest).

        Subsonic is on only when SOUNDALIKE_SUBSONIC_USER + SOUNDALIKE_SUBSONIC_PASSWORD or
        SOUNDALIKE_API_KEY are set. With any credential configured (those, or SOUNDALIKE_API_TOKEN),
        /api and the page need one too (unless --public); see docs/security.md.
        """
        from ..serve import Settings, create_app

        settings = Settings.from_env(
            db, backend=backend, calibration=calibration, library_root=library, library_manifest=manifest,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb else None, watch=watch or None,
            public=public or None, allowed_hosts=_joined(allowed_host), trusted_proxies=_joined(trusted_proxy),
        )
        if not settings.db.exists():
            raise typer.BadParameter(f"{settings.db} does not exist; build it with `soundalike run` or `soundalike ingest`.",
                                     param_hint="--db")
        app = create_app(settings)
        if get is not None:
            from fastapi.testclient import TestClient

            # the operator's own request: it carries the configured credentials and a loopback Host
            with TestClient(app, base_url="http://localhost", headers=_own_credentials(settings)) as client:
                r = client.get(get)
            try:
                print_json(r.json())
            except json.JSONDecodeError:
                typer.echo(r.text)
            if r.status_code >= 400:
                raise typer.Exit(1)
            return
        from ..serve.server import run

        err.print(f"soundalike serving {settings.db} on http://{host}:{port}/ (API docs: /docs"
                  f"{', Subsonic: /rest' if settings.subsonic_enabled else ''})")
        if settings.public and settings.credentials_configured:
            err.print("[yellow]--public: /api and the page answer without credentials[/yellow] (/rest keeps Subsonic's own).")
        elif settings.auth_required:
            err.print("Credentials needed on /api and the page: HTTP Basic (Subsonic user), the API key, or /login.")
        elif host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"[yellow]No credentials configured and bound to {host}: anyone who can reach it reads the "
                      "library.[/yellow] Set SOUNDALIKE_SUBSONIC_USER/_PASSWORD (docs/security.md).")
        run(app, settings, host=host, port=port)
