"""Bounded track lookup: exact references in O(log n) or O(1), closest candidates in a few ms.

The service resolves references that anyone on the network may send, so no answer may cost
time in proportion to the library: :class:`TrackLookup` is built once per catalogue (about a
second at 100k tracks) and answers

* a sha256 prefix by binary search over the sorted ids,
* a manifest id and an ``"Artist - Title"`` key by dictionary look-up (the reference is split at
  each ``" - "`` once: linear in its length, which the caller caps),
* the closest candidates of an unknown reference from a character-trigram index whose work is
  capped (:data:`MAX_POSTINGS` postings per question, rarest trigrams first), re-ranked with
  :mod:`difflib` over at most :data:`RERANK` labels.

The normalisation of names is the caller's (``key``): the ``"Artist - Title"`` rules live in
:mod:`soundalike.query.refs`.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..store import Track

__all__ = ["TrackLookup", "MAX_POSTINGS", "RERANK"]

#: most trigram postings one suggestion question may read (bounds its cost at any library size)
MAX_POSTINGS = 200_000
#: candidates re-ranked by edit similarity
RERANK = 40
#: longest normalised text compared (labels and questions alike)
_MAX_KEY = 256


def _grams(s: str) -> set[str]:
    s = f" {s} "
    return {s[i:i + 3] for i in range(len(s) - 2)}


class TrackLookup:
    """Indexes over one catalogue of tracks for bounded-cost reference resolution.

    Parameters
    ----------
    tracks : sequence of Track
    key : callable str -> str
        Normalises artist names and titles (and whole labels) for matching.
    label : callable Track -> str
        How a candidate is shown and matched, e.g. ``"Artist - Title"``.
    title : callable Track -> str
        The title a track is matched by (the file stem when it has none).
    names, name_key : callables, optional
        ``names(track)`` gives the keys that name a track as ``"Artist - Title"`` and
        ``name_key(ref)`` the key of a reference (e.g. :func:`~soundalike.query.refs.track_reference_keys`
        and :func:`~soundalike.naming.reference_key`): ``"Artist - Title"`` is then one dictionary
        look-up, matched exactly as the command line matches it. Without them, each ``" - "`` of
        the reference is tried as the split, with `key` on both sides.

    Examples
    --------
    >>> from soundalike.store import Track
    >>> ts = [Track("ab" * 32, "/m/a.wav", 1, "Low Tones", "Hum", None, 3.0, None, ())]
    >>> lk = TrackLookup(ts, key=str.casefold, label=lambda t: f"{t.artist} - {t.title}", title=lambda t: t.title)
    >>> lk.by_prefix("abab")[1]
    1
    >>> lk.closest("low tone - hmm")
    ['Low Tones - Hum (abababab)']
    """

    def __init__(self, tracks: Sequence[Track], *, key: Callable[[str], str], label: Callable[[Track], str],
                 title: Callable[[Track], str], names: Callable[[Track], Iterable[str]] | None = None,
                 name_key: Callable[[str], str] | None = None) -> None:
        self.key = key
        self._name_key = name_key if names is not None else None
        self._named: dict[str, list[Track]] = {}
        self.label = label
        self.tracks = list(tracks)
        order = sorted(range(len(self.tracks)), key=lambda i: self.tracks[i].track_id)
        self._ids = [self.tracks[i].track_id for i in order]
        self._by_sorted = [self.tracks[i] for i in order]
        self._external: dict[str, list[Track]] = {}
        self._artist_title: dict[tuple[str, str], list[Track]] = {}
        artist_keys: dict[str, str] = {}  # many tracks share an artist: normalise each name once
        for t in self.tracks:
            if t.external_id is not None:
                self._external.setdefault(t.external_id, []).append(t)
            if t.artist_id is not None and names is not None:
                for k in names(t):
                    self._named.setdefault(k, []).append(t)
            elif t.artist_id is not None:
                a = artist_keys.get(t.artist)
                if a is None:
                    a = artist_keys[t.artist] = key(t.artist)
                self._artist_title.setdefault((a, key(title(t))), []).append(t)
        self._labels = [f"{label(t)} ({t.track_id[:8]})" for t in self.tracks]
        self._keys = [key(lb)[:_MAX_KEY] for lb in self._labels]
        postings: dict[str, list[int]] = {}
        for i, k in enumerate(self._keys):
            for g in _grams(k):
                postings.setdefault(g, []).append(i)
        self._postings = {g: np.asarray(v, np.int32) for g, v in postings.items()}

    def __len__(self) -> int:
        return len(self.tracks)

    def by_prefix(self, prefix: str, *, show: int = 5) -> tuple[list[Track], int]:
        """``(up to `show` tracks whose id starts with `prefix`, how many do)`` by binary search."""
        lo = bisect.bisect_left(self._ids, prefix)
        hi = bisect.bisect_left(self._ids, prefix + "\x7f", lo)
        return self._by_sorted[lo:min(hi, lo + show)], hi - lo

    def by_external_id(self, ref: str) -> list[Track]:
        """Tracks whose manifest id is exactly `ref`."""
        return list(self._external.get(ref, ()))

    def by_artist_title(self, ref: str) -> list[Track]:
        """Tracks named by ``"Artist - Title"``, trying each ``" - "`` as the split (names may hold one)."""
        if self._name_key is not None:
            k = self._name_key(ref)
            return list({t.track_id: t for t in self._named.get(k, ())}.values()) if k else []
        found: dict[str, Track] = {}
        start = 0
        while True:
            cut = ref.find(" - ", start)
            if cut < 0:
                break
            a, t = self.key(ref[:cut]), self.key(ref[cut + 3:])
            for tr in self._artist_title.get((a, t), ()):
                found[tr.track_id] = tr
            start = cut + 1
        return list(found.values())

    def closest(self, ref: str, *, n: int = 5, cutoff: float = 0.4) -> list[str]:
        """Labels ``"Artist - Title (id8)"`` of up to `n` tracks closest to `ref`, best first.

        Cost is bounded whatever the library's size: at most :data:`MAX_POSTINGS` trigram postings
        are counted (rarest trigrams first) and :data:`RERANK` labels compared by edit similarity.
        """
        q = self.key(ref)[:_MAX_KEY]
        if not q or not self.tracks:
            return []
        lists = sorted((p for g in _grams(q) if (p := self._postings.get(g)) is not None), key=len)
        chosen, total = [], 0
        for p in lists:
            if total + len(p) > MAX_POSTINGS:
                break
            chosen.append(p)
            total += len(p)
        if not chosen:
            if not lists:
                return []
            chosen = [lists[0][:MAX_POSTINGS]]  # every trigram is common: a bounded slice of the rarest
        counts = np.bincount(np.concatenate(chosen), minlength=len(self.tracks))
        m = min(RERANK, int((counts > 0).sum()))
        if m == 0:
            return []
        top = np.argpartition(-counts, m - 1)[:m]
        sm = difflib.SequenceMatcher(autojunk=False)
        sm.set_seq2(q)
        scored = []
        for i in top.tolist():
            sm.set_seq1(self._keys[i])
            if sm.real_quick_ratio() >= cutoff and sm.quick_ratio() >= cutoff:
                r = sm.ratio()
                if r >= cutoff:
                    scored.append((-r, self._labels[i]))
        return [lb for _, lb in sorted(scored)[:n]]
