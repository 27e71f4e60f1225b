"""The ``graph`` signal: propagate known artist links with personalised PageRank.

Edges: the refs lists (:mod:`.refs`) ∪ a collaboration CSV ``artist_a,artist_b,kind,weight``
∪ enrichment ``signal_inputs(store)["graph"]``, made undirected. From each artist a random walk
with restart (probability ``alpha``) scores every other artist, so an artist that has no list
of its own but is named in others' lists, or is two steps away, still gets scores (Korzeniowski
et al., ISMIR 2021: the graph carries most of the signal). Optionally (``audio_knn > 0``) each
artist is also linked to its nearest audio neighbours so that artists with no link at all are
reached too (then the graph signal contains some audio; its note says so).

Row scores are the walk probabilities divided by the row's largest (off-diagonal), in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from ..errors import ParameterError
from ._base import NameIndex, SignalContext, SignalScores, empty_scores, read_csv_rows
from .refs import reference_edges

__all__ = ["compute", "adjacency", "personalized_pagerank", "graph_edges"]

COLUMNS = ("artist_a", "artist_b", "kind", "weight")


def adjacency(edges: Iterable[tuple[int, int, float]], n: int) -> sp.csr_matrix:
    """Symmetric weighted adjacency (n, n) from (i, j, weight) position triples (duplicates: max)."""
    e = [(int(i), int(j), float(w)) for i, j, w in edges if i != j and w > 0]
    if not e:
        return sp.csr_matrix((n, n))
    i, j, w = map(np.asarray, zip(*e))
    # a pair given twice (a->b and b->a, or a ref and a collaboration) keeps its largest weight
    B = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    return _max_dupes(B, n)


def _max_dupes(B: sp.coo_matrix, n: int) -> sp.csr_matrix:
    key = B.row.astype(np.int64) * n + B.col
    order = np.lexsort((-B.data, key))
    key, data = key[order], B.data[order]
    first = np.r_[True, key[1:] != key[:-1]]
    k, d = key[first], data[first]
    return sp.csr_matrix((d, (k // n, k % n)), shape=(n, n))


def personalized_pagerank(A: sp.spmatrix, seeds: np.ndarray, *, alpha: float = 0.15, iters: int = 50,
                          tol: float = 1e-8, batch: int = 512, dtype=np.float32) -> np.ndarray:
    """Random walk with restart from each seed node.

    Parameters
    ----------
    A : sparse [shape=(n, n)]   symmetric non-negative adjacency
    seeds : np.ndarray [shape=(m,)]   node positions
    alpha : float in (0, 1)   restart probability (small = farther reach)
    iters, tol : power iteration limits

    Returns
    -------
    np.ndarray [shape=(m, n)]   stationary visit probabilities; a walk at a node without edges
    restarts at its seed.
    """
    if not 0.0 < alpha < 1.0:
        raise ParameterError(f"alpha (restart probability) must be in (0, 1), got {alpha!r}.")
    A = sp.csr_matrix(A, dtype=np.float64)
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.where(deg > 0, deg, 1.0), 0.0)
    PT = sp.csr_matrix((sp.diags(inv) @ A).T, dtype=dtype)  # column-stochastic where deg > 0
    dangling = deg == 0
    seeds = np.asarray(seeds, dtype=int)
    out = np.zeros((len(seeds), n), dtype=dtype)
    for s in range(0, len(seeds), batch):
        sd = seeds[s:s + batch]
        E = np.zeros((n, len(sd)), dtype=dtype)
        E[sd, np.arange(len(sd))] = 1.0
        R = E.copy()
        for _ in range(iters):
            lost = R[dangling].sum(axis=0) if dangling.any() else 0.0
            Rn = alpha * E + (1.0 - alpha) * (PT @ R + E * lost)
            done = np.abs(Rn - R).sum(axis=0).max() < tol
            R = Rn
            if done:
                break
        out[s:s + len(sd)] = R.T
    return out


def graph_edges(ctx: SignalContext) -> tuple[list[tuple[int, int, float]], list[str]]:
    """(artist_id_a, artist_id_b, weight) from refs, the collaboration CSV and enrichment."""
    names = NameIndex(ctx.names)
    edges = list(reference_edges(ctx))
    sources = ["refs"] if edges else []
    path = ctx.csv.get("graph")
    if path:
        sources.append(f"csv:{path}")
        for row in read_csv_rows(path, COLUMNS, what="graph"):
            a, b = names.get(row["artist_a"]), names.get(row["artist_b"])
            w = float(row.get("weight") or 1.0)
            if a is not None and b is not None:
                edges.append((a, b, w))
    enr = (ctx.enrichment or {}).get("graph") or []
    if enr:
        sources.append("enrichment")
    for a, b, _kind, w in enr:
        ia, ib = names.get(a), names.get(b)
        if ia is not None and ib is not None:
            edges.append((ia, ib, float(w) if w is not None else 1.0))
    return edges, sources


def compute(ctx: SignalContext) -> SignalScores:
    edges, sources = graph_edges(ctx)
    pos = ctx.position()
    n = len(ctx.artist_ids)
    trip = [(pos[a], pos[b], w) for a, b, w in edges if a in pos and b in pos and a != b]
    k_audio = int(ctx.options.get("audio_knn", 0) or 0)
    if k_audio > 0:
        from .audio import compute as audio_compute

        A_s = audio_compute(ctx).score
        w_audio = float(ctx.options.get("audio_weight", 0.5))
        for i in range(n):
            row = np.where(np.arange(n) == i, -np.inf, np.nan_to_num(A_s[i], nan=-np.inf))
            for j in np.argsort(-row)[:k_audio]:
                if np.isfinite(row[j]):
                    trip.append((i, int(j), w_audio))
        sources.append(f"audio k-NN ({k_audio})")
    if not trip:
        return empty_scores("graph", ctx.artist_ids, "no links (refs, graph CSV or enrichment)")
    A = adjacency(trip, n)
    linked = np.asarray(A.sum(axis=1)).ravel() > 0
    seeds = np.flatnonzero(linked)
    P = personalized_pagerank(A, seeds, alpha=float(ctx.options.get("alpha", 0.15))).astype(np.float64)
    S = np.full((n, n), np.nan)
    for r, i in enumerate(seeds):
        row = P[r].copy()
        row[i] = 0.0
        top = row.max()
        S[i, linked] = row[linked] / top if top > 0 else 0.0
        S[i, i] = 1.0
    return SignalScores("graph", np.asarray(ctx.artist_ids), S, float(linked.mean()) if n else 0.0,
                        "personalised PageRank over " + ", ".join(sources))
