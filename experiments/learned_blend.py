"""Learned blend weights vs single signals and the seeds' guessed weights (issue 5).

Signals: every fully embedded audio backend of the database (calibration ``center``) and the
descriptors (``zscore``), each as a track × track percentile score. Reference: same-artist
track pairs. 5 folds by artist (seed 0): :class:`soundalike.hybrid.HybridScorer` learns the
weights on the training artists' tracks, by direct mAP maximisation over the weight simplex
(``learned``: learning to rank) and by pairwise logistic regression (``learned-logistic``);
the held-out artists' tracks query every track with the blended score. Compared on
the same queries with every single signal and the seeds' blend (0.4 descriptors + 0.3 tags +
0.2 refs + 0.1 graph, renormalised over the signals present: here tags are the genre labels
(no-leak rule) and refs/graph do not exist for this library, so the seeds' blend is the
descriptors alone). Paired bootstrap over artists (1,000 resamples).

Usage::

    python experiments/learned_blend.py --db /tmp/d5/dev.db [--window middle:30] [--out out/blend.json]
        [--save weights.json]   # weights learned on the whole library, for the hybrid config
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
from soundalike.similarity import calibrate_matrix, cosine_matrix, vector_calibrator
from soundalike.store import Store


def signal_matrices(store: Store, window: str) -> tuple[dict[str, np.ndarray], list[str], dict[str, str]]:
    """{signal name: (n, n) track scores} over the tracks every model has."""
    models = [m for m in store.models() if m.config.get("window") == window]
    data, kinds = {}, {}
    for m in models:
        tids, X = store.track_embeddings(m.model_key)
        data[m.backend] = dict(zip(tids, X.astype(np.float64)))
        kinds[m.backend] = m.weights_kind
    n_tracks = len(store.tracks())
    data = {b: d for b, d in data.items() if len(d) == n_tracks}
    tids = sorted(set.intersection(*(set(d) for d in data.values())))
    mats = {}
    for b, d in sorted(data.items()):
        X = np.stack([d[t] for t in tids])
        cal = "zscore" if b == "descriptors" else "center"
        Z = vector_calibrator(cal).fit(X).transform(X)
        mats[b] = calibrate_matrix(cosine_matrix(Z), cal)
    return mats, tids, kinds


def fold_ap(S: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    r = same_artist_map(S, labels)
    return {int(q): float(a) for q, a in zip(r["query"], r["ap"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--window", default="middle:30")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--save", type=Path, default=None)
    a = ap.parse_args(argv)
    store = Store(a.db, readonly=True)
    mats, tids, kinds = signal_matrices(store, a.window)
    names = list(mats)
    meta = {t.track_id: t for t in store.tracks()}
    labels = np.array([meta[t].artist_id for t in tids])
    n = len(tids)
    print(f"signals: {names}; {n} tracks, {len(np.unique(labels))} artists", file=sys.stderr)
    iu = np.triu_indices(n, k=1)
    F_all = np.stack([mats[s][iu] for s in names], axis=1)
    y_all = (labels[iu[0]] == labels[iu[1]]).astype(int)
    # seeds' blend renormalised over the signals present here (descriptors only)
    seed_w = {s: SEED_WEIGHTS.get(s, 0.0) for s in names}
    systems: dict[str, dict[int, float]] = {k: {} for k in [*names, "equal", "seeds-fixed", "learned", "learned-logistic"]}
    fold_weights = []
    for test in artist_folds(labels, n_splits=5, seed=0):
        train_pair = ~test[iu[0]] & ~test[iu[1]]
        # learning to rank: weights maximising same-artist mAP among the training artists' tracks
        tr = np.flatnonzero(~test)
        sc = HybridScorer(signals=tuple(names)).fit_ranking([mats[s][np.ix_(tr, tr)] for s in names], labels[tr])
        w = sc.weights()
        lg = HybridScorer(signals=tuple(names)).fit(F_all[train_pair], y_all[train_pair]).weights()
        fold_weights.append({"ranking": w, "logistic": lg})
        blends = {
            "learned": sum(w[s] * mats[s] for s in names),
            "learned-logistic": sum(lg[s] * mats[s] for s in names),
            "equal": sum(mats[s] for s in names) / len(names),
            "seeds-fixed": sum(seed_w[s] * mats[s] for s in names) / max(sum(seed_w.values()), 1e-12),
            **{s: mats[s] for s in names},
        }
        for k, S in blends.items():
            aps = fold_ap(S, labels)
            systems[k].update({q: v for q, v in aps.items() if test[q]})
    queries = sorted(systems["learned"])
    groups = labels[queries]
    rows = {}
    for k, d in systems.items():
        v = np.array([d[q] for q in queries])
        rows[k] = {"cv_mAP": float(v.mean())}
    learned = np.array([systems["learned"][q] for q in queries])
    for k in systems:
        if k == "learned":
            continue
        other = np.array([systems[k][q] for q in queries])
        bt = paired_bootstrap(learned, other, groups=groups, n_resamples=1000, seed=0)
        rows[k]["learned_minus_this"] = {"mean": bt["mean"], "low": bt["low"], "high": bt["high"]}
    final = HybridScorer(signals=tuple(names)).fit_ranking([mats[s] for s in names], labels)
    doc = {"db": str(a.db), "window": a.window, "signals": names, "weights_kind": kinds,
           "seeds_fixed_weights_present": seed_w, "fold_weights": fold_weights, "weights_full_library": final.weights(),
           "n_queries": len(queries), "results": rows}
    if a.save:
        final.save(a.save)
    lines = ["| system | CV same-artist mAP | learned − system [95% CI over artists] |", "|---|---|---|"]
    for k, r in sorted(rows.items(), key=lambda kv: -kv[1]["cv_mAP"]):
        d = r.get("learned_minus_this")
        ci = f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "–"
        lines.append(f"| {k} | {r['cv_mAP']:.3f} | {ci} |")
    text = "\n".join(lines) + f"\n\nweights learned on the whole library: " + json.dumps(
        {k: round(v, 3) for k, v in final.weights().items()})
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2))
        a.out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
