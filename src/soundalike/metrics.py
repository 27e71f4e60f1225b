"""Evaluation metrics over arrays: pair statistics, ranking quality, genre precision, hubness.

Pure functions on NumPy arrays; nothing here reads the store. Definitions follow CONTRACTS.md
("Scores and evaluation"):

- genre P@k is artist-level: each artist queries the *other* artists;
- track-level figures exclude the query artist's own tracks (the artist filter);
- every precision comes with its **ceiling** (the best any ranking could score with these
  labels) and its **chance** level (the expectation under a uniformly random ranking);
- hubness uses k-occurrence at k = 5 (and 10);
- bootstrap intervals resample query artists, 1,000 times.

Queries with no relevant candidate at all (e.g. the only baroque artist when asking for
same-genre neighbours) carry no information about the ranking; they are left out of the means
and counted in ``n_skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .errors import ParameterError

__all__ = [
    "pairwise_stats",
    "expected_pair",
    "overlap_at_k",
    "precision_at_k",
    "average_precision",
    "mean_average_precision",
    "dcg_at_k",
    "ndcg_at_k",
    "expected_average_precision",
    "expected_ndcg_at_k",
    "rank_candidates",
    "retrieval_scores",
    "genre_precision_at_k",
    "track_genre_precision_at_k",
    "same_artist_map",
    "k_occurrence",
    "hubness",
    "bootstrap_ci",
    "paired_bootstrap",
    "group_separation",
    "metric_entry",
    "quality_metrics",
    "with_aliases",
]


# --------------------------------------------------------------------------- pair statistics


def pairwise_stats(S: np.ndarray) -> dict[str, float]:
    """min / max / range / mean / std of the off-diagonal pairs of a symmetric matrix.

    Parameters
    ----------
    S : np.ndarray [shape=(n, n)]

    Returns
    -------
    dict with keys ``min, max, range, mean, std, n_pairs`` (NaN when n < 2)

    Examples
    --------
    >>> pairwise_stats(np.array([[1, .2, .4], [.2, 1, .9], [.4, .9, 1]]))["range"]
    0.7
    """
    S = _square(S, "S")
    v = S[np.triu_indices(S.shape[0], k=1)]
    if v.size == 0:
        nan = float("nan")
        return {"min": nan, "max": nan, "range": nan, "mean": nan, "std": nan, "n_pairs": 0}
    return {"min": float(v.min()), "max": float(v.max()), "range": round(float(v.max() - v.min()), 12),
            "mean": float(v.mean()), "std": float(v.std()), "n_pairs": int(v.size)}


def expected_pair(value: float, low: float, high: float) -> dict:
    """Whether a pair's score falls in its expected range [low, high] (inclusive).

    Returns ``{"value", "low", "high", "pass", "off_by"}``; ``off_by`` is the distance to the
    range (0 inside it).
    """
    if low > high:
        raise ParameterError(f"Expected range {low}–{high} is empty; write it as low–high with low <= high.")
    off = 0.0 if low <= value <= high else float(min(abs(value - low), abs(value - high)))
    return {"value": float(value), "low": float(low), "high": float(high), "pass": bool(off == 0.0), "off_by": off}


def group_separation(S: np.ndarray, groups: Sequence) -> float:
    """Mean score of same-group pairs minus mean score of different-group pairs.

    Pairs where either side has no group (None) are ignored. NaN when either set is empty.
    """
    S = _square(S, "S")
    g = np.asarray([("" if x is None else str(x)) for x in groups], dtype=object)
    iu = np.triu_indices(S.shape[0], k=1)
    known = (g[iu[0]] != "") & (g[iu[1]] != "")
    same = (g[iu[0]] == g[iu[1]]) & known
    diff = (g[iu[0]] != g[iu[1]]) & known
    if not same.any() or not diff.any():
        return float("nan")
    v = S[iu]
    return float(v[same].mean() - v[diff].mean())


# --------------------------------------------------------------------------- ranking metrics


def overlap_at_k(retrieved: Sequence, reference: Sequence, *, k: int = 10) -> float:
    """Share of the reference's top-k found in the retrieved top-k.

    ``|retrieved[:k] ∩ reference[:k]| / min(k, len(reference))`` — the seeds' "music-map
    overlap". NaN for an empty reference.
    """
    _check_k(k)
    ref = list(reference)[:k]
    if not ref:
        return float("nan")
    return len(set(list(retrieved)[:k]) & set(ref)) / len(ref)


def precision_at_k(relevance: Sequence, *, k: int) -> float:
    """Fraction of relevant items among the first k of a ranked list.

    Parameters
    ----------
    relevance : array-like [shape=(n_ranked,)]   1/True where the item at that rank is relevant
    k : int > 0   a list shorter than k counts its missing ranks as not relevant
    """
    _check_k(k)
    r = np.asarray(relevance, dtype=float)[:k] > 0
    return float(r.sum() / k)


def average_precision(relevance: Sequence, *, n_relevant: int | None = None) -> float:
    """Average precision of one ranked list: mean of P@rank over the relevant ranks.

    ``n_relevant`` defaults to the number of relevant items in the list (a full ranking);
    pass the true total when the list is truncated. NaN when there is nothing relevant.
    """
    r = np.asarray(relevance, dtype=float) > 0
    total = int(r.sum()) if n_relevant is None else int(n_relevant)
    if total == 0:
        return float("nan")
    hits = np.cumsum(r)
    ranks = np.arange(1, r.size + 1)
    return float((hits[r] / ranks[r]).sum() / total)


def mean_average_precision(relevance_lists: Sequence[Sequence]) -> float:
    """Mean of :func:`average_precision` over queries that have a relevant item."""
    aps = [average_precision(r) for r in relevance_lists]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")


def dcg_at_k(gains: Sequence, *, k: int) -> float:
    """Discounted cumulative gain: ``sum_i gain_i / log2(i + 1)`` over ranks i = 1..k."""
    _check_k(k)
    g = np.asarray(gains, dtype=float)[:k]
    return float((g / np.log2(np.arange(2, g.size + 2))).sum())


def ndcg_at_k(gains: Sequence, *, k: int, all_gains: Sequence | None = None) -> float:
    """DCG@k divided by the ideal DCG@k (best ordering of `all_gains`, default `gains`).

    NaN when no candidate has a positive gain.
    """
    ideal = dcg_at_k(sorted(np.asarray(gains if all_gains is None else all_gains, dtype=float), reverse=True), k=k)
    return float("nan") if ideal <= 0 else dcg_at_k(gains, k=k) / ideal


def expected_average_precision(n_relevant: int, n_candidates: int) -> float:
    """Expected AP of a uniformly random ranking of `n_candidates` with `n_relevant` relevant.

    A relevant item at rank p has on average ``(p-1)(R-1)/(N-1)`` relevant items above it, so
    ``E[AP] = (R-1)/(N-1) + (1 - (R-1)/(N-1)) * H_N / N`` (H_N the harmonic number).
    """
    R, N = int(n_relevant), int(n_candidates)
    if R <= 0 or N <= 0:
        return float("nan")
    if N == 1:
        return 1.0
    q = (R - 1) / (N - 1)
    return float(q + (1 - q) * np.sum(1.0 / np.arange(1, N + 1)) / N)


def expected_ndcg_at_k(gains: Sequence, *, k: int) -> float:
    """Expected nDCG@k of a uniformly random ordering of `gains` (every rank gets the mean gain)."""
    g = np.asarray(gains, dtype=float)
    ideal = dcg_at_k(sorted(g, reverse=True), k=k)
    if ideal <= 0:
        return float("nan")
    m = min(k, g.size)
    return float(g.mean() * (1.0 / np.log2(np.arange(2, m + 2))).sum() / ideal)


# --------------------------------------------------------------------------- retrieval over a matrix


def rank_candidates(S: np.ndarray, i: int, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of row `i`'s candidates, best first, without `i` itself and `exclude`.

    Ties keep index order (a stable sort), so results are deterministic.
    """
    keep = np.ones(S.shape[1], dtype=bool)
    keep[i] = False
    if exclude is not None:
        keep &= ~np.asarray(exclude, dtype=bool)
    cand = np.flatnonzero(keep)
    return cand[np.argsort(-S[i, cand], kind="stable")]


