"""The ``tags`` signal: TF-IDF cosine over artist tags (genre, mood, ...).

Tags come from enrichment (``soundalike.enrich.signal_inputs(store)["tags"]``), from a CSV
``artist,tag[,weight]`` named in the hybrid config, and from the files' own genre tags
(``tracks.genres``). When the file genres are the manifest's genre labels (the development
library), they are **labels**: the scores are marked ``is_label`` and an evaluation against
genre must leave this signal out (CONTRACTS.md, no-leak rule).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._base import NameIndex, SignalContext, SignalScores, empty_scores, read_csv_rows

__all__ = ["compute", "tfidf_cosine", "collect_tags"]


def tfidf_cosine(artist_tags: Mapping[int, Mapping[str, float]], artist_ids: np.ndarray) -> np.ndarray:
    """TF-IDF cosine between the artists' weighted tag bags.

    Parameters
    ----------
    artist_tags : {artist_id: {tag: weight}}   weights >= 0 (counts, Last.fm tag scores ...)
    artist_ids : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(n, n)] in [0, 1]; rows/columns of artists without tags are NaN, the
    diagonal of tagged artists is 1.
    """
    vocab = sorted({t for a in artist_ids for t in artist_tags.get(int(a), {})})
    n = len(artist_ids)
    S = np.full((n, n), np.nan)
    if not vocab:
        return S
    col = {t: j for j, t in enumerate(vocab)}
    tf = np.zeros((n, len(vocab)))
    for i, a in enumerate(artist_ids):
        for t, w in artist_tags.get(int(a), {}).items():
            tf[i, col[t]] += max(float(w), 0.0)
    has = tf.sum(axis=1) > 0
    tf[has] /= tf[has].sum(axis=1, keepdims=True)
    df = (tf[has] > 0).sum(axis=0)
    idf = np.log((1.0 + has.sum()) / (1.0 + df)) + 1.0
    W = tf * idf
    norm = np.linalg.norm(W, axis=1, keepdims=True)
    W = W / np.where(norm > 0, norm, 1.0)
    C = np.clip(W @ W.T, 0.0, 1.0)
    S[np.ix_(has, has)] = C[np.ix_(has, has)]
    return S


def collect_tags(ctx: SignalContext, *, include_file_tags: bool = True) -> tuple[dict[int, dict[str, float]], list[str], bool]:
    """Merge the tag sources. Returns (tags, source names, uses_labels)."""
    names = NameIndex(ctx.names)
    tags: dict[int, dict[str, float]] = {}
    sources: list[str] = []

    def add(aid: int | None, tag: str, w: float) -> None:
        if aid is None or not tag:
            return
        bag = tags.setdefault(aid, {})
        key = tag.strip().casefold()
        bag[key] = bag.get(key, 0.0) + w

    enr = (ctx.enrichment or {}).get("tags") or {}
    if enr:
        sources.append("enrichment")
        for aid, bag in enr.items():
            for t, w in bag.items():
                add(names.get(aid), t, float(w))
    path = ctx.csv.get("tags")
    if path:
        sources.append(f"csv:{path}")
        for row in read_csv_rows(path, ("artist", "tag"), what="tags"):
            add(names.get(row["artist"]), row["tag"], float(row.get("weight") or 1.0))
    uses_labels = False
    if include_file_tags and ctx.file_tags:
        sources.append("file tags")
        uses_labels = ctx.file_tags_are_labels
        for aid, bag in ctx.file_tags.items():
            for t, w in bag.items():
                add(int(aid), t, float(w))
    return tags, sources, uses_labels


def compute(ctx: SignalContext) -> SignalScores:
    include_file = bool(ctx.options.get("file_tags", True))
    tags, sources, uses_labels = collect_tags(ctx, include_file_tags=include_file)
    if not tags:
        return empty_scores("tags", ctx.artist_ids, "no tags (enrichment, tags CSV or file tags)")
    S = tfidf_cosine(tags, ctx.artist_ids)
    has = np.array([bool(tags.get(int(a))) for a in ctx.artist_ids])
    note = "TF-IDF cosine of tags from " + ", ".join(sources)
    if uses_labels:
        note += " (file genres are this library's genre labels: do not evaluate genre with this signal)"
    return SignalScores("tags", np.asarray(ctx.artist_ids), S, float(has.mean()), note, is_label=uses_labels)
