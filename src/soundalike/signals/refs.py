"""The ``refs`` signal: direct scores from reference lists ("fans also like", music-map ...).

CSV columns ``artist,similar_artist,rank_or_score``. A column of integers >= 1 is read as ranks
(1 = most similar; score ``1 / rank``); anything else as scores, divided by each artist's
largest. Lists are symmetrised (``max`` of both directions). Enrichment adds
``signal_inputs(store)["refs"]`` triples (artist_a, artist_b, score in [0, 1]).
An artist with no list and named in nobody's list has no ``refs`` score (NaN), which the hybrid
renormalises away; a listed artist scores 0 with artists absent from its list.
"""

from __future__ import annotations

import numpy as np

from ._base import NameIndex, SignalContext, SignalScores, empty_scores, read_csv_rows

__all__ = ["compute", "reference_edges", "parse_rank_or_score"]

COLUMNS = ("artist", "similar_artist", "rank_or_score")


def parse_rank_or_score(values: list[str]) -> np.ndarray:
    """Scores in (0, 1] from a column of ranks or scores (see the module docstring)."""
    v = np.array([float(x) if x not in ("", None) else np.nan for x in values])
    finite = v[np.isfinite(v)]
    if finite.size and np.all(finite >= 1) and np.all(finite == np.round(finite)):
        return np.where(np.isfinite(v), 1.0 / v, 1.0)
    return np.where(np.isfinite(v), v, 1.0)


def reference_edges(ctx: SignalContext) -> list[tuple[int, int, float]]:
    """(artist_id_a, artist_id_b, score) from the refs CSV and enrichment; names matched normalised."""
    names = NameIndex(ctx.names)
    edges: list[tuple[int, int, float]] = []
    path = ctx.csv.get("refs")
    if path:
        rows = read_csv_rows(path, COLUMNS, what="refs")
        scores = parse_rank_or_score([r["rank_or_score"] for r in rows])
        # normalise scores per source artist (ranks are already in (0, 1])
        per: dict[int, list[tuple[int, float]]] = {}
        for r, s in zip(rows, scores):
            a, b = names.get(r["artist"]), names.get(r["similar_artist"])
            if a is not None and b is not None and a != b:
                per.setdefault(a, []).append((b, float(s)))
        for a, lst in per.items():
            top = max(s for _, s in lst) or 1.0
            edges.extend((a, b, s / top) for b, s in lst)
    for a, b, s in (ctx.enrichment or {}).get("refs") or []:
        ia, ib = names.get(a), names.get(b)
        if ia is not None and ib is not None and ia != ib:
            edges.append((ia, ib, float(s)))
    return edges


def compute(ctx: SignalContext) -> SignalScores:
    edges = reference_edges(ctx)
    if not edges:
        return empty_scores("refs", ctx.artist_ids, "no reference lists (refs CSV or enrichment)")
    pos = ctx.position()
    n = len(ctx.artist_ids)
    R = np.zeros((n, n))
    listed = np.zeros(n, dtype=bool)
    for a, b, s in edges:
        if a in pos and b in pos:
            i, j = pos[a], pos[b]
            R[i, j] = max(R[i, j], min(max(s, 0.0), 1.0))
            listed[i] = listed[j] = True
    R = np.maximum(R, R.T)
    np.fill_diagonal(R, 1.0)
    S = np.full((n, n), np.nan)
    S[np.ix_(listed, listed)] = R[np.ix_(listed, listed)]
    return SignalScores("refs", np.asarray(ctx.artist_ids), S, float(listed.mean()) if n else 0.0,
                        f"{len(edges)} reference entries")