def retrieval_scores(
    S: np.ndarray, labels: Sequence, *, k: int = 5, groups: Sequence | None = None,
) -> dict:
    """P@k, AP and nDCG@k of every query against label relevance, with ceilings and chance.

    Each row of `S` is a query; its candidates are all other rows, minus those sharing its
    group when `groups` is given (the artist filter). A candidate is relevant when its label
    equals the query's (None never matches). Queries without a label or without any relevant
    candidate are skipped (counted in ``n_skipped``).

    Parameters
    ----------
    S : np.ndarray [shape=(n, n)]   higher = more similar
    labels : sequence [n]
    k : int > 0
    groups : sequence [n], optional

    Returns
    -------
    dict with per-query arrays (``query``, ``p_at_k``, ``ap``, ``ndcg``, ``ceiling``,
    ``chance``, ``ap_chance``, ``ndcg_chance``) and their means (``P@k``, ``ceiling``,
    ``chance``, ``MAP``, ``MAP_chance``, ``nDCG@k``, ``nDCG_chance``), ``n_queries``,
    ``n_skipped``.
    """
    S = _square(S, "S")
    _check_k(k)
    lab = _labels(labels, S.shape[0], "labels")
    grp = None if groups is None else _labels(groups, S.shape[0], "groups")
    rows: dict[str, list] = {key: [] for key in ("query", "p_at_k", "ap", "ndcg", "ceiling", "chance",
                                                  "ap_chance", "ndcg_chance")}
    skipped = 0
    # labels and groups as integer codes, so each query compares arrays, not Python objects
    code = _codes(lab, none_matches=False)
    gcode = None if grp is None else _codes(grp, none_matches=True)
    logs = np.log2(np.arange(2, k + 2))  # dcg_at_k's discounts (as divisors, the same rounding)
    for i in range(S.shape[0]):
        if lab[i] is None:
            skipped += 1
            continue
        order = rank_candidates(S, i, exclude=None if gcode is None else gcode == gcode[i])
        rel = (code[order] == code[i]).astype(float)
        R, N = int(rel.sum()), rel.size
        if R == 0:
            skipped += 1
            continue
        # binary gains: the ideal ranking puts the R relevant items first (ndcg_at_k's ideal)
        top = rel[:k]
        ideal = float((1.0 / logs[: min(k, R)]).sum())
        rows["query"].append(i)
        rows["p_at_k"].append(float(top.sum() / k))
        rows["ap"].append(average_precision(rel))
        rows["ndcg"].append(float((top / logs[: top.size]).sum()) / ideal)
        rows["ceiling"].append(min(k, R) / k)
        rows["chance"].append(R / N)
        rows["ap_chance"].append(expected_average_precision(R, N))
        rows["ndcg_chance"].append(float(rel.mean() * (1.0 / logs[: min(k, N)]).sum() / ideal))
    out: dict = {key: np.asarray(v) for key, v in rows.items()}

    def mean(key: str) -> float:
        return float(np.mean(out[key])) if len(out[key]) else float("nan")

    out.update({"k": k, f"P@{k}": mean("p_at_k"), "ceiling": mean("ceiling"), "chance": mean("chance"),
                "MAP": mean("ap"), "MAP_chance": mean("ap_chance"), f"nDCG@{k}": mean("ndcg"),
                "nDCG_chance": mean("ndcg_chance"), "n_queries": len(out["query"]), "n_skipped": skipped})
    return out


