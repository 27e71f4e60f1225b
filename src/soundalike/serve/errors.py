"""Errors as JSON: ``{"error": {"type", "message"}}`` with the status the error deserves.

404 unknown artist/track, 422 bad parameter (ours and FastAPI's validation), 413 upload too
large, 415 not audio, 401/403 auth, 503 store problems, 500 anything unexpected (the message
never carries a traceback).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AudioError,
    BackendError,
    DecodeError,
    ParameterError,
    SoundalikeError,
    StoreError,
    UnknownArtistError,
    UnknownTrackError,
    UnsupportedFormatError,
)

__all__ = ["ApiError", "install_error_handlers", "error_json"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP error with its own status and type name (413, 415, 401, 403, 409, 503)."""

    def __init__(self, status: int, type_: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers


def error_json(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


def _status_of(exc: SoundalikeError) -> int:
    if isinstance(exc, (UnknownArtistError, UnknownTrackError)):
        return 404
    if isinstance(exc, (DecodeError, UnsupportedFormatError)):
        return 415
    if isinstance(exc, (ParameterError, AudioError)):
        return 422  # too short, silent, invalid: the file is audio but unusable
    if isinstance(exc, (StoreError, BackendError)):
        return 503
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{loc or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) + " (see /docs for the parameters)."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_json(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(SoundalikeError)
    async def _soundalike_error(request: Request, exc: SoundalikeError):
        status = _status_of(exc)
        if status >= 500:
            log.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return error_json(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_json(422, "ParameterError", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        names = {404: "NotFound", 405: "MethodNotAllowed", 400: "BadRequest", 413: "UploadTooLarge"}
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No endpoint {request.method} {request.url.path}; see /docs for the API."
        return error_json(exc.status_code, names.get(exc.status_code, "HTTPError"), message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_json(500, "InternalError", f"{type(exc).__name__} while serving {request.url.path}; see the server log.")
