"""Calibrations × profiles on a stored library: the table of issue 5.

For each stored model (backend × window policy) of the database, and for raw cosine and every
calibration: same-artist track retrieval mAP (whole library, and 5-fold validation by artist,
seed 0: vector calibrators fitted on the training artists' tracks, neighbourhood calibrators on
the library's unlabelled pairs, queries = the held-out artists' tracks against all tracks);
then per profile: artist genre P@1 / P@5 with ceiling and chance, hubness (largest
5-occurrence, skewness) and the range of scores. Also the learned LDA metric (artist-disjoint
CV) and simple ensembles.

Usage::

    python experiments/similarity_table.py --db /tmp/d5/dev.db [--out out/similarity_table.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from soundalike.metric_learning import artist_folds, cross_validate_metric
from soundalike.metrics import genre_precision_at_k, hubness, same_artist_map
from soundalike.similarity import (CALIBRATIONS, PROFILES, artist_similarity, calibrate_matrix, cosine_matrix,
                                   pair_stats, vector_calibrator)
from soundalike.store import Store


def artist_genre(tracks) -> dict[int, str | None]:
    counts: dict[int, dict[str, int]] = {}
    for t in tracks:
        c = counts.setdefault(t.artist_id, {})
        for g in t.genres:
            c[g] = c.get(g, 0) + 1
    return {a: (sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if c else None) for a, c in counts.items()}


def track_scores(X: np.ndarray, calibration: str, fit_on: np.ndarray | None = None) -> np.ndarray:
    est = vector_calibrator(calibration)
    Z = X if est is None else est.fit(X if fit_on is None else X[fit_on]).transform(X)
    return calibrate_matrix(cosine_matrix(Z), calibration)


def cv_map(X: np.ndarray, labels: np.ndarray, calibration: str, *, inductive: bool = False) -> tuple[float, list[float]]:
    """Mean over 5 artist folds (seed 0) of the held-out queries' same-artist mAP.

    Calibrators use no labels, so by default they are fitted on the whole library, as deployed
    (``inductive=False``). ``inductive=True`` fits vector calibrators on the training artists
    only; that inflates whitening (held-out tracks become outliers that cluster together), see
    the ``cv_mAP_inductive`` column.
    """
    per = []
    for test in artist_folds(labels, n_splits=5, seed=0):
        r = same_artist_map(track_scores(X, calibration, fit_on=~test if inductive else None), labels)
        q = np.asarray(r["query"], dtype=int)
        per.append(float(np.asarray(r["ap"])[test[q]].mean()))
    return float(np.mean(per)), per


def load_models(store: Store) -> dict[str, tuple[np.ndarray, list[str], dict]]:
    out = {}
    for m in store.models():
        tids, X = store.track_embeddings(m.model_key)
        if len(tids) < len(store.tracks()):  # still being embedded
            continue
        name = f"{m.backend}@{m.config.get('window', '?')}"
        out[name] = (X.astype(np.float64), tids, {"backend": m.backend, "weights_kind": m.weights_kind,
                                                  "window": m.config.get("window"), "dim": m.dim})
    return out


def ensemble(models: dict, names: list[str]) -> tuple[np.ndarray, list[str], dict]:
    """Concatenate members after centring + L2 (each member weighs the same)."""
    tids = sorted(set.intersection(*(set(models[n][1]) for n in names)))
    parts = []
    for n in names:
        X, t, meta = models[n]
        pos = {x: i for i, x in enumerate(t)}
        Xi = X[[pos[x] for x in tids]]
        est = vector_calibrator("zscore" if meta["backend"] == "descriptors" else "center")
        Z = est.fit(Xi).transform(Xi)
        parts.append(Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12))
    kinds = sorted({models[n][2]["weights_kind"] for n in names})
    return np.hstack(parts), tids, {"backend": "+".join(models[n][2]["backend"] for n in names),
                                    "weights_kind": ",".join(kinds), "window": "/".join(str(models[n][2]["window"]) for n in names)}


def measure(X: np.ndarray, tids: list[str], meta: dict, store: Store, *, lda: bool = True) -> dict:
    tracks = {t.track_id: t for t in store.tracks()}
    labels = np.array([tracks[t].artist_id for t in tids])
    genre = artist_genre(tracks.values())
    rows = []
    for cal in CALIBRATIONS:
        T = track_scores(X, cal)
        full = same_artist_map(T, labels)
        cv_mean, cv_folds = cv_map(X, labels, cal)
        cv_ind, _ = cv_map(X, labels, cal, inductive=True)
        for prof in PROFILES:
            sim = artist_similarity(X, labels, calibration=cal, profile=prof)
            g = [genre.get(int(a)) for a in sim.labels]
            p1, p5 = genre_precision_at_k(sim.score, g, k=1), genre_precision_at_k(sim.score, g, k=5)
            h = hubness(sim.score, k=5)
            rows.append({
                "calibration": cal, "profile": prof, "mAP": full["MAP"], "mAP_chance": full["chance"],
                "cv_mAP": cv_mean, "cv_folds": cv_folds, "cv_mAP_inductive": cv_ind,
                "P@1": p1["P@1"], "P@1_ceiling": p1["ceiling"], "P@1_chance": p1["chance"],
                "P@5": p5["P@5"], "P@5_ceiling": p5["ceiling"], "P@5_chance": p5["chance"],
                "hub_max5": h["max_k_occurrence"], "hub_skew5": h["skewness"],
                "score_range": pair_stats(sim.score)["range"], "raw_cosine_range": pair_stats(sim.raw_cosine)["range"],
                "raw_cosine_min": pair_stats(sim.raw_cosine)["min"], "raw_cosine_max": pair_stats(sim.raw_cosine)["max"],
            })
    out = {**meta, "n_tracks": len(tids), "n_artists": int(len(np.unique(labels))), "rows": rows}
    if lda:
        cv = cross_validate_metric(X, labels, method="lda")
        out["lda"] = {"cv_mAP": cv["mean_metric"], "cv_baseline_center": cv["mean_baseline"],
                      "folds": cv["folds"]}
    return out


def render(doc: list[dict]) -> str:
    lines = []
    for m in doc:
        lines.append(f"\n### {m['backend']} ({m['weights_kind']} weights), window {m['window']}: "
                     f"{m['n_tracks']} tracks, {m['n_artists']} artists")
        lines.append("| calibration | profile | mAP | CV mAP | CV mAP (fit on train folds) | P@1 (ceil/chance) | P@5 (ceil/chance) | hub max N5 | skew N5 | score range | raw cos [min,max] |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in m["rows"]:
            lines.append(f"| {r['calibration']} | {r['profile']} | {r['mAP']:.3f} | {r['cv_mAP']:.3f} | {r['cv_mAP_inductive']:.3f} | "
                         f"{r['P@1']:.3f} ({r['P@1_ceiling']:.2f}/{r['P@1_chance']:.2f}) | "
                         f"{r['P@5']:.3f} ({r['P@5_ceiling']:.2f}/{r['P@5_chance']:.2f}) | {r['hub_max5']} | "
                         f"{r['hub_skew5']:.2f} | {r['score_range']:.3f} | [{r['raw_cosine_min']:.3f}, {r['raw_cosine_max']:.3f}] |")
        if "lda" in m:
            lines.append(f"\nLDA metric, artist-disjoint 5-fold CV mAP {m['lda']['cv_mAP']:.3f} "
                         f"(centred cosine on the same folds {m['lda']['cv_baseline_center']:.3f}); "
                         f"mAP chance {m['rows'][0]['mAP_chance']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--ensembles", default="", help="semicolon-separated lists of model names joined by +")
    a = ap.parse_args(argv)
    store = Store(a.db, readonly=True)
    models = load_models(store)
    doc = []
    for name, (X, tids, meta) in sorted(models.items()):
        print(f"measuring {name}", file=sys.stderr)
        doc.append(measure(X, tids, meta, store))
    for ens in filter(None, a.ensembles.split(";")):
        names = ens.split("+")
        if all(n in models for n in names):
            print(f"measuring ensemble {ens}", file=sys.stderr)
            doc.append(measure(*ensemble(models, names), store))
    text = render(doc)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2, default=float))
        a.out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
