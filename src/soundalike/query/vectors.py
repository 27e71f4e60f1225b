"""Stored vectors of one model and the calibrated spaces built from them.

``load_vectors`` reads one model's track vectors (mean over windows) with their artists;
``fit_space`` builds the :class:`~soundalike.query.space.CalibratedSpace` of one level
(``artists`` or ``tracks``), calibration and profile — counted in :data:`FIT_COUNT`, so a test
can check that a saved calibrator spares every query a fit; ``space_from_state`` rebuilds the
same space from a saved state without fitting.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..calibration import Centerer, Whitener, ZScorer
from ..errors import ParameterError
from ..similarity import artist_profiles, l2_normalize, set_similarity
from ..store import ModelInfo, Store
from .space import CalibratedSpace

__all__ = [
    "CALIBRATIONS",
    "PROFILES",
    "LEVELS",
    "FIT_COUNT",
    "ModelVectors",
    "pick_model",
    "load_vectors",
    "vector_step",
    "fit_space",
    "space_state",
    "space_from_state",
]

CALIBRATIONS = ("none", "center", "zscore", "whiten", "mp-empirical", "mp-gaussian", "nicdm", "csls")
PROFILES = ("centroid", "set")
LEVELS = ("artists", "tracks")
#: how many spaces were fitted in this process (tests count fits)
FIT_COUNT = {"n": 0}


@dataclass
class ModelVectors:
    """Track vectors of one stored model and layer, with artist labels and names.

    Attributes
    ----------
    model : ModelInfo
    layer : int
    track_ids : list of str [n_tracks]
    X : np.ndarray [shape=(n_tracks, dim)]   one vector per track (mean over its windows)
    track_artist : np.ndarray [shape=(n_tracks,)]   artist id of each track
    artist_names : dict[int, str]
    """

    model: ModelInfo
    layer: int
    track_ids: list[str]
    X: np.ndarray
    track_artist: np.ndarray
    artist_names: dict[int, str]

    def fingerprint(self) -> str:
        """sha256 of the track ids, their artists and vectors: a saved state matches only these."""
        h = hashlib.sha256("\n".join(self.track_ids).encode())
        h.update(np.ascontiguousarray(self.track_artist, np.int64).tobytes())
        h.update(np.ascontiguousarray(self.X, np.float32).tobytes())
        return h.hexdigest()


def pick_model(store: Store, backend: str | None = None) -> ModelInfo:
    """The stored model for `backend` (the one with most vectors), or the best available one."""
    models = store.models()
    if not models:
        raise ParameterError(f"{store.path} has no embeddings yet; run `soundalike embed` (or `soundalike run`) first.")
    if backend is not None:
        ms = store.models_for_backend(backend)
        if not ms:
            have = ", ".join(sorted({m.backend for m in models}))
            raise ParameterError(f"No embeddings of backend {backend!r} in {store.path}; it has: {have}. "
                                 f"Ask one of those with --backend, or list backends with `soundalike backends`.")
        return ([m for m in ms if not _auxiliary(m)] or ms)[0]
    # Prefer real weights, then DSP descriptors, then random weights; then most vectors.
    rank = {"real": 0, "none": 1, "random": 2}
    counts = {m.model_key: len(store.embedded_track_ids(m.model_key)) for m in models}
    return sorted(models, key=lambda m: (_auxiliary(m), rank.get(m.weights_kind, 3), -counts[m.model_key], m.backend))[0]


def _auxiliary(model: ModelInfo) -> bool:
    """A model row kept for explanations, not for similarity: musicnn's taggram (issue 17 reasons)."""
    return isinstance(model.config, dict) and model.config.get("output") == "taggram"


def load_vectors(store: Store, *, backend: str | None = None, layer: int | None = None,
                 model_key: str | None = None) -> ModelVectors:
    """Load one model's track vectors with their artists (`model_key`, or the best model of `backend`)."""
    model = store.model(model_key) if model_key is not None else pick_model(store, backend)
    if layer is None:
        layer = int(model.config.get("default_layer", 0))
    if not 0 <= layer < max(model.n_layers, 1):
        raise ParameterError(f"--layer {layer}: {model.backend} has layers 0..{model.n_layers - 1}.")
    tids, X = store.track_embeddings(model.model_key, layer=layer)
    if not tids:
        raise ParameterError(f"No stored vectors for {model.backend} in {store.path}; run `soundalike embed`.")
    tracks = {t.track_id: t for t in store.tracks()}
    keep = [i for i, t in enumerate(tids) if t in tracks]
    tids = [tids[i] for i in keep]
    X = X[keep]
    artist_of = np.array([tracks[t].artist_id for t in tids], dtype=np.int64)
    names = {t.artist_id: t.artist_name or t.artist for t in tracks.values()}  # the artist, not a credit
    return ModelVectors(model, layer, tids, X, artist_of, names)


