"""What every signal shares: the context it reads and the scores it returns."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..library import artist_key

__all__ = ["SIGNALS", "SignalContext", "SignalScores", "aligned_matrix", "empty_scores", "read_csv_rows", "NameIndex"]

SIGNALS = ("audio", "descriptors", "tags", "refs", "graph")


@dataclass
class SignalScores:
    """One signal's artist × artist scores.

    Attributes
    ----------
    name : str
    artist_ids : np.ndarray [shape=(n,)]
    score : np.ndarray [shape=(n, n)]   in [0, 1]; NaN where the pair lacks the signal
    coverage : float   share of artists with the signal
    note : str         where the signal came from (and warnings such as "these are labels")
    is_label : bool    True when the signal is built from the evaluation labels (no-leak rule)
    """

    name: str
    artist_ids: np.ndarray
    score: np.ndarray
    coverage: float
    note: str = ""
    is_label: bool = False
    details: dict = field(default_factory=dict)

    @property
    def present(self) -> np.ndarray:
        """Boolean [shape=(n,)]: the artist has this signal."""
        S = self.score.copy()
        np.fill_diagonal(S, np.nan)
        return np.isfinite(S).any(axis=1)


@dataclass
class SignalContext:
    """Everything a signal may read. Fields a signal does not need may stay None.

    Attributes
    ----------
    artist_ids : np.ndarray [shape=(n,)]   the artists to score, in matrix order
    names : dict[int, str]                 artist id -> name
    store : Store | None
    engine : soundalike.query.Engine | None   the query engine (made from ``store`` when None)
    backend, calibration, profile, layer : options of the audio signal
    csv : dict[str, Path]                  signal name -> CSV file (refs, graph, tags)
    enrichment : dict | None               ``soundalike.enrich.signal_inputs(store)``
    file_tags : dict[int, dict[str, float]] | None   tags from the files (tracks.genres)
    file_tags_are_labels : bool            the file tags are the evaluation labels (manifest genre)
    options : dict                         per-signal options from the hybrid config
    """

    artist_ids: np.ndarray
    names: dict[int, str]
    store: Any = None
    engine: Any = None
    backend: str | None = None
    calibration: str = "center"
    profile: str = "centroid"
    layer: int | None = None
    csv: dict[str, Path] = field(default_factory=dict)
    enrichment: dict | None = None
    file_tags: dict[int, dict[str, float]] | None = None
    file_tags_are_labels: bool = False
    options: dict = field(default_factory=dict)

    def position(self) -> dict[int, int]:
        return {int(a): i for i, a in enumerate(self.artist_ids)}


def empty_scores(name: str, artist_ids: np.ndarray, note: str) -> SignalScores:
    n = len(artist_ids)
    S = np.full((n, n), np.nan)
    return SignalScores(name, np.asarray(artist_ids), S, 0.0, note)


def aligned_matrix(artist_ids: np.ndarray, src_ids: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Re-index a (m, m) matrix over `src_ids` onto `artist_ids` (NaN for missing artists)."""
    n = len(artist_ids)
    out = np.full((n, n), np.nan)
    pos = {int(a): i for i, a in enumerate(src_ids)}
    rows = np.array([pos.get(int(a), -1) for a in artist_ids])
    ok = np.flatnonzero(rows >= 0)
    out[np.ix_(ok, ok)] = src[np.ix_(rows[ok], rows[ok])]
    return out


class NameIndex:
    """Match artist names from CSV files or enrichment to library artist ids (normalised names)."""

    def __init__(self, names: dict[int, str]) -> None:
        self.by_key = {artist_key(n): int(a) for a, n in names.items()}

    def get(self, name: str | int) -> int | None:
        if isinstance(name, (int, np.integer)):
            return int(name)
        return self.by_key.get(artist_key(str(name)))


def read_csv_rows(path: Path, columns: tuple[str, ...], *, what: str) -> list[dict[str, str]]:
    """Rows of a CSV with the given header columns (the error names the file and the columns)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"{what} CSV {p} does not exist; give a CSV with columns {','.join(columns)}.")
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ParameterError(f"{what} CSV {p} lacks column(s) {', '.join(missing)}; its header is "
                                 f"{','.join(header) or '(empty)'} and must have {','.join(columns)}.")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
