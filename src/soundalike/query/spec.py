"""The query value every surface builds: what to look for, under which model and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ParameterError

__all__ = ["Query", "INDEX_MODES", "split_signals"]

#: ``auto``: the saved Faiss index from FAISS_MIN_ITEMS items; ``faiss``: always (candidates
#: re-ranked exactly); ``exact``: never. Env ``SOUNDALIKE_INDEX`` sets the engine's default.
INDEX_MODES = ("auto", "exact", "faiss")


def split_signals(values: Any) -> tuple[str, ...]:
    """Repeatable and comma-separated signal names → unique names, default ``("audio",)``."""
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in str(v).split(",") if x.strip())
    return tuple(dict.fromkeys(out)) or ("audio",)


@dataclass(frozen=True)
class Query:
    """One question: which artists or tracks are nearest to these seeds?

    Seeds (give at least one): ``artist`` / ``artists`` (a name, or an ``int`` artist id) and
    ``track`` / ``tracks`` (track references: path, sha256 prefix, manifest id, "Artist - Title").
    Several seeds are queried by the unit mean of their calibrated vectors.

    Attributes
    ----------
    want : "artists" | "tracks" | None
        What to return; default: artists for artist seeds, tracks for track seeds.
    backend : str | None    stored backend (an ensemble is its own stored backend); None: the best stored
    layer : int | None      layer of a multi-layer backend; None: the model's default layer
    calibration : str | None   None: the backend's saved default (chosen by validation)
    profile : "centroid" | "set"   artist profile
    signals : tuple of str  ``("audio",)`` or hybrid signals (artist answers only)
    hybrid_config : HybridConfig | None
    k : int                 how many neighbours
    exclude_track_ids, exclude_artist_ids : never returned
    exclude_seed_artists : leave out every track/artist of the seeds' artists
    exclude_same_album : leave out tracks of the seed tracks' albums
    include_seeds : keep the seeds themselves in the answer
    artist_gap : int        track answers: no artist repeats within this many consecutive results
    reasons : bool          add a ``reasons`` list to every neighbour (``soundalike.query.reasons``; default on)
    index : "auto" | "exact" | "faiss" | None   None: the engine's default
    """

    artist: str | int | None = None
    track: str | None = None
    artists: tuple[str | int, ...] = ()
    tracks: tuple[str, ...] = ()
    want: str | None = None
    backend: str | None = None
    layer: int | None = None
    calibration: str | None = None
    profile: str = "centroid"
    signals: tuple[str, ...] = ("audio",)
    hybrid_config: Any = None
    k: int = 10
    exclude_track_ids: tuple[str, ...] = ()
    exclude_artist_ids: tuple[int, ...] = ()
    exclude_seed_artists: bool = False
    exclude_same_album: bool = False
    include_seeds: bool = False
    artist_gap: int = 0
    reasons: bool = True  # musical reasons come with every answer (issue 17)
    index: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def artist_seeds(self) -> tuple[str | int, ...]:
        return ((self.artist,) if self.artist is not None else ()) + tuple(self.artists)

    @property
    def track_seeds(self) -> tuple[str, ...]:
        return ((self.track,) if self.track is not None else ()) + tuple(self.tracks)

    @property
    def level(self) -> str:
        """``artists`` or ``tracks``: what the answer lists."""
        if self.want is not None:
            return self.want
        return "tracks" if self.track_seeds else "artists"

    def check(self) -> "Query":
        """Raise ParameterError on an inconsistent query; return self."""
        if not self.artist_seeds and not self.track_seeds:
            raise ParameterError("Give an artist or a track to query (at least one seed).")
        if self.artist_seeds and self.track_seeds:
            raise ParameterError("Give artist seeds or track seeds, not both.")
        if self.want not in (None, "artists", "tracks"):
            raise ParameterError(f"want={self.want!r}: choose 'artists' or 'tracks'.")
        if self.level == "artists" and self.track_seeds:
            raise ParameterError("An artist answer needs artist seeds; ask tracks for track seeds.")
        if int(self.k) < 1:
            raise ParameterError(f"k must be >= 1, got {self.k}.")
        if int(self.artist_gap) < 0:
            raise ParameterError(f"artist_gap must be >= 0, got {self.artist_gap}.")
        if self.index is not None and self.index not in INDEX_MODES:
            raise ParameterError(f"index={self.index!r}: choose one of {', '.join(INDEX_MODES)}.")
        if tuple(self.signals) != ("audio",) and self.level != "artists":
            raise ParameterError(f"signals {', '.join(self.signals)} blend artist scores; track queries use signals=audio.")
        return self
