"""The soundalike service: JSON API, the artist-map page and Subsonic/OpenSubsonic endpoints.

``create_app(settings)`` builds the FastAPI app; the store and the similarity models load in
the app's lifespan (never at import), so importing this package is cheap.

Examples
--------
>>> from soundalike.serve import Settings, create_app     # doctest: +SKIP
>>> app = create_app(Settings(db="library.db"))            # doctest: +SKIP
>>> # uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .access import AccessGuard, LoginThrottle, Sessions
from .access import router as access_router
from .errors import install_error_handlers
from .settings import DEFAULT_MAX_UPLOAD_BYTES, Settings

__all__ = ["create_app", "Settings", "DEFAULT_MAX_UPLOAD_BYTES", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
#: largest body of any request but an upload (forms, Subsonic POST)
MAX_FORM_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, *, db: str | os.PathLike | None = None) -> FastAPI:
    """Build the service app.

    Parameters
    ----------
    settings : Settings, optional
        Default: :meth:`Settings.from_env` with `db`.
    db : path, optional
        Shortcut for ``Settings.from_env(db)``.

    Returns
    -------
    FastAPI
        Routes: ``/api/...`` (JSON, OpenAPI at ``/docs``), ``/`` (the page), and ``/rest/...``
        (Subsonic) when a Subsonic account or API key is configured.
    """
    settings = settings or Settings.from_env(db)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from .library_state import LibraryState

        state = LibraryState(settings)
        if settings.precompute:
            # Build the default artist scores and track index now: the first query stays fast.
            await asyncio.to_thread(state.warm_up)
        app.state.library = state
        app.state.query_slots = asyncio.Semaphore(settings.max_concurrent_queries)
        if settings.auth_required:
            log.info("credentials needed on /api and the page (HTTP Basic, API key or the login form)")
        elif settings.public and settings.credentials_configured:
            log.warning("public: /api and the page answer without credentials (--public); /rest keeps its own")
        log.info("serving %s: %d artists, %d tracks, backends %s", settings.db, len(state.artists), len(state.tracks),
                 ", ".join(state.backends) or "none")
        from .reloader import follow_store

        watching = None
        if settings.watch:  # the watcher is the store's one writer; its commits trigger the reload
            from ..watch import require_watchfiles
            from .watching import start_watching

            require_watchfiles()  # fails the start-up with a clear line rather than a silent thread
            watching = start_watching(settings, state.models, settle_s=settings.watch_settle_s,
                                      rescan_s=settings.watch_rescan_s)
        trigger = watching.trigger if watching else None
        follower = (asyncio.create_task(follow_store(app, settings.reload_interval_s, trigger=trigger))
                    if settings.reload_interval_s > 0 or trigger else None)
        try:
            yield
        finally:
            if watching is not None:
                await asyncio.to_thread(watching.stop)
            if follower is not None:
                follower.cancel()
            app.state.library.store.close()

    app = FastAPI(
        title="soundalike",
        version=__version__,
        description="Which artists and tracks sound like this one? Similar artists and tracks from audio "
                    "embeddings with calibrated scores. Errors are `{\"error\": {\"type\", \"message\"}}`.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from serve.media with local assets (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle(free=settings.login_free_failures)
    app.state.sessions = Sessions()
    install_error_handlers(app)
    app.include_router(access_router)

    from .api import router as api_router

    app.include_router(api_router)
    from .media import router as media_router

    app.include_router(media_router)
    if settings.subsonic_enabled:
        from .subsonic import router as subsonic_router

        app.include_router(subsonic_router)

    from .upload import BodySizeLimit

    # Outermost last: proxy headers (trusted proxies only) -> CORS -> access rule -> body cap -> routes.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes, paths=("/api/query",))
    # every other body (Subsonic formPost, the login form) is small: the same rule at 64 KiB
    app.add_middleware(BodySizeLimit, max_bytes=MAX_FORM_BYTES, paths=None, skip=("/api/query",))
    app.add_middleware(AccessGuard, settings=settings, throttle=app.state.login_throttle, sessions=app.state.sessions)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-CSRF-Token"])
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/index.html", include_in_schema=False)
    def index_html() -> RedirectResponse:
        return RedirectResponse("/")

    allow_head(app)
    return app


def allow_head(app: FastAPI) -> None:
    """HEAD wherever GET works (FastAPI routes answer GET only); HEAD stays out of the OpenAPI document."""

    def walk(routes) -> None:
        for route in routes:
            if isinstance(route, APIRoute) and "GET" in route.methods:
                route.methods.add("HEAD")  # idempotent: the module-level routers are shared by every app
            inner = getattr(route, "original_router", None)  # FastAPI keeps included routers as such
            if inner is not None:
                walk(inner.routes)

    walk(app.router.routes)
    build = app.openapi

    def openapi() -> dict:
        with warnings.catch_warnings():  # the HEAD twin of each GET shares its operation id
            warnings.filterwarnings("ignore", message="Duplicate Operation ID")
            doc = build()  # cached by FastAPI; dropping "head" again is idempotent
        for ops in doc.get("paths", {}).values():
            ops.pop("head", None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
