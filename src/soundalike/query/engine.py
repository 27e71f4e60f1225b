"""The query engine: a :class:`~soundalike.query.spec.Query` in, the CONTRACTS ``similar --json`` document out.

Every surface (CLI, Python API, HTTP API, Subsonic, reports, the page) asks an :class:`Engine`;
none computes a score. The engine caches *models* per store — vectors per (backend, layer), one
:class:`~soundalike.query.space.CalibratedSpace` per (model, layer, level, calibration, profile),
hybrid blends — never answers. A space comes from the store's saved calibrator when one was
fitted on the same vectors; otherwise it is fitted once in this process.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..neighbours import FAISS_MIN_ITEMS, NeighbourIndex, faiss_available, index_dir
from ..store import Artist, Store, Track
from .answer import artist_neighbour, finish, header, track_neighbour
from .refs import resolve_artist, resolve_track, track_lookup
from .space import CalibratedSpace, Hit
from .spec import INDEX_MODES, Query
from .vectors import ModelVectors, fit_space, load_vectors, pick_model, space_from_state

__all__ = ["Engine", "run_query", "FALLBACK_CALIBRATION", "HYBRID_MAX_ARTISTS"]

log = logging.getLogger(__name__)

#: the default where no validated choice is saved (or too few artists have two tracks)
FALLBACK_CALIBRATION = "center"
#: hybrid blends hold artist x artist matrices: allowed up to this many artists
HYBRID_MAX_ARTISTS = 2000


class _Cache:
    """Values built once on first use, thread-safe (the service shares one engine between threads)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # builders nest (a space needs its vectors)
        self._values: dict = {}

    def get(self, key, build):
        v = self._values.get(key)
        if v is not None:
            return v
        with self._lock:
            v = self._values.get(key)
            if v is None:
                v = build()
                self._values[key] = v
            return v


