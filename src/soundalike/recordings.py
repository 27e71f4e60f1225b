"""Is this the same recording? Duplicate detection from audio vectors, duration and title.

The same recording turns up on a studio album and a "Best Of", as FLAC and MP3, remastered
louder, re-tagged: other bytes, so another track id. Two tracks are one recording when

* their durations agree within ``duration_tol_s`` (trims and fades of a few seconds), and
* their audio vectors are near-identical: cosine of the library-standardised vectors (each
  dimension centred and scaled over the library, so that loudness or one strong feature does
  not dominate) at least ``cosine_min``; or at least ``title_cosine_min`` (a looser bar) when
  their normalised titles are equal ("Song (Remastered 2011)" = "song").

Thresholds were set on constructed cases (``benchmarks/duplicates.py``; figures in
``benchmarks/RESULTS.md``): transcodes, ±6 dB, EQ, resampling, trims and fades as positives;
other tracks of the same artist and game as hard negatives.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

from .store import Store, Track

__all__ = ["normalise_title", "DuplicateDetector", "THRESHOLDS"]

#: (cosine_min, title_cosine_min) per backend, measured in benchmarks/duplicates.py
THRESHOLDS: dict[str, tuple[float, float]] = {
    "descriptors": (0.91, 0.70),
    "musicnn-msd": (0.985, 0.70),
}
DEFAULT_THRESHOLDS = (0.97, 0.90)

#: bracketed notes that name a release of the same recording (removed); others (live, remix, demo,
#: acoustic, edit, ...) name another recording and stay part of the title
_NEUTRAL_NOTE = re.compile(r"[\(\[\{]\s*(\d{4}\s+)?(digital(ly)?\s+)?(re-?master(ed)?|remaster\s+\d{4}|album version|"
                           r"single version|lp version|mono|stereo|explicit|clean|bonus track|deluxe( edition)?|"
                           r"\d{4}|original mix)(\s+(version|\d{4}))?\s*[\)\]\}]")
_VERSION_SUFFIX = re.compile(r"\s+-\s+(\d{4}\s+)?(digital\s+)?(re-?master(ed)?|single|album|radio|mono|stereo)\b.*$")
_TRACK_NO = re.compile(r"^\d{1,3}(\s*[-.]\s*|\s+)")
_NON_WORD = re.compile(r"[\W_]+")


def normalise_title(title: str | None) -> str:
    """A title reduced to what names the recording: no release notes ("(Remastered 2011)",
    "- Single Version"), leading track numbers, case, accents or punctuation. Notes that name
    another recording ("(Live)", "[Remix]") are kept.

    Examples
    --------
    >>> normalise_title("03 - Song For You (Remastered 2011)")
    'song for you'
    >>> normalise_title("Song for You - 2011 Remaster")
    'song for you'
    """
    if not title:
        return ""
    t = unicodedata.normalize("NFKD", title)
    t = "".join(c for c in t if not unicodedata.combining(c)).casefold()
    t = _NEUTRAL_NOTE.sub(" ", t)
    t = _VERSION_SUFFIX.sub("", t.strip())
    t = _TRACK_NO.sub("", t.strip())
    return " ".join(_NON_WORD.sub(" ", t).split())


class DuplicateDetector:
    """Finds tracks that are the same recording as others.

    Parameters
    ----------
    track_ids : sequence of str [n]
    X : np.ndarray [shape=(n, d)]       one vector per track (mean over its windows)
    durations : sequence of float | None [n]   seconds
    titles : sequence of str | None [n]
    cosine_min : float        bar on the standardised cosine for any pair
    title_cosine_min : float  lower bar when the normalised titles are equal
    duration_tol_s : float    largest duration difference of one recording

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((5, 8)).astype(np.float32)
    >>> X = np.vstack([X, X[:1] + 0.01])          # track "f" is track "a" again
    >>> det = DuplicateDetector(list("abcdef"), X, [30.0] * 6, ["x"] * 6)
    >>> det.duplicates("f", ["b", "a", "c"])
    ['a']
    """

    def __init__(self, track_ids: Sequence[str], X: np.ndarray, durations: Sequence[float | None],
                 titles: Sequence[str | None], *, cosine_min: float = DEFAULT_THRESHOLDS[0],
                 title_cosine_min: float = DEFAULT_THRESHOLDS[1], duration_tol_s: float = 4.5) -> None:
        X = np.asarray(X, np.float64)
        if X.ndim != 2 or X.shape[0] != len(track_ids):
            raise ValueError(f"X must be (n_tracks, dim) with n_tracks={len(track_ids)}, got {X.shape}.")
        mu = X.mean(axis=0)
        sd = X.std(axis=0)
        sd[sd < 1e-9] = 1.0
        Z = (X - mu) / sd
        Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
        self.Z = Z
        self.pos = {t: i for i, t in enumerate(track_ids)}
        self.durations = np.array([np.nan if d is None else float(d) for d in durations])
        self.titles = [normalise_title(t) for t in titles]
        self.cosine_min, self.title_cosine_min, self.duration_tol_s = cosine_min, title_cosine_min, duration_tol_s

    @classmethod
    def from_vectors(cls, backend: str, track_ids: Sequence[str], X: np.ndarray, tracks: Mapping[str, Track],
                     **thresholds) -> "DuplicateDetector":
        """A detector over one model's track vectors, with that backend's measured thresholds."""
        keep = [i for i, t in enumerate(track_ids) if t in tracks]
        tids = [track_ids[i] for i in keep]
        cos, tcos = THRESHOLDS.get(backend, DEFAULT_THRESHOLDS)
        opts = {"cosine_min": cos, "title_cosine_min": tcos, **thresholds}
        return cls(tids, np.asarray(X)[keep], [tracks[t].duration_s for t in tids], [tracks[t].title for t in tids],
                   **opts)

    @classmethod
    def from_store(cls, store: Store, model_key: str, *, layer: int | None = None, **thresholds) -> "DuplicateDetector":
        """A detector over every stored track of one model, with that backend's measured thresholds."""
        tids, X = store.track_embeddings(model_key, layer=layer)
        return cls.from_vectors(store.model(model_key).backend, tids, X, {t.track_id: t for t in store.tracks()},
                                **thresholds)

    def pair(self, a: str, b: str) -> tuple[float, float, bool]:
        """``(standardised cosine, duration difference in s, titles equal)`` of two tracks."""
        i, j = self.pos[a], self.pos[b]
        dd = abs(self.durations[i] - self.durations[j])
        return float(self.Z[i] @ self.Z[j]), float(dd), bool(self.titles[i]) and self.titles[i] == self.titles[j]

    def is_duplicate(self, a: str, b: str) -> bool:
        """Whether tracks `a` and `b` are the same recording (unknown tracks never are)."""
        if a == b:
            return True
        if a not in self.pos or b not in self.pos:
            return False
        cos, dd, same_title = self.pair(a, b)
        if np.isfinite(dd) and dd > self.duration_tol_s:
            return False
        return cos >= self.cosine_min or (same_title and cos >= self.title_cosine_min)

    def duplicates(self, track_id: str, others: Sequence[str]) -> list[str]:
        """Those of `others` that are the same recording as `track_id`."""
        if track_id not in self.pos:
            return [o for o in others if o == track_id]
        return [o for o in others if self.is_duplicate(track_id, o)]
