"""Ray scaling benchmark: clips/s of the local pipeline vs 1 and 2 Ray workers, in one run.

The library is ingested once into a base database; every configuration embeds a fresh copy of
it (nothing cached), so each figure includes decoding, resampling, the model and the store
writes. Ray figures exclude the cluster start but their model-load time is reported apart.

Usage::

    python benchmarks/ray_scaling.py --music ../shared/data/music --manifest ../shared/data/music/manifest.csv \
        --backend descriptors --backend musicnn-msd
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--music", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "music"))
    ap.add_argument("--manifest", default=None)
    ap.add_argument("--backend", action="append", default=None)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--limit", type=int, default=0, help="embed only the first N tracks (0: all)")
    args = ap.parse_args()
    backends = args.backend or ["descriptors"]

    import ray

    from soundalike.audio import WindowPolicy
    from soundalike.backends.registry import load_backend
    from soundalike.distributed import RayEmbedder
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    manifest = args.manifest or (str(Path(args.music) / "manifest.csv") if (Path(args.music) / "manifest.csv").is_file() else None)
    tmp = Path(tempfile.mkdtemp(prefix="soundalike-raybench-"))
    base = tmp / "base.db"
    with Store(base) as s:
        t0 = time.perf_counter()
        ingest(s, args.music, manifest=manifest)
        tids = [t.track_id for t in s.tracks()]
        ingest_s = time.perf_counter() - t0
    if args.limit:
        tids = tids[:args.limit]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
            "cpus": os.cpu_count(), "tracks": len(tids), "music": args.music, "ray": ray.__version__,
            "ingest_s": round(ingest_s, 1), "window": WindowPolicy().key()}
    print(json.dumps({"meta": meta}), flush=True)
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    rows = []

    def fresh(name: str) -> Store:
        p = tmp / f"{name}.db"
        shutil.copy(base, p)
        return Store(p)

    for name in backends:
        model = load_backend(name)
        kind = model.weights_kind
        for jobs in (1, 2):
            with fresh(f"{name}-local{jobs}") as s:
                t0 = time.perf_counter()
                summ = embed(s, [model], jobs=jobs, batch_size=args.batch_size, track_ids=tids)
                dt = time.perf_counter() - t0
            rows.append({"backend": name, "weights": kind, "config": f"local pipeline (jobs={jobs})", "load_s": 0.0,
                         "embed_s": round(dt, 1), "clips": summ.done, "clips_per_s": round(summ.done / dt, 2)})
            print(json.dumps(rows[-1]), flush=True)
        for w in [int(x) for x in args.workers.split(",")]:
            with fresh(f"{name}-ray{w}") as s:
                t0 = time.perf_counter()
                with RayEmbedder(name, workers=w, batch_size=args.batch_size) as pool:
                    load = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    summ = pool.run(s, track_ids=tids)
                    dt = time.perf_counter() - t1
            rows.append({"backend": name, "weights": kind, "config": f"Ray, {w} worker(s)", "load_s": round(load, 1),
                         "embed_s": round(dt, 1), "clips": summ.done, "clips_per_s": round(summ.done / dt, 2)})
            print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{meta['date']}, {meta['cpus']} CPUs ({meta['machine']}), {meta['tracks']} clips from {args.music}, "
          f"window {meta['window']}, batch {args.batch_size}, Ray {meta['ray']}")
    print("| backend | weights | configuration | worker start s | embed s | clips | clips/s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['weights']} | {r['config']} | {r['load_s']} | {r['embed_s']} | {r['clips']} | {r['clips_per_s']} |")


if __name__ == "__main__":
    main()