class Engine:
    """Answers queries over one store.

    Parameters
    ----------
    store : Store
    index : "auto" | "exact" | "faiss", optional
        Candidate search; default env ``SOUNDALIKE_INDEX``, else ``auto`` (Faiss from
        :data:`~soundalike.neighbours.FAISS_MIN_ITEMS` items when installed).
    default_calibration : str, optional
        Overrides every backend's saved default (the service's ``SOUNDALIKE_CALIBRATION``).
    hybrid_config : HybridConfig, optional   default blend config of hybrid queries
    network : bool
        References come from the network (the service): never read as paths, resolved through
        bounded indexes (:mod:`soundalike.query.suggest`).
    """

    def __init__(self, store: Store, *, index: str | None = None, default_calibration: str | None = None,
                 hybrid_config=None, network: bool = False) -> None:
        self.store = store
        self.network = network
        self.index_mode = index or os.environ.get("SOUNDALIKE_INDEX") or "auto"
        if self.index_mode not in INDEX_MODES:
            raise ParameterError(f"index mode {self.index_mode!r} (SOUNDALIKE_INDEX): choose one of {', '.join(INDEX_MODES)}.")
        self.calibration_override = default_calibration
        self.hybrid_config = hybrid_config
        self._cache = _Cache()
        self.reload_catalogue()

    # --- catalogue ---------------------------------------------------------------------------
    def reload_catalogue(self) -> None:
        self.artists: list[Artist] = self.store.artists()
        self.artist_by_id = {a.artist_id: a for a in self.artists}
        self.tracks: list[Track] = self.store.tracks()
        self.track_by_id = {t.track_id: t for t in self.tracks}

    def track(self, ref: str) -> Track:
        """The track a reference names (path, sha256 prefix, manifest id, "Artist - Title")."""
        t = self.track_by_id.get(ref)
        if t is not None:
            return t
        if self.network:
            return resolve_track(self.tracks, ref, paths=False, lookup=self.track_lookup())
        return resolve_track(self.tracks, ref)

    def track_lookup(self):
        """Bounded-cost indexes over the catalogue's tracks (built once)."""
        return self._cache.get(("track_lookup",), lambda: track_lookup(self.tracks))

    def artist(self, ref: str | int) -> Artist:
        """The artist an id (int) or a name names."""
        return resolve_artist(self.artists, ref)

    # --- models ------------------------------------------------------------------------------
    def vectors(self, backend: str | None = None, layer: int | None = None) -> ModelVectors:
        """The stored vectors of `backend` (None: the best stored model) at `layer` (None: its default)."""
        model = self._cache.get(("model", backend), lambda: pick_model(self.store, backend))
        if layer is None:
            layer = int(model.config.get("default_layer", 0))
        return self._cache.get(("vectors", model.model_key, layer),
                               lambda: load_vectors(self.store, model_key=model.model_key, layer=layer))

    def fingerprint(self, vec: ModelVectors) -> str:
        return self._cache.get(("fp", vec.model.model_key, vec.layer), vec.fingerprint)

    def default_calibration(self, vec: ModelVectors) -> tuple[str, str]:
        """``(calibration, source)``: the override, the saved validated choice, or the fallback."""
        if self.calibration_override:
            return self.calibration_override, "configured"
        saved = self.store.calibration_default(vec.model.model_key, vec.layer)
        if saved is not None:
            return saved["calibration"], "validated default"
        return FALLBACK_CALIBRATION, "fallback (no validated default saved; `soundalike embed` decides one)"

    def space(self, vec: ModelVectors, level: str, calibration: str, profile: str = "centroid") -> CalibratedSpace:
        """The calibrated space (saved state when it matches the vectors, else fitted once)."""
        profile = "centroid" if level == "tracks" else profile
        key = (vec.model.model_key, vec.layer, level, calibration, profile)

        def build() -> CalibratedSpace:
            saved = self.store.calibrator(key, self.fingerprint(vec))
            if saved is not None:
                space = space_from_state(vec, *saved, level=level, profile=profile)
            else:
                log.info("fitting %s %s / %s / %s", vec.model.backend, level, calibration, profile)
                space = fit_space(vec, level=level, calibration=calibration, profile=profile)
            return space

        return self._cache.get(("space",) + key, build)

    def attach_index(self, vec: ModelVectors, space: CalibratedSpace, level: str, mode: str) -> bool:
        """Attach the saved Faiss index to `space` when `mode` asks for it; True when it is used."""
        if space.V is None or mode == "exact" or len(space) < 2:
            return False
        if mode == "auto" and not (len(space) >= FAISS_MIN_ITEMS and faiss_available()):
            return False
        if space.index is None:
            with self._cache._lock:
                if space.index is None:
                    space.index = self._build_index(vec, space, level)
        return True

    def prepare_index(self, vec: ModelVectors, space: CalibratedSpace, level: str) -> None:
        """Build `space`'s Faiss index without holding the model cache's lock, so that queries on
        other models go on meanwhile (the service's warm-up thread; it searches exactly until then)."""
        if space.index is None and space.V is not None:
            space.index = self._build_index(vec, space, level)

    def index_path(self, vec: ModelVectors, level: str, calibration: str) -> Path:
        """Where the saved Faiss index of one space lives (beside the store)."""
        return index_dir(self.store.path) / f"{level}-{vec.model.model_key}-layer{vec.layer}-{calibration}.faiss"

    def _build_index(self, vec: ModelVectors, space: CalibratedSpace, level: str) -> NeighbourIndex:
        V = np.ascontiguousarray(space.V, np.float32)
        ids = [str(i) for i in space.ids]
        path = self.index_path(vec, level, space.calibration)
        try:
            return NeighbourIndex.cached(V, path, ids=ids, metric="ip", ann="ivf")
        except OSError as exc:  # a read-only folder: keep the index in memory
            log.warning("cannot save the index at %s (%s); built in memory", path, exc)
            return NeighbourIndex(V, metric="ip", backend="faiss", ann="ivf")

    # --- answers -----------------------------------------------------------------------------
    def run(self, query: Query) -> dict:
        """The ``similar --json`` document (CONTRACTS.md) answering `query`."""
        query.check()
        vec = self.vectors(query.backend, query.layer)
        calibration, source = (query.calibration, "asked") if query.calibration else self.default_calibration(vec)
        if query.level == "artists" and tuple(query.signals) != ("audio",):
            return self._hybrid(query, vec, calibration, source)
        seeds, seed_doc = self._seeds(query)
        space = self.space(vec, query.level, calibration, query.profile)
        use_index = self.attach_index(vec, space, query.level, query.index or self.index_mode)
        hits = self._hits(query, vec, space, seeds, use_index)
        doc = header(seed_doc, vec, calibration, source, query, ["audio"])
        if query.level == "artists":
            doc["neighbours"] = [artist_neighbour(self, int(space.ids[h.pos]), h.score, h.raw_cosine) for h in hits]
        else:
            doc["neighbours"] = [track_neighbour(self, str(space.ids[h.pos]), h.score, h.raw_cosine) for h in hits]
        if use_index:
            doc["index"] = "faiss candidates, re-ranked exactly"
        return finish(self, query, doc)

    def _seeds(self, query: Query) -> tuple[list, dict]:
        if query.track_seeds:
            tracks = list(dict.fromkeys(self.track(r).track_id for r in query.track_seeds))
            if len(tracks) == 1 and len(query.track_seeds) == 1:
                t = self.track_by_id[tracks[0]]
                return tracks, {"track_id": t.track_id, "artist": t.artist, "artist_id": t.artist_id, "title": t.title}
            return tracks, {"track_ids": tracks}
        artists = list(dict.fromkeys(self.artist(r).artist_id for r in query.artist_seeds))
        if len(artists) == 1 and len(query.artist_seeds) == 1:
            return artists, {"artist": self.artist_by_id[artists[0]].name, "artist_id": artists[0]}
        return artists, {"artist_ids": artists}

    def _seed_positions(self, vec: ModelVectors, space: CalibratedSpace, query: Query, seeds: list) -> list[int]:
        """Rows of the seeds in `space` (an artist seed of a track answer: all its tracks)."""
        if query.track_seeds or query.level == "artists":
            out = []
            for s in seeds:
                if s not in space.pos:
                    name = self.track_by_id[s].track_id[:12] if isinstance(s, str) else self.artist_by_id[s].name
                    raise ParameterError(f"{name!r} has no {vec.model.backend} embeddings yet; run `soundalike embed`.")
                out.append(space.pos[s])
            return out
        wanted = set(seeds)
        out = [i for i, a in enumerate(vec.track_artist.tolist()) if a in wanted]
        if not out:
            raise ParameterError(f"The seed artists have no {vec.model.backend} embeddings yet; run `soundalike embed`.")
        return out

    def _hits(self, query: Query, vec: ModelVectors, space: CalibratedSpace, seeds: list, use_index: bool) -> list[Hit]:
        pos = self._seed_positions(vec, space, query, seeds)
        n = len(space)
        allowed = np.ones(n, bool)
        if query.level == "tracks":
            group = vec.track_artist
            seed_tracks = [self.track_by_id[space.ids[p]] for p in pos]
            ban_artists = set(query.exclude_artist_ids)
            if query.exclude_seed_artists:
                ban_artists |= {t.artist_id for t in seed_tracks}
            if ban_artists:
                allowed &= ~np.isin(group, list(ban_artists))
            if query.exclude_same_album:
                albums = {(t.artist_id, t.album) for t in seed_tracks if t.album}
                allowed &= np.array([(self.track_by_id[t].artist_id, self.track_by_id[t].album) not in albums
                                     for t in space.ids])
            if query.exclude_track_ids:
                ex = set(query.exclude_track_ids)
                allowed &= np.array([t not in ex for t in space.ids])
        else:
            group = None
            ban = set(query.exclude_artist_ids) | (set(seeds) if query.exclude_seed_artists else set())
            if ban:
                allowed &= ~np.isin(space.ids, list(ban))
        if not query.include_seeds:
            allowed[pos] = False
        if len(pos) == 1 and (query.track_seeds or query.level == "artists"):
            p = pos[0]
            return space.top(None if space.V is None else space.V[p], k=query.k, self_pos=p,
                             raw_q=None if space.R is None else space.R[p], allowed=allowed, item_group=group,
                             group_gap=query.artist_gap, use_index=use_index)
        q = space.unit_query(pos)
        raw_q = None
        if space.R is not None:
            raw_q = space.R[pos].mean(axis=0)
            raw_q = raw_q / max(float(np.linalg.norm(raw_q)), 1e-12)
        return space.top(q, k=query.k, raw_q=raw_q, allowed=allowed, item_group=group, group_gap=query.artist_gap,
                         use_index=use_index)

    def _hybrid(self, query: Query, vec: ModelVectors, calibration: str, source: str) -> dict:
        from ..hybrid import hybrid_scores

        if len(self.artists) > HYBRID_MAX_ARTISTS:
            raise ParameterError(f"signals {', '.join(query.signals)} blend artist x artist matrices, built only up to "
                                 f"{HYBRID_MAX_ARTISTS} artists (this library has {len(self.artists)}); use signals=audio.")
        if len(query.artist_seeds) != 1:
            raise ParameterError("A hybrid (signals) query takes one artist seed.")
        seed = self.artist(query.artist_seeds[0])
        cfg = query.hybrid_config if query.hybrid_config is not None else self.hybrid_config
        key = ("hybrid", tuple(query.signals), vec.model.model_key, vec.layer, calibration, query.profile, id(cfg))
        res = self._cache.get(key, lambda: hybrid_scores(self.store, signals=list(query.signals), config=cfg,
                                                         backend=vec.model.backend, calibration=calibration,
                                                         profile=query.profile, layer=vec.layer, engine=self))
        ids = res.artist_ids.tolist()
        if seed.artist_id not in ids:
            raise ParameterError(f"Artist {seed.name!r} has none of the signals {', '.join(query.signals)}.")
        i = ids.index(seed.artist_id)
        used = [s for s in res.signals_used if np.isfinite(res.signals[s].score[i]).sum() > 1]
        if not used:
            raise ParameterError(f"Artist {seed.name!r} has none of the signals {', '.join(query.signals)}; "
                                 "embed its tracks or give reference/graph CSVs in the hybrid config.")
        audio = res.signals.get("audio") or res.signals.get("descriptors")
        raw = audio.details.get("raw_cosine") if audio is not None else None
        ban = set(query.exclude_artist_ids)
        neighbours = []
        for j in res.neighbours(i, k=query.k + len(ban)):
            a = int(ids[j])
            if a in ban:
                continue
            present = [s for s, v in res.signals.items() if np.isfinite(v.score[i, j])]
            r = float(raw[i, j]) if raw is not None and np.isfinite(raw[i, j]) else None
            nb = artist_neighbour(self, a, float(res.score[i, j]), r,
                                  contributions={s: float(res.contributions[s][i, j]) for s in present},
                                  signal_scores={s: (float(v.score[i, j]) if s in present else None)
                                                 for s, v in res.signals.items()})
            neighbours.append(nb)
        doc = header({"artist": seed.name, "artist_id": seed.artist_id}, vec, calibration, source, query, used)
        doc.update({
            "blend": {"weights": res.weights, "kind": res.weights_kind, "renormalised_over_present": True},
            "coverage": res.coverage(),
            "signal_notes": {s: v.note for s, v in res.signals.items()},
            "labels_as_signals": [s for s, v in res.signals.items() if v.is_label],
            "neighbours": neighbours[: query.k],
        })
        return finish(self, query, doc)

    # --- whole-library views -------------------------------------------------------------------
    def artist_scores(self, *, backend: str | None = None, layer: int | None = None, calibration: str | None = None,
                      profile: str = "centroid", max_artists: int | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """``(artist ids, score n x n, raw cosine n x n, calibration)`` of every artist pair (small libraries).

        `max_artists`: above it, the pairs of a seeded sample of that many artists (seed 0),
        each score the one a whole-library query gives; the returned ids say which.
        """
        vec = self.vectors(backend, layer)
        cal = calibration or self.default_calibration(vec)[0]
        space = self.space(vec, "artists", cal, profile)
        rows = None
        if max_artists is not None and len(space) > max_artists:
            rows = np.sort(np.random.default_rng(0).choice(len(space), size=max_artists, replace=False))
        elif len(space) > HYBRID_MAX_ARTISTS:
            raise ParameterError(f"the full artist matrix is built only up to {HYBRID_MAX_ARTISTS} artists "
                                 f"(this library has {len(space)}); ask `soundalike similar` per artist.")
        score, raw = space.score_matrix(rows)
        ids = np.asarray(space.ids)
        return (ids if rows is None else ids[rows]), score, raw, cal

    def track_scores(self, *, backend: str | None = None, layer: int | None = None, calibration: str | None = None,
                     max_tracks: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray, str]:
        """``(track ids, score n x n, raw cosine n x n, calibration)`` of every track pair (evaluation).

        `max_tracks`: above it, the pairs of a seeded sample of whole artists (those with two
        or more tracks, seed 0) of at most that many tracks, as the default-calibration
        validation samples them.
        """
        vec = self.vectors(backend, layer)
        cal = calibration or self.default_calibration(vec)[0]
        space = self.space(vec, "tracks", cal)
        rows = None
        if max_tracks is not None and len(space) > max_tracks:
            from .defaults import sample_tracks

            rows = np.sort([space.position(vec.track_ids[i]) for i in sample_tracks(vec, max_tracks)]).astype(int)
        score, raw = space.score_matrix(rows)
        ids = list(space.ids) if rows is None else [space.ids[i] for i in rows]
        return ids, score, raw, cal

    def layout(self, *, backend: str | None = None, layer: int | None = None,
               calibration: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """``(artist ids, coordinates (n, 2) in [0, 1], calibration)``: the one artist map."""
        from .layout import layout_2d

        vec = self.vectors(backend, layer)
        cal = calibration or self.default_calibration(vec)[0]

        def build():
            space = self.space(vec, "artists", cal, "centroid")
            return np.asarray(space.ids), layout_2d(space.V)

        ids, Y = self._cache.get(("layout", vec.model.model_key, vec.layer, cal), build)
        return ids, Y, cal


    # --- paths and outside vectors ---------------------------------------------------------------
    def path(self, start: str, end: str, *, count: int = 10, backend: str | None = None,
             layer: int | None = None) -> tuple[list[Track], list[Hit], str, ModelVectors]:
        """A sonic path of `count` tracks from `start` to `end` (track references, both included).

        Intermediate steps walk the straight line between the two calibrated vectors; each takes
        the nearest unused track to its point. Each step's score is the calibrated score against
        the start (the start itself: 1). Returns ``(tracks, hits, calibration, vectors)``.
        """
        if count < 2:
            raise ParameterError(f"count must be >= 2 for a path (start and end), got {count}.")
        vec = self.vectors(backend, layer)
        cal = self.default_calibration(vec)[0]
        space = self.space(vec, "tracks", cal)
        a, z = (space.position(self.track(r).track_id) for r in (start, end))
        if a == z:
            raise ParameterError("start and end are the same track; give two different tracks.")
        count = min(count, len(space))
        A, Z = space.V[a], space.V[z]
        steps, used = [a], {a, z}
        for s in range(1, count - 1):
            t = s / (count - 1)
            p = (1 - t) * A + t * Z
            cos = space.V @ (p / max(float(np.linalg.norm(p)), 1e-12))
            steps.append(next(j for j in np.argsort(-cos, kind="stable").tolist() if j not in used))
            used.add(steps[-1])
        steps.append(z)
        scores = space.pair_scores(a, steps)
        raw = np.clip(space.R[steps] @ space.R[a], -1.0, 1.0)
        hits = [Hit(j, float(sc), float(r)) for j, sc, r in zip(steps, scores, raw)]
        hits[0] = Hit(a, 1.0, 1.0)
        return [self.track_by_id[str(space.ids[j])] for j in steps], hits, cal, vec

    def nearest_to_vector(self, x: np.ndarray, *, k: int = 10, backend: str | None = None,
                          layer: int | None = None) -> dict:
        """Artists and tracks nearest to an outside vector (an uploaded clip's), default calibration.

        Returns ``{"calibration", "artists": [neighbour], "tracks": [neighbour]}`` in the answer shapes.
        """
        vec = self.vectors(backend, layer)
        cal = self.default_calibration(vec)[0]
        out = {"calibration": cal}
        x = np.asarray(x, np.float64).reshape(1, -1)
        raw_q = x[0] / max(float(np.linalg.norm(x)), 1e-12)
        for level in ("artists", "tracks"):
            space = self.space(vec, level, cal)
            z = x if space.vector_step is None else space.vector_step.transform(x)
            q = z[0] / max(float(np.linalg.norm(z)), 1e-12)
            use_index = self.attach_index(vec, space, level, self.index_mode)
            hits = space.top(q, k=k, raw_q=raw_q, allowed=np.ones(len(space), bool), use_index=use_index)
            if level == "artists":
                out[level] = [artist_neighbour(self, int(space.ids[h.pos]), h.score, h.raw_cosine) for h in hits]
            else:
                out[level] = [track_neighbour(self, str(space.ids[h.pos]), h.score, h.raw_cosine) for h in hits]
        return out


def run_query(store: Store, query: Query, **engine_options) -> dict:
    """One query against `store` (an :class:`Engine` made for it; keep an Engine to reuse its models)."""
    return Engine(store, **engine_options).run(query)

