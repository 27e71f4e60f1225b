"""Musical reasons: why a neighbour sounds like the query, in words, from measured values.

Pure functions over values already in the store (no audio, no SQL): the ``descriptors``
backend's measurements (tempo in BPM, key and mode, integrated loudness in LUFS, the six 0–1
heuristic estimates) and musicnn's MSD taggram (50 tag probabilities). :class:`Traits` holds
one track's (or one artist's) values; :func:`compare_traits` turns a (query, neighbour) pair
into the ``reasons`` list of ``CONTRACTS.md``::

    [{"kind": "tag", "text": "both: electronic, dance (musicnn tags)", "query": [...], "neighbour": [...]},
     {"kind": "tempo", "text": "128 vs 126 BPM", "query": 126.0, "neighbour": 128.0}, ...]

Texts speak of the neighbour relative to the query ("louder by 4 LU"); every "X vs Y" reads
*neighbour vs query*. They carry units and mark the 0–1 scores as estimates (they are heuristic formulas, see ``docs/descriptors.md``).
Artist-level traits aggregate an artist's tracks (:func:`aggregate_traits`).

Examples
--------
>>> q = Traits(tempo_bpm=126.0, tonic=9, mode=0, loudness_lufs=-12.0, tags={"electronic": .6, "dance": .4})
>>> n = Traits(tempo_bpm=128.0, tonic=9, mode=0, loudness_lufs=-8.0, tags={"electronic": .5, "dance": .3})
>>> reason_line(compare_traits(q, n))
'both: electronic, dance (musicnn tags) · 128 vs 126 BPM · both A minor · louder by 4 LU (-8 vs -12 LUFS)'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "add_reasons",
    "Traits",
    "traits_from_descriptors",
    "aggregate_traits",
    "compare_traits",
    "reason_line",
    "key_name",
    "ESTIMATES",
    "TAG_MIN_PROBABILITY",
]

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: the descriptors backend's heuristic 0–1 scores, shown as estimates
ESTIMATES = ("energy", "danceability", "valence", "acousticness", "instrumentalness", "speechiness")
#: a tag counts for a side when its probability is at least this and it is among the side's top tags
TAG_MIN_PROBABILITY = 0.1
TOP_TAGS = 5
#: tempi within this ratio are "similar"; 1 BPM of measurement noise is below it
TEMPO_CLOSE = 0.04
#: loudness differences below this (LU) read as "same loudness"
LOUDNESS_SAME_LU = 1.5
#: estimate differences at or above this are named as differences
ESTIMATE_DIFFERENT = 0.25
#: at most this many estimate reasons per neighbour (differences first, then shared extremes)
MAX_ESTIMATE_REASONS = 3
#: an estimate at or above / at or below these on both sides is a shared trait
ESTIMATE_HIGH, ESTIMATE_LOW = 0.65, 0.2
_ADJECTIVE = {  # (more, less) of each estimate, said of the neighbour
    "energy": ("more energetic", "calmer"),
    "danceability": ("more danceable", "less danceable"),
    "valence": ("brighter in mood", "darker in mood"),
    "acousticness": ("more acoustic", "less acoustic"),
    "instrumentalness": ("more instrumental", "more vocal"),
    "speechiness": ("more speech-like", "less speech-like"),
}


@dataclass(frozen=True)
class Traits:
    """Measured traits of one track, or of an artist aggregated over its tracks.

    Every field may be missing (None / empty) when the store lacks that measurement.

    Parameters
    ----------
    tempo_bpm : float or None       BPM; None (or 0 in the store) = no steady pulse / not measured
    tonic : int or None             pitch class 0 (C) .. 11 (B)
    mode : int or None              1 major, 0 minor
    loudness_lufs : float or None   integrated loudness, LUFS
    estimates : mapping             the 0–1 heuristic estimates by name (:data:`ESTIMATES`)
    tags : mapping                  musicnn MSD tag -> probability (0–1)
    n_tracks : int                  tracks behind the values (1 for a track)
    key_share : float               share of those tracks in `tonic`/`mode` (1 for a track)
    """

    tempo_bpm: float | None = None
    tonic: int | None = None
    mode: int | None = None
    loudness_lufs: float | None = None
    estimates: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, float] = field(default_factory=dict)
    n_tracks: int = 1
    key_share: float = 1.0

    @property
    def key(self) -> str | None:
        return None if self.tonic is None or self.mode is None else key_name(self.tonic, self.mode)

    def top_tags(self, k: int = TOP_TAGS) -> list[str]:
        """The `k` most probable tags at or above :data:`TAG_MIN_PROBABILITY`, best first."""
        ranked = sorted(self.tags.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [t for t, p in ranked if p >= TAG_MIN_PROBABILITY]


def key_name(tonic: int, mode: int) -> str:
    """``"A minor"``, ``"C major"`` (same spelling as the descriptors backend)."""
    return f"{PITCH_CLASSES[int(tonic) % 12]} {'major' if int(mode) == 1 else 'minor'}"


def _key_from_circle(key_sin: float, key_cos: float, mode: float) -> tuple[int, int] | None:
    """Invert the descriptors backend's key encoding (signature on the circle of fifths + mode).

    ``fifths = 7 * s mod 12`` with s the relative major's tonic, so ``s = 7 * fifths mod 12``.
    """
    if math.hypot(key_sin, key_cos) < 0.5:  # a mean over windows that disagree: no clear key
        return None
    fifths = int(round(math.atan2(key_sin, key_cos) / (2 * math.pi) * 12)) % 12
    major_tonic = (7 * fifths) % 12
    m = 1 if mode >= 0.5 else 0
    return (major_tonic if m == 1 else (major_tonic - 3) % 12), m


def traits_from_descriptors(values: Mapping[str, float], tags: Mapping[str, float] | None = None) -> Traits:
    """Traits of one track from its stored descriptor values (names of ``FEATURE_NAMES``).

    Parameters
    ----------
    values : mapping
        At least ``tempo_bpm``, ``key_sin``, ``key_cos``, ``mode``, ``loudness_lufs`` and the
        estimates; missing names leave the trait empty.
    tags : mapping, optional
        musicnn tag -> probability.
    """
    tempo = values.get("tempo_bpm")
    key = None
    if all(k in values for k in ("key_sin", "key_cos", "mode")):
        key = _key_from_circle(float(values["key_sin"]), float(values["key_cos"]), float(values["mode"]))
    loud = values.get("loudness_lufs")
    return Traits(
        tempo_bpm=float(tempo) if tempo is not None and tempo > 0 else None,
        tonic=None if key is None else key[0],
        mode=None if key is None else key[1],
        loudness_lufs=float(loud) if loud is not None and loud > -69.0 else None,  # -70 = silence floor
        estimates={k: float(values[k]) for k in ESTIMATES if k in values},
        tags=dict(tags or {}),
    )


def _power_mean_lufs(values: Sequence[float]) -> float:
    """Loudness of several tracks: energy mean (LUFS are logarithmic), as a playlist would sound."""
    return float(10.0 * np.log10(np.mean(10.0 ** (np.asarray(values) / 10.0))))


def aggregate_traits(tracks: Sequence[Traits]) -> Traits:
    """Artist-level traits from its tracks.

    Tempo: median of the tracks with a pulse. Key: the most frequent key (ties: the key of the
    earliest track), with the share of tracks in it. Loudness: energy mean of the LUFS values.
    Estimates and tag probabilities: means over the tracks that have them.
    """
    if not tracks:
        return Traits(n_tracks=0, key_share=0.0)
    if len(tracks) == 1:
        return tracks[0]
    tempi = [t.tempo_bpm for t in tracks if t.tempo_bpm]
    keys = [(t.tonic, t.mode) for t in tracks if t.tonic is not None and t.mode is not None]
    tonic = mode = None
    share = 0.0
    if keys:
        counts = Counter(keys)
        best = max(counts.values())
        tonic, mode = next(k for k in keys if counts[k] == best)
        share = best / len(tracks)
    louds = [t.loudness_lufs for t in tracks if t.loudness_lufs is not None]

    def means(dicts: list[Mapping[str, float]]) -> dict[str, float]:
        names = sorted({k for d in dicts for k in d})
        return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in names}

    return Traits(
        tempo_bpm=float(np.median(tempi)) if tempi else None,
        tonic=tonic,
        mode=mode,
        loudness_lufs=_power_mean_lufs(louds) if louds else None,
        estimates=means([t.estimates for t in tracks if t.estimates]),
        tags=means([t.tags for t in tracks if t.tags]),
        n_tracks=len(tracks),
        key_share=share,
    )


# --- comparisons ----------------------------------------------------------------------------
def _reason(kind: str, text: str, query, neighbour) -> dict:
    return {"kind": kind, "text": text, "query": query, "neighbour": neighbour}


def _fmt_bpm(x: float) -> str:
    return f"{x:.0f}"


def _tag_reasons(q: Traits, n: Traits) -> list[dict]:
    qt, nt = q.top_tags(), n.top_tags()
    if not qt or not nt:
        return []
    out = []
    shared = [t for t in nt if t in qt]
    if shared:
        out.append(_reason("tag", f"both: {', '.join(shared)} (musicnn tags)",
                           {t: round(float(q.tags[t]), 3) for t in shared},
                           {t: round(float(n.tags[t]), 3) for t in shared}))
    only_n = [t for t in nt[:3] if t not in qt]
    if only_n:
        out.append(_reason("tag", f"more {', '.join(only_n)} (musicnn tags)",
                           {t: round(float(q.tags.get(t, 0.0)), 3) for t in only_n},
                           {t: round(float(n.tags[t]), 3) for t in only_n}))
    return out


def _tempo_reason(q: Traits, n: Traits) -> dict | None:
    a, b = q.tempo_bpm, n.tempo_bpm
    if a is None or b is None:
        return None
    text = f"{_fmt_bpm(b)} vs {_fmt_bpm(a)} BPM"
    ratio = b / a
    if abs(ratio - 1) <= TEMPO_CLOSE:
        pass
    elif abs(ratio - 2) <= 2 * TEMPO_CLOSE:
        text += " (double time)"
    elif abs(ratio - 0.5) <= TEMPO_CLOSE:
        text += " (half time)"
    else:
        text += f" ({'faster' if b > a else 'slower'} by {abs(round(b) - round(a)):.0f} BPM)"  # as the shown values differ
    return _reason("tempo", text, round(a, 1), round(b, 1))


def _key_reason(q: Traits, n: Traits) -> dict | None:
    if q.key is None or n.key is None:
        return None
    mostly = " (most tracks)" if q.n_tracks > 1 or n.n_tracks > 1 else ""
    if (q.tonic, q.mode) == (n.tonic, n.mode):
        return _reason("key", f"both {q.key}{mostly}", q.key, n.key)
    # position on the circle of fifths of each key signature (relative keys share one)
    sig = [((t + (3 if m == 0 else 0)) * 7) % 12 for t, m in ((q.tonic, q.mode), (n.tonic, n.mode))]
    steps = min((sig[0] - sig[1]) % 12, (sig[1] - sig[0]) % 12)
    if steps == 0:
        note = "relative keys"
    elif q.tonic == n.tonic:
        note = "parallel keys"
    elif steps == 1:
        note = "neighbouring keys"
    else:
        note = f"{steps} steps apart on the circle of fifths"
    return _reason("key", f"{n.key} vs {q.key} ({note})", q.key, n.key)


def _loudness_reason(q: Traits, n: Traits) -> dict | None:
    a, b = q.loudness_lufs, n.loudness_lufs
    if a is None or b is None:
        return None
    d = b - a
    vals = f"{b:.0f} vs {a:.0f} LUFS"
    if abs(d) < LOUDNESS_SAME_LU:
        text = f"same loudness ({vals})"
    else:
        text = f"{'louder' if d > 0 else 'quieter'} by {abs(round(b) - round(a)):.0f} LU ({vals})"
    return _reason("loudness", text, round(a, 1), round(b, 1))


def _estimate_reasons(q: Traits, n: Traits) -> list[dict]:
    out = []
    names = [k for k in ESTIMATES if k in q.estimates and k in n.estimates]
    diffs = sorted(((n.estimates[k] - q.estimates[k], k) for k in names), key=lambda x: -abs(x[0]))
    for d, k in diffs[:2]:  # the two largest differences, if large
        if abs(d) >= ESTIMATE_DIFFERENT:
            word = _ADJECTIVE[k][0 if d > 0 else 1]
            out.append(_reason("estimate", f"{word} (estimated {k} {n.estimates[k]:.2f} vs {q.estimates[k]:.2f})",
                               round(q.estimates[k], 3), round(n.estimates[k], 3)))
    shared = []  # shared extremes, e.g. both highly danceable; the most extreme first
    for k in names:
        a, b = q.estimates[k], n.estimates[k]
        if abs(b - a) >= ESTIMATE_DIFFERENT:
            continue
        if min(a, b) >= ESTIMATE_HIGH:
            shared.append((min(a, b) - ESTIMATE_HIGH, _reason("estimate", f"both high {k} (estimated {b:.2f} vs {a:.2f})",
                                                              round(a, 3), round(b, 3))))
        elif max(a, b) <= ESTIMATE_LOW:
            shared.append((ESTIMATE_LOW - max(a, b), _reason("estimate", f"both low {k} (estimated {b:.2f} vs {a:.2f})",
                                                             round(a, 3), round(b, 3))))
    shared.sort(key=lambda x: -x[0])
    out.extend(r for _, r in shared[: max(0, MAX_ESTIMATE_REASONS - len(out))])
    return out


def compare_traits(query: Traits, neighbour: Traits) -> list[dict]:
    """The ``reasons`` of one neighbour: shared traits and main differences, neighbour vs query.

    Order: musicnn tags, tempo, key, loudness, the 0–1 estimates. Traits missing on either side
    are left out (an empty list when nothing is measured on both).

    Returns
    -------
    list of dict
        ``{"kind": "tag"|"tempo"|"key"|"loudness"|"estimate", "text", "query", "neighbour"}``;
        ``query``/``neighbour`` hold the compared values (BPM, key name, LUFS, 0–1, tag
        probabilities) and ``text`` says it with units.
    """
    out = _tag_reasons(query, neighbour)
    for r in (_tempo_reason(query, neighbour), _key_reason(query, neighbour), _loudness_reason(query, neighbour)):
        if r is not None:
            out.append(r)
    out.extend(_estimate_reasons(query, neighbour))
    return out


def reason_line(reasons: Sequence[Mapping]) -> str:
    """The reasons as one line of text, ``" · "``-separated (CLI text, reports)."""
    return " · ".join(str(r["text"]) for r in reasons)


# --- the engine's hook ------------------------------------------------------------------------
def add_reasons(engine, query, doc: dict) -> dict:
    """Give every neighbour of an answer document its ``reasons`` (the engine's ``finish`` hook).

    The query side is the seed as the document names it (``artist_id``, ``artist_ids``,
    ``track_id`` or ``track_ids``): an artist's traits aggregate its tracks; several seeds are
    aggregated together. The stored values are loaded once per engine
    (:class:`~soundalike.query.traits.TraitTable`). Returns `doc`, changed in place.
    """
    from .traits import TraitTable, add_reasons as _add

    table = engine._cache.get(("traits",), lambda: TraitTable(engine.store))
    if not table:
        for nb in doc.get("neighbours", []):
            nb["reasons"] = []
        return doc
    q = doc.get("query", {})
    if "track_id" in q:
        seed = table.track(q["track_id"])
    elif "track_ids" in q:
        seed = table.tracks(q["track_ids"])
    elif "artist_id" in q:
        seed = table.artist(int(q["artist_id"]))
    else:
        seed = table.artists(q.get("artist_ids", []))
    _add(table, seed, doc.get("neighbours", []))
    return doc
