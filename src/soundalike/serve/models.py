"""Pydantic models of every ``/api`` response (they are also the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "ArtistOut",
    "ArtistPage",
    "ArtistDetail",
    "Neighbour",
    "SimilarArtists",
    "TrackOut",
    "TrackNeighbour",
    "SimilarTracks",
    "TrackPath",
    "MapPoint",
    "ArtistMap",
    "QueryResult",
    "GenrePrediction",
    "RescanStarted",
]


class ErrorBody(BaseModel):
    type: str = Field(description="Error class, e.g. UnknownArtistError, ParameterError, UploadTooLarge")
    message: str = Field(description="What was wrong, the value, and the fix")


class ErrorResponse(BaseModel):
    error: ErrorBody


class BackendOut(BaseModel):
    name: str
    weights_kind: str
    dim: int
    n_tracks: int | None = None


class Health(BaseModel):
    status: str
    version: str
    n_tracks: int
    n_artists: int
    backends: list[BackendOut]
    default_backend: str | None
    default_calibration: str
    calibrations: list[str]
    signals: list[str]
    subsonic: bool
    max_upload_bytes: int
    classifier: bool


class ArtistOut(BaseModel):
    artist_id: int
    name: str
    n_tracks: int
    genre: str | None = None
    mbid: str | None = None


class ArtistPage(BaseModel):
    total: int
    offset: int
    limit: int
    artists: list[ArtistOut]


class TrackOut(BaseModel):
    track_id: str
    artist_id: int
    artist: str
    title: str | None
    album: str | None
    album_id: str
    duration_s: float | None
    genres: list[str]


class ArtistDetail(ArtistOut):
    tracks: list[TrackOut]


class Reason(BaseModel):
    """One musical trait compared (CONTRACTS ``reasons``): measured values, units in ``text``."""

    kind: str = Field(description="tag, tempo, key, loudness or estimate")
    text: str = Field(description="The comparison in words with units; 'X vs Y' reads neighbour vs query")
    query: Any = Field(default=None, description="The query side's value(s)")
    neighbour: Any = Field(default=None, description="The neighbour's value(s)")


class Neighbour(BaseModel):
    """An artist neighbour of the query engine's document (its further fields are kept)."""

    model_config = ConfigDict(extra="allow")
    artist: str
    artist_id: int
    score: float = Field(description="Calibrated score in [0, 1]: the pair's percentile among all artist pairs")
    raw_cosine: float | None = None
    contributions: dict[str, float] = Field(default_factory=dict, description="Weighted part of each signal in score")
    signal_scores: dict[str, float | None] = Field(default_factory=dict, description="Each signal's own calibrated score")
    genre: str | None = None
    reasons: list[Reason] = Field(default_factory=list, description="Musical traits compared, from measured values")


class SimilarArtists(BaseModel):
    """The ``similar --json`` shape of CONTRACTS.md (fields added, none renamed): the query engine's document."""

    model_config = ConfigDict(extra="allow")
    query: dict[str, Any] = Field(description='{"artist", "artist_id"}, or {"artist_ids": [...]} for several seeds')
    backend: str
    weights_kind: str
    calibration: str
    layer: int
    profile: str | None
    signals_used: list[str]
    neighbours: list[Neighbour]


class TrackNeighbour(TrackOut):
    model_config = ConfigDict(extra="allow")
    score: float = Field(description="Calibrated score in [0, 1] (the pair's percentile among all track pairs, "
                                     "or its mutual-proximity probability)")
    raw_cosine: float = Field(description="Cosine of the raw track vectors")
    reasons: list[Reason] = Field(default_factory=list, description="Musical traits compared, from measured values")


class SimilarTracks(BaseModel):
    """The ``similar --json`` document of a track query, with catalogue fields on each neighbour."""

    model_config = ConfigDict(extra="allow")
    query: dict[str, Any]
    backend: str
    weights_kind: str
    calibration: str
    exclude_artist: bool
    artist_gap: int
    neighbours: list[TrackNeighbour]


class TrackPath(BaseModel):
    start: str
    end: str
    backend: str
    weights_kind: str
    calibration: str
    steps: list[TrackNeighbour]


class MapPoint(BaseModel):
    artist_id: int
    name: str
    x: float
    y: float
    genre: str | None
    n_tracks: int


class ArtistMap(BaseModel):
    backend: str
    weights_kind: str
    calibration: str
    method: str
    genres: list[str]
    points: list[MapPoint]


class GenrePrediction(BaseModel):
    genre: str
    probability: float | None = None


class QueryResult(BaseModel):
    filename: str | None
    size_bytes: int
    duration_s: float | None
    n_windows: int
    backend: str
    weights_kind: str
    model_matches_library: bool = Field(description="False when the backend's current config differs from the stored model's")
    artists: list[Neighbour]
    tracks: list[TrackNeighbour]
    genre: list[GenrePrediction] | None = None
    genre_note: str | None = None


class RescanStarted(BaseModel):
    status: str
    root: str
