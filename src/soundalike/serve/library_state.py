"""What the service knows about the library: artists, tracks, albums, and its query engine.

Loaded once in the app's lifespan from a read-only store. Every similarity answer comes from
``self.engine`` (:class:`soundalike.query.Engine`), the same engine the CLI and the Python API
use; its models are built (or loaded from the store's saved calibrators) on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParameterError, UnknownArtistError
from ..library import artist_key
from ..neighbours import FAISS_MIN_ITEMS, faiss_available
from ..query import CALIBRATIONS, Engine, pick_model
from ..store import Artist, ModelInfo, Store, Track
from .settings import Settings

__all__ = ["LibraryState", "Album", "album_id"]

log = logging.getLogger(__name__)

UNKNOWN_ALBUM = "[Unknown Album]"


def album_id(artist_id: int, album: str | None) -> str:
    """Stable album id: ``al-`` + 16 hex digits of sha256(artist id, album name)."""
    h = hashlib.sha256(f"{artist_id}\x00{album or UNKNOWN_ALBUM}".encode()).hexdigest()[:16]
    return f"al-{h}"


def artist_genre(tracks: list[Track]) -> str | None:
    """Most frequent track genre (ties: alphabetical), CONTRACTS.md."""
    c = Counter(g for t in tracks for g in t.genres)
    if not c:
        return None
    best = max(c.values())
    return sorted(g for g, n in c.items() if n == best)[0]


@dataclass
class Album:
    id: str
    name: str
    artist_id: int
    track_ids: list[str] = field(default_factory=list)


class LibraryState:
    """The loaded library and its lazily built similarity models.

    Parameters
    ----------
    settings : Settings
    store : Store, optional
        An open store (tests); default opens ``settings.db`` read-only.
    """

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings.db, readonly=True)
        self.reload_catalogue()
        cfg = None
        if settings.hybrid_config:
            from ..hybrid import HybridConfig

            cfg = HybridConfig.from_yaml(settings.hybrid_config)
        # network=True: a reference from a request is never a path and resolves in bounded time
        self.engine = Engine(self.store, default_calibration=settings.calibration, hybrid_config=cfg, network=True)
        self.index_ready = threading.Event()
        self._extras: dict = {}  # the upload embedder and classifier, built on first use

    # --- catalogue -----------------------------------------------------------------------------
    def reload_catalogue(self) -> None:
        s = self.store
        self.artists: list[Artist] = s.artists()
        self.artist_by_id = {a.artist_id: a for a in self.artists}
        self.tracks: list[Track] = s.tracks()
        self.track_by_id = {t.track_id: t for t in self.tracks}
        self.tracks_by_artist: dict[int, list[Track]] = {}
        for t in self.tracks:
            self.tracks_by_artist.setdefault(t.artist_id, []).append(t)
        self.genre_of = {aid: artist_genre(ts) for aid, ts in self.tracks_by_artist.items()}
        self.albums: dict[str, Album] = {}
        self.album_of_track: dict[str, str] = {}
        for t in self.tracks:
            aid = album_id(t.artist_id, t.album)
            al = self.albums.setdefault(aid, Album(aid, t.album or UNKNOWN_ALBUM, t.artist_id))
            al.track_ids.append(t.track_id)
            self.album_of_track[t.track_id] = aid
        self.albums_by_artist: dict[int, list[Album]] = {}
        for al in self.albums.values():
            self.albums_by_artist.setdefault(al.artist_id, []).append(al)
        self.models: list[ModelInfo] = s.models()
        self.backends = sorted({m.backend for m in self.models})
        self.default_backend = pick_model(s, self.settings.backend).backend if self.models else None

    @property
    def default_calibration(self) -> str:
        """The default backend's calibration (configured, validated default, or fallback)."""
        if self.default_backend is None:
            return self.settings.calibration or "center"
        return self.engine.default_calibration(self.engine.vectors(self.default_backend))[0]

    @property
    def calibrations(self) -> tuple[str, ...]:
        return CALIBRATIONS

    def artist(self, artist_id: int) -> Artist:
        try:
            return self.artist_by_id[int(artist_id)]
        except (KeyError, ValueError):
            raise UnknownArtistError(f"No artist with id {artist_id!r} in this library; list them with GET /api/artists.") from None

    def track(self, ref: str) -> Track:
        """The track a reference names: a track id, a sha256 prefix, a manifest id or "Artist - Title"."""
        return self.engine.track(ref)

    def find_artists(self, q: str | None) -> list[Artist]:
        """Artists whose normalised name contains the normalised query (all when empty)."""
        if not q:
            return list(self.artists)
        key = artist_key(q)
        return [a for a in self.artists if key in a.name_key]

    # --- models --------------------------------------------------------------------------------
    def resolve_backend(self, backend: str | None) -> str:
        if backend is None:
            if self.default_backend is None:
                raise ParameterError(f"{self.settings.db} has no embeddings yet; run `soundalike embed` first.")
            return self.default_backend
        if backend not in self.backends:
            have = ", ".join(self.backends) or "none"
            raise ParameterError(f"backend={backend!r} has no vectors in this library; it has: {have}. "
                                 "Ask one of those (GET /api/health lists them).")
        return backend

    def extra(self, key, build):
        """A cached helper object (upload embedder, classifier) built once."""
        return self.engine._cache.get(("extra",) + tuple(key), build)

    def model_info(self, backend: str | None = None) -> ModelInfo:
        return self.engine.vectors(self.resolve_backend(backend)).model

    def warm_up(self, *, background_index: bool = True) -> None:
        """Build (or load) the default models and the reference indexes now (startup).

        A Faiss index that the engine would build on first use (large libraries) is built in a
        background thread instead; queries use exact search until it is ready
        (``index_ready``), so no request waits seconds for it.
        """
        self.engine.track_lookup()
        if self.default_backend is None:
            self.index_ready.set()
            return
        vec = self.engine.vectors(self.default_backend)
        cal = self.engine.default_calibration(vec)[0]
        spaces = [(level, self.engine.space(vec, level, cal)) for level in ("artists", "tracks")]
        mode = self.engine.index_mode
        pending = [(level, sp) for level, sp in spaces if sp.V is not None and sp.index is None and (
            mode == "faiss" or (mode == "auto" and len(sp) >= FAISS_MIN_ITEMS and faiss_available()))]
        if not pending:
            self.index_ready.set()
            return
        if not background_index or mode == "faiss":
            self._build_indexes(vec, pending, mode)
            return
        self.engine.index_mode = "exact"  # until the index is ready
        threading.Thread(target=self._build_indexes, args=(vec, pending, mode), name="soundalike-index",
                         daemon=True).start()

    def _build_indexes(self, vec, pending, mode: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            try:  # Linux: niceness is per thread (and inherited by Faiss's OpenMP workers): requests come first
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
        try:
            for level, space in pending:
                self.engine.prepare_index(vec, space, level)
            log.info("track index ready (%s)", ", ".join(level for level, _ in pending))
        except Exception:  # exact search keeps answering
            log.exception("building the index failed; queries use exact search")
            mode = "exact"
        finally:
            self.engine.index_mode = mode
            self.index_ready.set()

    def file_path(self, track: Track) -> Path:
        return Path(track.path)
