"""Each backend's default calibration, chosen by validation and saved with its fitted state.

CONTRACTS: validation = 5-fold cross-validation **by artist** (seed 0); the default has the best
mean same-artist mAP over those folds (each fold: the held-out artists' tracks query the whole
library; calibrators use no labels, so they are fitted on the library as deployed). Decided when
a model's vectors change (the CLI calls :func:`refresh_calibrators` after ``embed``/``run``;
prune and import call it too), on a capped sample of :data:`VALIDATION_MAX_TRACKS` tracks for
large libraries; ``center`` is the stated fallback where fewer than :data:`MIN_ARTISTS_WITH_PAIRS`
artists have two tracks. The chosen calibration's artist and track states are saved in the
store (``calibrators``, JSON + ``.npz`` bytes), so no query fits one.
"""

from __future__ import annotations

import logging

import numpy as np

from ..metric_learning import artist_folds
from ..metrics import same_artist_map
from ..store import Store
from .space import MATRIX_CALIBRATION_MAX_ITEMS
from .vectors import CALIBRATIONS, ModelVectors, fit_space, load_vectors, space_state

__all__ = ["refresh_calibrators", "validate_calibrations", "validation_summary", "VALIDATION_MAX_TRACKS",
           "MIN_ARTISTS_WITH_PAIRS", "FALLBACK"]

log = logging.getLogger(__name__)

#: tracks used by the validation (a seeded sample of artists with two or more tracks above it)
VALIDATION_MAX_TRACKS = 1000
#: fewer artists with two tracks than this: no validation, the fallback is used
MIN_ARTISTS_WITH_PAIRS = 10
FALLBACK = "center"


def sample_tracks(vec: ModelVectors, cap: int, seed: int = 0) -> np.ndarray:
    """Track rows for the validation: whole artists with >= 2 tracks, seeded, up to `cap` tracks."""
    labels = vec.track_artist
    uniq, counts = np.unique(labels, return_counts=True)
    paired = uniq[counts >= 2]
    if labels.size <= cap:
        return np.arange(labels.size)
    # each artist's rows found once (a stable sort by artist), not by a scan per artist
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], uniq)
    ends = np.append(bounds[1:], labels.size)
    where = dict(zip(uniq.tolist(), zip(bounds.tolist(), ends.tolist())))
    rows: list[int] = []
    for a in np.random.default_rng(seed).permutation(paired):
        lo, hi = where[a.item()]
        if len(rows) + hi - lo > cap:
            continue
        rows.extend(order[lo:hi].tolist())
    return np.sort(np.asarray(rows, int))


def validate_calibrations(vec: ModelVectors, *, calibrations=CALIBRATIONS, cap: int = VALIDATION_MAX_TRACKS) -> dict:
    """Mean same-artist mAP over 5 artist folds of each calibration (track level) on a capped sample.

    Returns
    -------
    dict   ``{"calibration", "method", "n_tracks", "n_artists", "cap", "results": {cal: {"cv_map", "folds"}}}``;
    ``calibration`` is the winner, or FALLBACK with ``method`` saying why.
    """
    rows = sample_tracks(vec, cap)
    sub = ModelVectors(vec.model, vec.layer, [vec.track_ids[i] for i in rows], vec.X[rows], vec.track_artist[rows],
                       vec.artist_names)
    labels = sub.track_artist
    uniq, counts = np.unique(labels, return_counts=True)
    n_paired = int((counts >= 2).sum())
    out = {"method": "5-fold cross-validation by artist (seed 0), mean same-artist mAP", "n_tracks": int(labels.size),
           "n_artists": int(uniq.size), "n_artists_with_two_tracks": n_paired, "cap": cap, "results": {}}
    if n_paired < MIN_ARTISTS_WITH_PAIRS:
        out.update(calibration=FALLBACK, method=f"fallback: only {n_paired} artists have two tracks "
                                                f"(validation needs {MIN_ARTISTS_WITH_PAIRS})")
        return out
    folds = artist_folds(labels, n_splits=5, seed=0)
    n_total = len(vec.track_ids)
    for cal in calibrations:
        if cal.startswith("mp-") and n_total > MATRIX_CALIBRATION_MAX_ITEMS:
            continue  # a default must serve track queries of the whole library
        score, _ = fit_space(sub, level="tracks", calibration=cal).score_matrix()
        r = same_artist_map(score, labels)
        q = np.asarray(r["query"], dtype=int)
        ap = np.asarray(r["ap"])
        per = [float(ap[test[q]].mean()) for test in folds if test[q].any()]
        out["results"][cal] = {"cv_map": round(float(np.mean(per)), 6), "folds": [round(x, 6) for x in per]}
    best = max(out["results"], key=lambda c: (out["results"][c]["cv_map"], c == FALLBACK))
    out["calibration"] = best
    return out


def refresh_calibrators(store: Store, model_key: str | None = None, *, cap: int = VALIDATION_MAX_TRACKS) -> list[dict]:
    """Choose and save the default calibration of `model_key` (every stored model when None).

    For each model (its default layer): validate, save the choice with its figures, fit and save
    the chosen calibration's artist (centroid) and track states. Returns one summary per model.
    """
    done = []
    for m in store.models():
        if model_key is not None and m.model_key != model_key:
            continue
        if not store.embedded_track_ids(m.model_key):
            continue
        vec = load_vectors(store, model_key=m.model_key)
        fp = vec.fingerprint()
        saved = store.calibration_default(m.model_key, vec.layer)
        if saved is not None and saved["fingerprint"] == fp and _states_saved(store, vec, saved["calibration"], fp):
            done.append({"backend": m.backend, "model_key": m.model_key, **saved["validation"], "unchanged": True})
            continue
        val = validate_calibrations(vec, cap=cap)
        cal = val["calibration"]
        store.put_calibration_default(m.model_key, vec.layer, cal, fingerprint=fp, validation=val)
        for level in ("artists", "tracks"):
            space = fit_space(vec, level=level, calibration=cal)
            meta, arrays = space_state(space)
            store.put_calibrator((m.model_key, vec.layer, level, cal, "centroid"), fingerprint=fp, meta=meta, arrays=arrays)
        log.info("default calibration of %s: %s (%s)", m.backend, cal, val["method"])
        done.append({"backend": m.backend, "model_key": m.model_key, **val})
    return done


def _states_saved(store: Store, vec: ModelVectors, cal: str, fp: str) -> bool:
    return all(store.calibrator((vec.model.model_key, vec.layer, lv, cal, "centroid"), fp) is not None
               for lv in ("artists", "tracks"))


def validation_summary(store: Store) -> list[dict]:
    """Per stored model: the saved default calibration and its validation figures (for ``status``)."""
    out = []
    for m in store.models():
        layer = int(m.config.get("default_layer", 0))
        saved = store.calibration_default(m.model_key, layer)
        if saved is None:
            out.append({"backend": m.backend, "model_key": m.model_key, "calibration": FALLBACK,
                        "method": "fallback: no validated default saved yet (run `soundalike embed`)", "results": {}})
            continue
        out.append({"backend": m.backend, "model_key": m.model_key, "decided": saved["decided"], **saved["validation"]})
    return out
