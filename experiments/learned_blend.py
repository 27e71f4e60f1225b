"""Learned blend weights vs every single signal and the seeds' fixed weights (issue 5).

Signals: every audio model of the database with **real** weights (random-weight backends are
never quality signals) and the descriptors, each stored output a signal of its own (musicnn
``penultimate``, ``taggram``, ``pooled``: ``experiments/embed_outputs.py``), all of one window
policy. Each signal is a track x track score in [0, 1]: a calibration (vector step, cosine,
matrix step) then the pair's percentile (``soundalike.similarity.calibrate_matrix``). The
calibrations are label-free and computed over the whole library (as the product does); which
calibration a signal uses is **chosen on the training artists only** (best same-artist mAP
among the training tracks, candidates ``--calibrations``).

Reference: same-artist track pairs. Outer validation: 5 folds by artist (seed 0,
``soundalike.metric_learning.artist_folds``). In each fold, on the training artists only:

* the calibration of each signal (above);
* ``learned``: :meth:`soundalike.hybrid.HybridScorer.fit_listwise_cv`: simplex weights by a
  listwise ranking loss (softmax cross-entropy of each track's same-artist tracks), shrunk toward
  equal weights, the shrinkage chosen by an inner 4-fold artist-disjoint CV inside the training
  artists; weights refitted on all training artists with it;
* ``learned-logistic``: pairwise logistic regression on the signals' pair scores (C = 1);
* ``best-single``: the signal with the best training mAP.

The held-out artists' tracks then query every track of the library with each system. Compared
on the same queries: every single signal (with its fold-chosen calibration), ``equal`` weights,
the seeds' blend (0.4 descriptors + 0.3 tags + 0.2 refs + 0.1 graph, renormalised over the
signals present: tags would be the genre labels (no-leak rule) and refs/graph do not exist for
this library, so it is the descriptors alone), and, in a second table, every single signal at
every candidate calibration (so no calibration choice of a single signal hides a better one).
Paired bootstrap over artists (1,000 resamples, seed 0) of learned − system.

Usage (the library, then the run that wrote experiments/results/issue5_learned_blend.*)::

    soundalike ingest ../shared/data/music --manifest ../shared/data/music/manifest.csv --db /work/cache/dev.db
    # default outputs (= soundalike embed --backend ...), the other musicnn outputs, the window sets
    python experiments/embed_outputs.py --db /work/cache/dev.db --only \\
        musicnn-msd,musicnn-mtt,musicnn-msd-vgg,musicnn-mtt-vgg,descriptors
    python experiments/embed_outputs.py --db /work/cache/dev.db          # taggram + pooled outputs
    python experiments/embed_outputs.py --db /work/cache/dev.db --window spread:10:3 --only \\
        musicnn-msd,musicnn-mtt,musicnn-msd-vgg,musicnn-mtt-vgg
    python experiments/learned_blend.py --db /work/cache/dev.db --window middle:30 --set-window spread:10:3 \\
        --out experiments/results/issue5_learned_blend.json
        [--signals a,b,...] [--calibrations none,center,zscore,nicdm,csls] [--save weights.json]

About 15 s on one core once the library is embedded (embedding: about 75 s per musicnn model
and window policy on the shared 2-core CPU, a few minutes for the descriptors).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from soundalike.hybrid import SEED_WEIGHTS, HybridScorer
from soundalike.metric_learning import artist_folds
from soundalike.metrics import paired_bootstrap, same_artist_map
from soundalike.similarity import calibrate_matrix, cosine_matrix, set_similarity, vector_calibrator
from soundalike.store import Store

CALIBRATIONS = ("none", "center", "zscore", "nicdm", "csls")
SHRINKAGES = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, float("inf"))


def signal_name(backend: str, config: dict) -> str:
    out = config.get("output")
    return backend if out in (None, "penultimate") else f"{backend}:{out}"


def _quality_models(store: Store, window: str) -> list:
    n_tracks = len(store.tracks())
    out = []
    for m in store.models():
        if m.config.get("window") != window:
            continue
        if not (m.weights_kind == "real" or (m.backend == "descriptors" and m.weights_kind == "none")):
            print(f"skipping {m.backend} ({m.weights_kind} weights): not a quality signal", file=sys.stderr)
            continue
        got = len(store.embedded_track_ids(m.model_key))
        if got != n_tracks:
            print(f"skipping {m.backend} @ {window}: {got} of {n_tracks} tracks embedded", file=sys.stderr)
            continue
        out.append(m)
    return out


def signal_sources(store: Store, window: str, set_window: str | None) -> tuple[dict, list[str], dict[str, str]]:
    """{signal: function(calibration) -> (n, n) track scores} and the track ids (sorted).

    ``window`` models give one vector per track (mean of its windows). ``set_window`` models
    (several windows per track, e.g. ``spread:10:3``) give two more signals each:
    ``NAME@WINDOW[set]`` (soft Chamfer of the two tracks' window sets) and ``NAME@WINDOW[meanstd]``
    (mean and standard deviation of the window vectors, concatenated).
    """
    tids = sorted(t.track_id for t in store.tracks())
    pos = {t: i for i, t in enumerate(tids)}
    src, kinds = {}, {}
    for m in _quality_models(store, window):
        t, X = store.track_embeddings(m.model_key)
        V = np.zeros((len(tids), X.shape[1]))
        V[[pos[x] for x in t]] = X
        name = signal_name(m.backend, m.config)
        src[name] = (lambda V: lambda cal: score_matrix(V, cal))(V)
        kinds[name] = m.weights_kind
    for m in _quality_models(store, set_window) if set_window else []:
        t, _, W = store.window_embeddings(m.model_key)
        owner = np.array([pos[x] for x in t])
        W = W.astype(np.float64)
        mean = np.zeros((len(tids), W.shape[1]))
        np.add.at(mean, owner, W)
        mean /= np.bincount(owner, minlength=len(tids))[:, None]
        sq = np.zeros_like(mean)
        np.add.at(sq, owner, (W - mean[owner]) ** 2)
        std = np.sqrt(sq / np.bincount(owner, minlength=len(tids))[:, None])
        base = f"{signal_name(m.backend, m.config)}@{set_window}"
        src[f"{base}[set]"] = (lambda W, owner: lambda cal: set_scores(W, owner, cal))(W, owner)
        src[f"{base}[meanstd]"] = (lambda V: lambda cal: score_matrix(V, cal))(np.hstack([mean, std]))
        kinds[f"{base}[set]"] = kinds[f"{base}[meanstd]"] = m.weights_kind
    return dict(sorted(src.items())), tids, kinds


def score_matrix(X: np.ndarray, calibration: str) -> np.ndarray:
    est = vector_calibrator(calibration)
    Z = X if est is None else est.fit(X).transform(X)
    return calibrate_matrix(cosine_matrix(Z), calibration)


def set_scores(W: np.ndarray, owner: np.ndarray, calibration: str) -> np.ndarray:
    """Track scores from window vectors: the calibration's vector step on windows, soft Chamfer
    between the tracks' window sets, then its matrix step and percentiles on the track matrix."""
    est = vector_calibrator(calibration)
    Z = W if est is None else est.fit(W).transform(W)
    _, S = set_similarity(cosine_matrix(Z), owner)
    return calibrate_matrix(S, calibration)


def query_ap(S: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    r = same_artist_map(S, labels)
    return {int(q): float(a) for q, a in zip(r["query"], r["ap"])}


def train_map(S: np.ndarray, labels: np.ndarray, tr: np.ndarray) -> float:
    return float(same_artist_map(S[np.ix_(tr, tr)], labels[tr])["MAP"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--window", default="middle:30")
    ap.add_argument("--set-window", default=None, help="a several-window policy (spread:10:3): window-set signals")
    ap.add_argument("--signals", default=None, help="comma-separated subset of the signals (default: all)")
    ap.add_argument("--calibrations", default=",".join(CALIBRATIONS))
    ap.add_argument("--inner-splits", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="JSON results; the markdown table goes beside it (.md)")
    ap.add_argument("--save", type=Path, default=None, help="weights learned on the whole library")
    a = ap.parse_args(argv)
    store = Store(a.db, readonly=True)
    srcs, tids, kinds = signal_sources(store, a.window, a.set_window)
    if a.signals:
        srcs = {s: srcs[s] for s in a.signals.split(",")}
    names = list(srcs)
    cals = a.calibrations.split(",")
    meta = {t.track_id: t for t in store.tracks()}
    labels = np.array([meta[t].artist_id for t in tids])
    n = len(tids)
    n_artists = len(np.unique(labels))
    print(f"signals: {names}; {n} tracks, {n_artists} artists", file=sys.stderr)
    mats = {(s, c): srcs[s](c) for s in names for c in cals}
    iu = np.triu_indices(n, k=1)
    y_all = (labels[iu[0]] == labels[iu[1]]).astype(int)
    seed_w = {s: SEED_WEIGHTS.get(s, 0.0) for s in names}
    if sum(seed_w.values()) <= 0:
        raise SystemExit(f"none of the seeds' signals ({', '.join(SEED_WEIGHTS)}) is among {names}: embed descriptors.")

    main_rows = [*names, "equal", "seeds-fixed", "best-single", "learned-logistic", "learned"]
    systems: dict[str, dict[int, float]] = {k: {} for k in main_rows}
    per_cal: dict[str, dict[int, float]] = {f"{s} [{c}]": {} for s in names for c in cals}
    folds_doc = []
    for fi, test in enumerate(artist_folds(labels, n_splits=5, seed=0)):
        tr = np.flatnonzero(~test)
        chosen = {s: max(cals, key=lambda c: (train_map(mats[s, c], labels, tr), -cals.index(c))) for s in names}
        M = {s: mats[s, chosen[s]] for s in names}
        tr_maps = {s: train_map(M[s], labels, tr) for s in names}
        best = max(names, key=lambda s: tr_maps[s])
        sc = HybridScorer(signals=tuple(names)).fit_listwise_cv(
            [M[s][np.ix_(tr, tr)] for s in names], labels[tr], shrinkages=SHRINKAGES, n_splits=a.inner_splits, seed=0)
        w = sc.weights()
        train_pair = ~test[iu[0]] & ~test[iu[1]]
        F = np.stack([M[s][iu] for s in names], axis=1)
        lg = HybridScorer(signals=tuple(names)).fit(F[train_pair], y_all[train_pair]).weights()
        folds_doc.append({"fold": fi, "test_artists": sorted(int(x) for x in np.unique(labels[test])),
                          "calibration": chosen, "train_mAP": tr_maps, "best_single": best,
                          "shrinkage": sc.shrinkage, "inner_cv_mAP": {str(k): v for k, v in sc.cv_scores_.items()},
                          "weights": w, "logistic_weights": lg})
        print(f"fold {fi}: shrinkage {sc.shrinkage}, weights {json.dumps({k: round(v, 3) for k, v in w.items()})}",
              file=sys.stderr)
        blends = {
            "learned": sum(w[s] * M[s] for s in names),
            "learned-logistic": sum(lg[s] * M[s] for s in names),
            "equal": sum(M[s] for s in names) / len(names),
            "seeds-fixed": sum(seed_w[s] * M[s] for s in names) / max(sum(seed_w.values()), 1e-12),
            "best-single": M[best],
            **{s: M[s] for s in names},
        }
        for k, S in blends.items():
            systems[k].update({q: v for q, v in query_ap(S, labels).items() if test[q]})
        for s in names:
            for c in cals:
                per_cal[f"{s} [{c}]"].update({q: v for q, v in query_ap(mats[s, c], labels).items() if test[q]})

    queries = sorted(systems["learned"])
    groups = labels[queries]
    learned = np.array([systems["learned"][q] for q in queries])

    def rows_of(table: dict[str, dict[int, float]]) -> dict[str, dict]:
        out = {}
        for k, d in table.items():
            v = np.array([d[q] for q in queries])
            out[k] = {"cv_mAP": float(v.mean())}
            if k != "learned":
                bt = paired_bootstrap(learned, v, groups=groups, n_resamples=1000, seed=0)
                out[k]["learned_minus_this"] = {"mean": bt["mean"], "low": bt["low"], "high": bt["high"]}
        return out

    rows, cal_rows = rows_of(systems), rows_of(per_cal)
    singles = [*names, "seeds-fixed"]
    gate = all(rows[k]["learned_minus_this"]["low"] > 0 for k in singles)
    gate_all_cals = gate and all(r["learned_minus_this"]["low"] > 0 for r in cal_rows.values())
    final = HybridScorer(signals=tuple(names))
    chosen_all = {s: max(cals, key=lambda c: (train_map(mats[s, c], labels, np.arange(n)), -cals.index(c))) for s in names}
    final.fit_listwise_cv([mats[s, chosen_all[s]] for s in names], labels, shrinkages=SHRINKAGES,
                          n_splits=a.inner_splits, seed=0)
    doc = {"db": str(a.db), "window": a.window, "set_window": a.set_window, "n_tracks": n, "n_artists": n_artists, "signals": names,
           "weights_kind": kinds, "calibration_candidates": cals, "shrinkages": [str(s) for s in SHRINKAGES],
           "seeds_fixed_weights_present": seed_w, "folds": folds_doc, "n_queries": len(queries),
           "results": rows, "single_signal_by_calibration": cal_rows,
           "gate_learned_beats_every_single_signal_and_seeds": gate,
           "gate_also_vs_every_calibration_of_every_signal": gate_all_cals,
           "full_library": {"calibration": chosen_all, "shrinkage": str(final.shrinkage), "weights": final.weights()}}
    # diagnostic only (not a validation figure): weights fitted without shrinkage on every artist and
    # scored on the same artists, an optimistic ceiling of what any weighting of these signals reaches
    full = [mats[s, chosen_all[s]] for s in names]
    w0 = HybridScorer(signals=tuple(names), shrinkage=0.0).fit_listwise(full, labels).coef_
    ceiling = float(same_artist_map(np.tensordot(w0, np.stack(full), axes=1), labels)["MAP"])
    best_in = max(float(same_artist_map(m, labels)["MAP"]) for m in full)
    doc["in_sample_diagnostic"] = {"blend_no_shrinkage": ceiling, "best_single": best_in, "weights": dict(zip(names, w0.tolist()))}
    if a.save:
        final.save(a.save)

    def table(rs: dict[str, dict], title: str) -> list[str]:
        lines = [f"| {title} | CV same-artist mAP | learned − system [95% CI over artists] |", "|---|---|---|"]
        for k, r in sorted(rs.items(), key=lambda kv: -kv[1]["cv_mAP"]):
            d = r.get("learned_minus_this")
            ci = f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "–"
            lines.append(f"| {k} | {r['cv_mAP']:.3f} | {ci} |")
        return lines

    cmd = "python experiments/learned_blend.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sig_lines = [f"- `{s}`: weights {kinds[s]}; calibration per fold: "
                 + ", ".join(f["calibration"][s] for f in folds_doc) for s in names]
    header = [
        "# Issue 5: learned blend vs every single signal and the seeds' fixed weights", "",
        f"`{cmd}`", "",
        f"Data: ../shared/data/music ({n} clips of 30 s, {n_artists} artists; manifest genre is a label, never a "
        "signal). Reference: same-artist track pairs. Window: "
        f"`{a.window}`" + (f"; window sets `{a.set_window}`" if a.set_window else "") + ". Signals (each a row below):",
        *sig_lines, "",
        f"Calibration per signal chosen on the training artists only among {', '.join(cals)} "
        "(then percentile scores over the library's track pairs).",
        "", "Validation: 5 folds by artist (seed 0); each held-out track queries all tracks; paired bootstrap over "
        "artists (1,000 resamples). `learned` = HybridScorer.fit_listwise_cv (listwise ranking loss on the simplex, "
        f"shrunk toward equal weights, shrinkage from {', '.join(str(x) for x in SHRINKAGES)} chosen by inner "
        f"{a.inner_splits}-fold artist CV on the training artists). `seeds-fixed` = 0.4 descriptors + 0.3 tags + "
        "0.2 refs + 0.1 graph renormalised over the signals present (tags = genre labels here, excluded by the "
        "no-leak rule; no refs/graph for this library) = descriptors alone. `best-single` = the signal with the best "
        "training mAP in each fold. `learned-logistic` = pairwise logistic regression (C = 1).", "",
    ]
    text = "\n".join([
        *table(rows, "system"), "",
        f"gate (learned beats every single signal and seeds-fixed, CI low > 0): {'MET' if gate else 'NOT MET'}",
        f"also against every signal at every calibration: {'MET' if gate_all_cals else 'NOT MET'}", "",
        *table(cal_rows, "single signal [calibration]"), "",
        "per fold (training artists only): shrinkage " + ", ".join(str(f["shrinkage"]) for f in folds_doc),
        "weights learned on the whole library (shrinkage " + str(final.shrinkage) + "): "
        + json.dumps({k: round(v, 3) for k, v in final.weights().items()}), "",
        f"In-sample diagnostic (not validation; weights fitted and scored on all 16 artists, no shrinkage): "
        f"blend {ceiling:.3f} vs best single signal {best_in:.3f}: an optimistic ceiling on what any weighting "
        "of these signals reaches here.",
    ])
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2))
        a.out.with_suffix(".md").write_text("\n".join(header) + "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