def genre_precision_at_k(S_artists: np.ndarray, artist_genres: Sequence, *, k: int = 5) -> dict:
    """Artist-level genre P@k: each artist ranks the other artists (CONTRACTS.md).

    A thin name for :func:`retrieval_scores` without groups; see there for the keys.
    """
    return retrieval_scores(S_artists, artist_genres, k=k)


def track_genre_precision_at_k(
    S_tracks: np.ndarray, track_genres: Sequence, track_artists: Sequence, *, k: int = 5,
) -> dict:
    """Track-level genre P@k with the artist filter: a track's own artist's tracks are not candidates."""
    return retrieval_scores(S_tracks, track_genres, k=k, groups=track_artists)


def same_artist_map(S_tracks: np.ndarray, track_artists: Sequence) -> dict:
    """Same-artist track retrieval: each track ranks every other track; relevant = same artist.

    Returns ``{"MAP", "chance", "ceiling": 1.0, "ap": per-query array, "query": indices,
    "n_queries", "n_skipped"}`` (artists with one track are skipped as queries).
    """
    r = retrieval_scores(S_tracks, track_artists, k=1)
    return {"MAP": r["MAP"], "chance": r["MAP_chance"], "ceiling": 1.0 if r["n_queries"] else float("nan"),
            "ap": r["ap"], "query": r["query"], "n_queries": r["n_queries"], "n_skipped": r["n_skipped"]}


