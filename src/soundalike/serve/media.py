"""Audio previews and offline API docs.

* ``GET /api/tracks/{track_id}/audio`` (and HEAD) — the track's file for the page's audio
  preview, with HTTP range requests (seeking); under the same access rule as the rest of
  ``/api`` (:mod:`soundalike.serve.access`). The path comes from the store, never from the request.
* ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served with **local** assets from the pinned
  ``fastapi-offline`` package (Swagger UI and ReDoc bundles), under ``/docs-assets/``: they
  render on a machine without internet. FastAPI's own CDN-backed pages are turned off in
  ``create_app`` (``docs_url=None, redoc_url=None``).
"""

from __future__ import annotations

import importlib.util
import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from .errors import ApiError
from .models import ErrorResponse

__all__ = ["router", "AUDIO_TYPES", "docs_assets_dir"]

router = APIRouter()

#: Content types browsers play, by file suffix (the page's <audio> element reads this).
AUDIO_TYPES = {".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac",
               ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
               ".aif": "audio/aiff", ".aiff": "audio/aiff", ".wma": "audio/x-ms-wma", ".webm": "audio/webm"}
ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "application/javascript", "favicon.png": "image/png"}
#: The docs pages may load nothing from outside the server: ReDoc's sidebar otherwise fetches a
#: logo from its CDN (and would wait on it offline); the image then falls back to nothing.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")
INSTALL_HINT = "pip install fastapi-offline==1.7.7 (it carries the Swagger UI and ReDoc files)"


def docs_assets_dir() -> Path | None:
    """The folder of the Swagger UI / ReDoc files inside the ``fastapi_offline`` package, or None.

    Found without importing the package (its import builds nothing we need).
    """
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / f).is_file() for f in ASSETS) else None


@router.get("/api/tracks/{track_id}/audio", include_in_schema=True, tags=["media"],
            responses={200: {"content": {"audio/*": {}}, "description": "The audio file (range requests accepted)"},
                       404: {"model": ErrorResponse, "description": "Unknown track, or its file is missing"}})
def track_audio(
    request: Request,
    track_id: Annotated[str, PathParam(description="Track id: lowercase sha256 hex of the file", min_length=1, max_length=128)],
) -> FileResponse:
    """The track's audio file for previews; send ``Range: bytes=START-END`` to seek (206 Partial Content)."""
    state = request.app.state.library
    track = state.track(track_id)  # 404 UnknownTrackError
    path = Path(track.path)
    if not path.is_file():
        raise ApiError(404, "FileMissing", f"The file of track {track.track_id} ({path.name}) is missing on the server; "
                                           "rescan the library (`soundalike ingest`) or restore the file.")
    media = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Starlette's FileResponse answers Range requests itself (206, Content-Range, 416 when unsatisfiable).
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


def _assets_or_503() -> Path:
    folder = docs_assets_dir()
    if folder is None:
        raise ApiError(503, "DocsAssetsMissing", f"The offline API docs need their asset files: {INSTALL_HINT}. "
                                                 "The OpenAPI document itself is at /openapi.json.")
    return folder


@router.get("/docs-assets/{name}", include_in_schema=False)
def docs_asset(name: str) -> FileResponse:
    if name not in ASSETS:  # a fixed list: never a path from the request
        raise ApiError(404, "NotFound", f"No docs asset {name!r}; the assets are {', '.join(sorted(ASSETS))}.")
    return FileResponse(_assets_or_503() / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})


@router.get("/docs", include_in_schema=False)
def swagger_docs(request: Request) -> HTMLResponse:
    _assets_or_503()
    app = request.app
    page = get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — API docs",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon.png",
                               swagger_ui_parameters={"validatorUrl": None})  # no call to validator.swagger.io
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/redoc", include_in_schema=False)
def redoc_docs(request: Request) -> HTMLResponse:
    _assets_or_503()
    app = request.app
    page = get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} — API reference",
                          redoc_js_url="/docs-assets/redoc.standalone.js",
                          redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
