"""Query engine latency at 1k / 10k / 100k tracks (issue 13): artist top-10, track top-10, map layout.

Clustered synthetic vectors (d=200 like musicnn-msd, 10 tracks per artist, one Gaussian cluster
per artist around 50 "genre" centres, plus a common offset as real embeddings have) are written
to a real SQLite store. Then, as `soundalike embed` does, ``refresh_calibrators`` chooses and saves
the default calibration (timed: one-time cost). Each query goes through ``Engine.run`` on a fresh
engine that loads the saved state (load time reported apart); latency is the median over
``--queries`` queries (CPU seconds beside wall). Where the engine uses the saved Faiss index
(``auto``: from 50,000 items), the same queries are asked with ``index="exact"`` and recall@10
is reported against them.

    python benchmarks/query_engine.py --sizes 1000,10000,100000 --json-out out/bench_query.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_store(path: Path, n_tracks: int, *, d: int = 200, per_artist: int = 10, seed: int = 0):
    from soundalike.store import Store

    rng = np.random.default_rng(seed)
    n_artists = n_tracks // per_artist
    genres = rng.normal(size=(50, d)) * 1.0
    centres = genres[rng.integers(0, 50, n_artists)] + 0.5 * rng.normal(size=(n_artists, d))
    offset = rng.normal(size=d) * 2.0
    store = Store(path)
    store.register_model(model_key="bench", backend="bench-vec", config={"default_layer": 0}, weights_sha256=None,
                         weights_kind="none", dim=d, n_layers=1)
    with store.transaction() as tx:
        for a in range(n_artists):
            X = (centres[a] + 1.0 * rng.normal(size=(per_artist, d)) + offset).astype(np.float32)
            for j in range(per_artist):
                tid = f"{a:08x}{j:04x}".ljust(64, "0")
                store.add_track(db=tx, track_id=tid, path=f"/bench/{a}/{j}.wav", artist=f"artist {a}",
                                title=f"t{j}", duration_s=30.0)
                store.put_embeddings(tx, track_id=tid, model_key="bench", vectors=X[j][None, None, :],
                                     starts_s=[0.0], lengths_s=[30.0])
    return store


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run_size(n: int, queries: int, tmp: Path) -> dict:
    from soundalike.query import Engine, Query, refresh_calibrators

    row: dict = {"n_tracks": n, "n_artists": n // 10}
    store, row["build_store_s"], _ = timed(lambda: build_store(tmp / f"bench{n}.db", n))
    done, row["refresh_calibrators_s"], row["refresh_calibrators_cpu_s"] = timed(lambda: refresh_calibrators(store))
    row["calibration"] = done[0]["calibration"]
    row["validation"] = {c: v["cv_map"] for c, v in done[0]["results"].items()}
    engine, row["engine_init_s"], _ = timed(lambda: Engine(store))
    vec, row["load_vectors_s"], _ = timed(lambda: engine.vectors())
    rng = np.random.default_rng(1)
    artists = [f"artist {a}" for a in rng.choice(n // 10, size=queries, replace=False)]
    tracks = [vec.track_ids[i] for i in rng.choice(n, size=queries, replace=False)]
    for level, seeds in (("artists", artists), ("tracks", tracks)):
        first = Query(artist=seeds[0]) if level == "artists" else Query(track=seeds[0])
        _, row[f"{level}_first_query_s"], _ = timed(lambda: engine.run(first))  # loads the saved state (+ index)
        wall, cpu, answers = [], [], []
        for s in seeds:
            q = Query(artist=s, k=10) if level == "artists" else Query(track=s, k=10)
            doc, w, c = timed(lambda: engine.run(q))
            wall.append(w)
            cpu.append(c)
            answers.append(doc)
        row[f"{level}_top10_median_ms"] = round(1000 * statistics.median(wall), 2)
        row[f"{level}_top10_cpu_median_ms"] = round(1000 * statistics.median(cpu), 2)
        row[f"{level}_index"] = answers[0].get("index", "exact scan")
        if "index" in answers[0]:
            exact = Engine(store, index="exact")
            rec = []
            for s, doc in zip(seeds, answers):
                q = Query(artist=s, k=10) if level == "artists" else Query(track=s, k=10)
                ref = exact.run(q)
                key = "artist_id" if level == "artists" else "track_id"
                rec.append(len({x[key] for x in doc["neighbours"]} & {x[key] for x in ref["neighbours"]}) / 10)
            row[f"{level}_recall_at_10"] = round(float(np.mean(rec)), 4)
    (_, Y, _), row["layout_s"], row["layout_cpu_s"] = timed(lambda: engine.layout())
    from soundalike.query import layout_method

    row["layout_method"] = layout_method(len(Y))
    store.close()
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            load = os.getloadavg()[0]
            row = run_size(n, args.queries, Path(tmp))
            row["load_avg_1min_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