# --------------------------------------------------------------------------- hubness


def k_occurrence(S: np.ndarray, *, k: int = 5) -> np.ndarray:
    """How often each item appears among the other items' k nearest neighbours.

    Returns
    -------
    np.ndarray [shape=(n,)] of int; it sums to ``n * min(k, n-1)``
    """
    S = _square(S, "S")
    _check_k(k)
    n = S.shape[0]
    counts = np.zeros(n, dtype=int)
    for i in range(n):
        counts[rank_candidates(S, i)[:k]] += 1
    return counts


def hubness(S: np.ndarray, *, k: int = 5) -> dict:
    """Hubness of a similarity matrix at k.

    Returns
    -------
    dict: ``skewness`` (population skewness of the k-occurrence, m3 / m2^1.5; 0 when constant),
    ``max_k_occurrence``, ``max_share`` (largest k-occurrence / (n·k), the biggest hub's share of
    all neighbour slots), ``anti_hub_share`` (share of items that are nobody's neighbour), ``k``.
    """
    Nk = k_occurrence(S, k=k).astype(float)
    d = Nk - Nk.mean()
    m2, m3 = float((d**2).mean()), float((d**3).mean())
    skew = 0.0 if m2 <= 1e-15 else m3 / m2**1.5
    slots = Nk.sum()
    return {"k": k, "skewness": float(skew), "max_k_occurrence": int(Nk.max()) if Nk.size else 0,
            "max_share": float(Nk.max() / slots) if slots else float("nan"),
            "anti_hub_share": float((Nk == 0).mean()) if Nk.size else float("nan")}


# --------------------------------------------------------------------------- bootstrap


def _group_resample_means(values: np.ndarray, groups: np.ndarray | None, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, values.shape[0], size=(n_resamples, values.shape[0]))
        return values[idx].mean(axis=1)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=uniq.size)
    counts = np.bincount(inv, minlength=uniq.size).astype(float)
    pick = rng.integers(0, uniq.size, size=(n_resamples, uniq.size))
    return sums[pick].sum(axis=1) / counts[pick].sum(axis=1)


