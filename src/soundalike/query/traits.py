"""Read the stored measurements behind musical reasons, per track and per artist.

:class:`TraitTable` loads, once, the ``descriptors`` backend's vectors and musicnn's MSD taggram
(a model row of backend ``musicnn-msd`` with ``output = "taggram"``, 50 tag probabilities)
from a store, and answers :class:`~soundalike.query.reasons.Traits` for a track, an artist (its
tracks aggregated) or several seeds. :meth:`TraitTable.reasons` gives the ``reasons`` list of
one neighbour. Where an older store lacks the taggram, the analysis computes it
(:func:`soundalike.analysis.fill_taggrams`): the query layer never starts an analysis.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..analysis.taggrams import TAGGRAM_BACKEND, taggram_model
from ..analysis.taggrams import most_tracks as _most_tracks
from ..store import ModelInfo, Store
from .reasons import Traits, aggregate_traits, compare_traits, traits_from_descriptors

__all__ = ["TraitTable", "add_reasons", "taggram_model", "TAGGRAM_BACKEND"]


def _feature_names() -> tuple[str, ...]:
    from ..backends.descriptors import FEATURE_NAMES  # NumPy-only module

    return FEATURE_NAMES


def _tag_names() -> tuple[str, ...]:
    from ..backends.musicnn import MSD_TAGS  # imports NumPy only; torch is imported when a model is built

    return MSD_TAGS


def _descriptors_model(store: Store) -> ModelInfo | None:
    models = [m for m in store.models() if m.backend == "descriptors" and m.dim == len(_feature_names())]
    return _most_tracks(store, models)


class TraitTable:
    """Per-track traits of a store, loaded once (read-only), and the reasons between them.

    Parameters
    ----------
    store : Store
        Read; nothing is written.

    Attributes
    ----------
    has_descriptors, has_tags : bool
        Whether the store holds descriptor vectors / musicnn taggrams (for any track).
    taggram_weights_kind : str or None
        ``weights_kind`` of the taggram model (``"real"`` for musicnn's trained weights).

    Examples
    --------
    >>> table = TraitTable(store)                                   # doctest: +SKIP
    >>> table.reasons(table.artist(query_id), table.artist(neighbour_id))   # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self._tracks_of: dict[int, list[str]] = {}
        for tid, aid in store.execute("SELECT track_id, artist_id FROM tracks"):
            self._tracks_of.setdefault(int(aid), []).append(tid)
        # Matrices stay as loaded; a track's Traits are built when first asked for.
        self._desc_names = _feature_names()
        self._tag_names = _tag_names()
        self._desc_row: dict[str, int] = {}
        self._desc = np.zeros((0, len(self._desc_names)), np.float32)
        dm = _descriptors_model(store)
        self.has_descriptors = dm is not None
        if dm is not None:
            tids, self._desc = store.track_embeddings(dm.model_key, layer=0)
            self._desc_row = {t: i for i, t in enumerate(tids)}
        self._tag_row: dict[str, int] = {}
        self._tags = np.zeros((0, len(self._tag_names)), np.float32)
        tm = taggram_model(store)
        self.has_tags = tm is not None
        self.taggram_weights_kind = tm.weights_kind if tm is not None else None
        if tm is not None:
            tids, X = store.track_embeddings(tm.model_key, layer=0)
            self._tags = np.clip(X, 0.0, 1.0)
            self._tag_row = {t: i for i, t in enumerate(tids)}
        self._track_cache: dict[str, Traits] = {}
        self._artist_cache: dict[int, Traits] = {}

    def _has(self, track_id: str) -> bool:
        return track_id in self._desc_row or track_id in self._tag_row

    def __bool__(self) -> bool:
        return bool(self._desc_row or self._tag_row)

    def track(self, track_id: str) -> Traits:
        """Traits of one track (empty when nothing is stored for it)."""
        t = self._track_cache.get(track_id)
        if t is None:
            d = self._desc_row.get(track_id)
            g = self._tag_row.get(track_id)
            values = dict(zip(self._desc_names, self._desc[d].tolist())) if d is not None else {}
            tags = dict(zip(self._tag_names, self._tags[g].tolist())) if g is not None else None
            t = self._track_cache[track_id] = traits_from_descriptors(values, tags)
        return t

    def tracks(self, track_ids: Iterable[str]) -> Traits:
        """Several tracks aggregated (a multi-seed query)."""
        return aggregate_traits([self.track(t) for t in track_ids if self._has(t)])

    def artist(self, artist_id: int) -> Traits:
        """An artist's traits aggregated over its tracks (cached)."""
        aid = int(artist_id)
        if aid not in self._artist_cache:
            self._artist_cache[aid] = self.tracks(self._tracks_of.get(aid, []))
        return self._artist_cache[aid]

    def artists(self, artist_ids: Iterable[int]) -> Traits:
        """Several artists' tracks aggregated (a multi-seed artist query)."""
        return self.tracks([t for a in artist_ids for t in self._tracks_of.get(int(a), [])])

    @staticmethod
    def reasons(query: Traits, neighbour: Traits) -> list[dict]:
        """The ``reasons`` list of one neighbour (see :func:`compare_traits`)."""
        return compare_traits(query, neighbour)


def add_reasons(table: TraitTable, query: Traits, neighbours: list[dict]) -> list[dict]:
    """Set ``reasons`` on each neighbour document (by its ``track_id`` when it has one, else its
    ``artist_id``), comparing it with `query`'s traits; returns `neighbours` (changed in place)."""
    for nb in neighbours:
        other = table.track(nb["track_id"]) if nb.get("track_id") else table.artist(int(nb["artist_id"]))
        nb["reasons"] = compare_traits(query, other)
    return neighbours
