"""What the service knows about the library: artists, tracks, albums, and the models per backend.

Loaded once in the app's lifespan from a read-only store; similarity models are built per
(backend, calibration) on first use (the default one during startup) and kept.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import compare, similarity
from ..errors import ParameterError, UnknownArtistError, UnknownTrackError
from ..library import artist_key
from ..neighbours import index_dir
from ..store import Artist, ModelInfo, Store, Track
from .engine import FULL_MATRIX_MAX_ARTISTS, ON_DEMAND_CALIBRATIONS, ArtistScorer, Lazy, TrackIndex, build_artist_scorer, layout_2d
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
        self._models = Lazy()

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
        self.default_backend = compare.pick_model(s, self.settings.backend).backend if self.models else None
        self.default_calibration = self.settings.calibration or compare.DEFAULT_CALIBRATION

    @property
    def calibrations(self) -> tuple[str, ...]:
        """Calibrations this library can be scored with (from ``similarity.CALIBRATIONS``)."""
        known = tuple(getattr(similarity, "CALIBRATIONS", ("none", "center")))
        if len(self.artists) > FULL_MATRIX_MAX_ARTISTS:
            return tuple(c for c in known if c in ON_DEMAND_CALIBRATIONS)
        return known

    def artist(self, artist_id: int) -> Artist:
        try:
            return self.artist_by_id[int(artist_id)]
        except (KeyError, ValueError):
            raise UnknownArtistError(f"No artist with id {artist_id!r} in this library; list them with GET /api/artists.") from None

    def track(self, track_id: str) -> Track:
        t = self.track_by_id.get(track_id)
        if t is None:
            raise UnknownTrackError(f"No track with id {track_id!r} in this library; track ids are sha256 hex digests.")
        return t

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
            raise ParameterError(f"backend={backend!r} has no vectors in this library (it has: {have}); "
                                 f"run `soundalike embed --backend {backend}`.")
        return backend

    def resolve_calibration(self, calibration: str | None) -> str:
        cal = calibration or self.default_calibration
        allowed = self.calibrations
        if cal not in allowed:
            raise ParameterError(f"calibration={cal!r} is not valid here; choose one of {', '.join(allowed)}.")
        return cal

    def view(self, backend: str | None = None) -> compare.LibraryView:
        b = self.resolve_backend(backend)
        return self._models.get(("view", b), lambda: compare.load_view(self.store, backend=b))

    def scorer(self, backend: str | None = None, calibration: str | None = None) -> ArtistScorer:
        b = self.resolve_backend(backend)
        cal = self.resolve_calibration(calibration)

        def build() -> ArtistScorer:
            v = self.view(b)
            log.info("building artist scores for %s / %s (%d tracks)", b, cal, len(v.track_ids))
            return build_artist_scorer(v.X, v.track_artist, calibration=cal)

        return self._models.get(("scorer", b, cal), build)

    def track_index(self, backend: str | None = None) -> TrackIndex:
        b = self.resolve_backend(backend)

        def build() -> TrackIndex:
            v = self.view(b)
            # large libraries get a Faiss index saved beside the store and reused across restarts
            ann_path = index_dir(self.settings.db) / f"tracks-{v.model.model_key}-layer{v.layer}.faiss"
            return TrackIndex(v.track_ids, v.X, v.track_artist, ann_path=ann_path)

        return self._models.get(("tracks", b), build)

    def model_info(self, backend: str | None = None) -> ModelInfo:
        return self.view(backend).model

    def map_layout(self, backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(artist ids (n,), coordinates (n, 2) in [0, 1])`` of the artist map."""
        b = self.resolve_backend(backend)

        def build():
            v = self.view(b)
            Xn = similarity.l2_normalize(np.asarray(v.X, np.float64))
            uniq, P = similarity.artist_profiles(Xn - Xn.mean(axis=0), v.track_artist, kind="centroid")
            return np.asarray(uniq), layout_2d(similarity.l2_normalize(P))

        return self._models.get(("map", b), build)

    def warm_up(self) -> None:
        """Build the default models now (startup), so the first queries are fast."""
        if self.default_backend is None:
            return
        self.scorer(None, None)
        self.track_index(None)

    def file_path(self, track: Track) -> Path:
        return Path(track.path)