def bootstrap_ci(
    values: Sequence[float], *, groups: Sequence | None = None, n_resamples: int = 1000, seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Percentile bootstrap interval of a mean, resampling query artists.

    Parameters
    ----------
    values : array-like [shape=(n_queries,)]   one figure per query (per-artist P@k, per-track AP, ...)
    groups : array-like [shape=(n_queries,)], optional
        The query's artist; whole artists are resampled (with all their queries), so a
        track-level figure is not made to look surer than its number of artists allows.
    n_resamples, seed, confidence : the CONTRACTS defaults are 1000, 0, 0.95

    Returns
    -------
    dict: ``mean, low, high, n_resamples, confidence``
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ParameterError(f"values must be a non-empty 1-D array; got shape {v.shape}.")
    g = None if groups is None else np.asarray(groups)
    if g is not None and g.shape != v.shape:
        raise ParameterError(f"groups has shape {g.shape} but values has {v.shape}; give one group per value.")
    means = _group_resample_means(v, g, n_resamples, seed)
    a = (1 - confidence) / 2
    return {"mean": float(v.mean()), "low": float(np.quantile(means, a)), "high": float(np.quantile(means, 1 - a)),
            "n_resamples": n_resamples, "confidence": confidence}


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, groups: Sequence | None = None, n_resamples: int = 1000, seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Interval of mean(a − b) over the same queries; ``excludes_zero`` says whether a beats b (or loses)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ParameterError(f"Paired values need the same queries: shapes {a.shape} and {b.shape}.")
    out = bootstrap_ci(a - b, groups=groups, n_resamples=n_resamples, seed=seed, confidence=confidence)
    out["excludes_zero"] = bool(out["low"] > 0 or out["high"] < 0)
    return out


# --------------------------------------------------------------------------- helpers


def _square(S, name: str) -> np.ndarray:
    S = np.asarray(S, dtype=float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ParameterError(f"{name} must be a square (n, n) matrix; got shape {S.shape}.")
    return S


def _codes(values: list, *, none_matches: bool) -> np.ndarray:
    """One integer per distinct value (``==`` equality); None gets -1 (matching nothing) unless
    `none_matches`, where it is a value like any other."""
    seen: dict = {}
    out = np.empty(len(values), dtype=np.int64)
    for j, v in enumerate(values):
        out[j] = -1 if (v is None and not none_matches) else seen.setdefault(v, len(seen))
    return out


def _labels(labels, n: int, name: str) -> list:
    lab = list(labels)
    if len(lab) != n:
        raise ParameterError(f"{name} has {len(lab)} entries but the matrix has {n} rows; give one per row.")
    return lab


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ParameterError(f"k must be a positive integer, got {k!r}.")


# --------------------------------------------------------------------------- the one schema
#: CONTRACTS names (left) and the names earlier documents used (right), kept readable as aliases
_ALIASES = [
    (re.compile(r"genre_p_at_(\d+)"), "genre_P@{0}"),
    (re.compile(r"track_genre_p_at_(\d+)"), "track_genre_P@{0}"),
    (re.compile(r"ndcg_at_(\d+)"), "genre_nDCG@{0}"),
    (re.compile(r"genre_map"), "genre_MAP"),
    (re.compile(r"same_artist_map"), "same_artist_MAP"),
    (re.compile(r"hubness_k(\d+)"), "hubness@{0}"),
]


def metric_entry(value: float, ceiling: float, chance: float, n_queries: int | None = None) -> dict:
    """One figure as every evaluation document writes it: value beside its ceiling and chance."""
    out = {"value": value, "ceiling": ceiling, "chance": chance}
    if n_queries is not None:
        out["n_queries"] = n_queries
    return out


def with_aliases(metrics: dict) -> dict:
    """`metrics` (CONTRACTS names) plus each old name as an alias of the same value, and the
    flat ``genre_p_at_{k}_ceiling`` / ``_chance`` keys CONTRACTS lists."""
    out = dict(metrics)
    for key, value in metrics.items():
        for pattern, old in _ALIASES:
            m = pattern.fullmatch(str(key))
            if m:
                out.setdefault(old.format(*m.groups()), value)
        m = re.fullmatch(r"(track_)?hubness_k(\d+)", str(key))
        if m:
            out.setdefault(f"{m.group(1) or 'artist_'}hubness", {})[f"k={m.group(2)}"] = value
        if re.fullmatch(r"genre_p_at_\d+", str(key)) and isinstance(value, dict):
            out[f"{key}_ceiling"], out[f"{key}_chance"] = value.get("ceiling"), value.get("chance")
    return out


def quality_metrics(S_artists: np.ndarray, artist_genres: Sequence, *, S_tracks: np.ndarray | None = None,
                    track_artists: Sequence | None = None, genre_k: Sequence[int] = (1, 5),
                    hubness_k: Sequence[int] = (5,)) -> dict:
    """The quality block of a report: same-artist mAP (tracks), artist genre P@k, hubness.

    Keys are the CONTRACTS names (``same_artist_map``, ``genre_p_at_{k}``, ``hubness_k{k}``),
    with the old names as aliases (:func:`with_aliases`).
    """
    out: dict = {}
    if S_tracks is not None and len(S_tracks) > 2:
        sa = same_artist_map(S_tracks, list(track_artists))
        out["same_artist_map"] = metric_entry(sa["MAP"], sa["ceiling"], sa["chance"], sa["n_queries"])
    n = len(artist_genres)
    if n > 2 and sum(g is not None for g in artist_genres) > 1:
        for k in genre_k:
            r = genre_precision_at_k(S_artists, artist_genres, k=min(k, n - 1))
            out[f"genre_p_at_{k}"] = metric_entry(r[f"P@{r['k']}"], r["ceiling"], r["chance"], r["n_queries"])
    for k in hubness_k:
        if n > k:
            h = hubness(S_artists, k=k)
            out[f"hubness_k{k}"] = {key: h[key] for key in h if not hasattr(h[key], "__len__")}
    return with_aliases(out)