def vector_step(calibration: str):
    """The (unfitted) vector calibrator applied before cosine for `calibration`, or None.

    Neighbourhood calibrations (mp-*, nicdm, csls) work on centred cosine.
    """
    if calibration not in CALIBRATIONS:
        raise ParameterError(f"calibration {calibration!r} is not valid; choose one of {', '.join(CALIBRATIONS)}.")
    if calibration == "none":
        return None
    return {"zscore": ZScorer, "whiten": Whitener}.get(calibration, Centerer)()


def _check(level: str, calibration: str, profile: str) -> None:
    if level not in LEVELS:
        raise ParameterError(f"level {level!r} is not valid; choose one of {', '.join(LEVELS)}.")
    vector_step(calibration)
    if profile not in PROFILES:
        raise ParameterError(f"profile {profile!r} is not valid; choose one of {', '.join(PROFILES)}.")


def _inputs(vec: ModelVectors, level: str, profile: str, step) -> dict:
    """The vectors (or matrices) a space of this level is built over, after the vector step."""
    X = np.asarray(vec.X, np.float64)
    Z = X if step is None else step.transform(X)
    if level == "tracks":
        return {"ids": vec.track_ids, "V": l2_normalize(Z), "R": l2_normalize(X)}
    if profile == "set":
        Zn, Xn = l2_normalize(Z), l2_normalize(X)
        uniq, S = set_similarity(np.clip(Zn @ Zn.T, -1, 1), vec.track_artist)
        _, S_raw = set_similarity(np.clip(Xn @ Xn.T, -1, 1), vec.track_artist)
        return {"ids": uniq, "S": S, "S_raw": S_raw}
    uniq, P = artist_profiles(Z, vec.track_artist)
    _, P_raw = artist_profiles(X, vec.track_artist)
    return {"ids": uniq, "V": l2_normalize(P), "R": l2_normalize(P_raw)}


def fit_space(vec: ModelVectors, *, level: str, calibration: str, profile: str = "centroid") -> CalibratedSpace:
    """Fit the calibrated space of one level of `vec` (the vector step, radii, table)."""
    _check(level, calibration, profile)
    FIT_COUNT["n"] += 1
    step = vector_step(calibration)
    if step is not None:
        step.fit(np.asarray(vec.X, np.float64))
    space = CalibratedSpace.fit(calibration=calibration, **_inputs(vec, level, profile, step))
    space.vector_step = step
    return space


# --- saved state (JSON + npz bytes, no pickle) ------------------------------------------------
_STEP_ARRAYS = {"Centerer": ("mean_",), "ZScorer": ("mean_", "scale_"), "Whitener": ("mean_", "scale_", "components_")}


def space_state(space: CalibratedSpace) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` that :func:`space_from_state` turns back into the same space."""
    step = getattr(space, "vector_step", None)
    meta = {"calibration": space.calibration, "step": type(step).__name__ if step is not None else None,
            "step_params": step.get_params() if step is not None else None, "table_exact": space.table_exact,
            "mp": space.mp.method if space.mp is not None else None}
    arrays = {"table": np.asarray(space.table)}
    if step is not None:
        arrays.update({f"step_{a}": np.asarray(getattr(step, a)) for a in _STEP_ARRAYS[type(step).__name__]})
    if space.radius is not None:
        arrays["radius"] = np.asarray(space.radius)
    if space.mp is not None:
        arrays.update({f"mp_{a}": np.asarray(getattr(space.mp, a)) for a in ("D_", "mu_", "sd_")})
    return meta, arrays


def space_from_state(vec: ModelVectors, meta: dict, arrays: dict[str, np.ndarray], *, level: str,
                     profile: str = "centroid") -> CalibratedSpace:
    """The space of `vec` with the saved calibrated state (nothing is fitted)."""
    from ..calibration import MutualProximity

    step = None
    if meta.get("step"):
        step = {"Centerer": Centerer, "ZScorer": ZScorer, "Whitener": Whitener}[meta["step"]](**(meta.get("step_params") or {}))
        for a in _STEP_ARRAYS[meta["step"]]:
            setattr(step, a, arrays[f"step_{a}"])
        step.n_features_in_ = vec.X.shape[1]
    space = CalibratedSpace(calibration=meta["calibration"], **_inputs(vec, level, profile, step))
    space.vector_step = step
    space.table = arrays["table"]
    space.table_exact = bool(meta.get("table_exact", True))
    space.radius = arrays.get("radius")
    if meta.get("mp"):
        mp = MutualProximity(method=meta["mp"])
        mp.D_, mp.mu_, mp.sd_ = arrays["mp_D_"], arrays["mp_mu_"], arrays["mp_sd_"]
        mp.n_items_ = len(space)
        space.mp = mp
    return space
