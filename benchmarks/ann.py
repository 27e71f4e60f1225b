"""ANN benchmark: single-query top-10 latency and recall@10, exact vs Faiss (issue 8, part 4).

Synthetic data: ``n`` 768-d vectors from a Gaussian mixture of 1,000 components (centres
N(0, 1), within-component noise N(0, sigma^2)), cosine metric (rows L2-normalised, inner
product). Queries are fresh draws from the same mixture (not in the index). Ground truth is
exact top-10 (``NeighbourIndex(backend="exact")`` = numpy matmul). Latency is measured one query
at a time with 2 threads (``faiss.omp_set_num_threads(2)``); figures are median and p95 ms.

Usage::

    python benchmarks/ann.py --n 100000 --queries 200
    python benchmarks/ann.py --n 1000000 --methods ivf --queries 200

Prints one JSON line per method and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def mixture(n: int, d: int, *, components: int, sigma: float, seed: int) -> np.ndarray:
    """``(n, d)`` float32 rows from a Gaussian mixture, L2-normalised, generated in chunks."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((components, d), dtype=np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        lab = rng.integers(0, components, size=m)
        X[s:s + m] = centres[lab] + sigma * rng.standard_normal((m, d), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def time_single(search, Q: np.ndarray, k: int) -> tuple[np.ndarray, float, float]:
    """Search each query alone; returns (indices, median ms, p95 ms)."""
    out, ts = [], []
    search(Q[:1], k)  # warm-up
    for q in Q:
        t0 = time.perf_counter()
        idx = search(q[None, :], k)
        ts.append((time.perf_counter() - t0) * 1e3)
        out.append(idx[0])
    return np.stack(out), float(np.median(ts)), float(np.percentile(ts, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--components", type=int, default=1000)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="exact,hnsw,ivf", help="comma list of exact, hnsw, ivf, ivfpq")
    ap.add_argument("--hnsw-m", type=int, default=16)
    ap.add_argument("--ef-search", default="64,128,256")
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists (0: 4*sqrt(n))")
    ap.add_argument("--nprobe", default="8,16,32,64")
    args = ap.parse_args()

    import faiss

    from soundalike.neighbours import NeighbourIndex

    faiss.omp_set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    methods = args.methods.split(",")
    k = args.k
    t0 = time.perf_counter()
    X = mixture(args.n, args.dim, components=args.components, sigma=args.sigma, seed=0)
    Q = mixture(args.queries, args.dim, components=args.components, sigma=args.sigma, seed=1)
    gen_s = time.perf_counter() - t0
    meta = {"n": args.n, "dim": args.dim, "components": args.components, "sigma": args.sigma,
            "queries": args.queries, "threads": args.threads, "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "faiss": faiss.__version__, "gen_s": round(gen_s, 1)}
    print(json.dumps({"meta": meta}), flush=True)

    # Ground truth: exact top-k, all queries in one batch (not timed).
    exact = NeighbourIndex(X, metric="cosine", backend="exact", batch_size=64)
    _, truth = exact.search(Q, k)
    rows = []

    def report(method: str, params: str, build_s: float, idx: np.ndarray, med: float, p95: float) -> None:
        row = {"method": method, "params": params, "build_s": round(build_s, 1), "recall@10": round(recall_at_k(idx, truth), 4),
               "median_ms": round(med, 3), "p95_ms": round(p95, 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    if "exact" in methods:
        # the exact numpy path of NeighbourIndex, and faiss IndexFlatIP (BLAS brute force)
        idx, med, p95 = time_single(lambda q, kk: exact.search(q, kk)[1], Q, k)
        report("exact (numpy, NeighbourIndex)", "-", 0.0, idx, med, p95)
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(X)
        b = time.perf_counter() - t0
        idx, med, p95 = time_single(lambda q, kk: flat.search(q, kk)[1], Q, k)
        report("exact (faiss IndexFlatIP)", "-", b, idx, med, p95)
        del flat
    del exact

    if "hnsw" in methods:
        t0 = time.perf_counter()
        hn = NeighbourIndex(X, metric="cosine", backend="faiss", hnsw_m=args.hnsw_m, ef_search=64)
        b = time.perf_counter() - t0
        for ef in [int(e) for e in args.ef_search.split(",")]:
            hn._index.hnsw.efSearch = ef
            idx, med, p95 = time_single(lambda q, kk: hn.search(q, kk)[1], Q, k)
            report("faiss HNSW (NeighbourIndex)", f"M={args.hnsw_m} efSearch={ef}", b, idx, med, p95)
        del hn

    for kind in [m for m in methods if m in ("ivf", "ivfpq")]:
        nlist = args.nlist or int(4 * np.sqrt(args.n))
        t0 = time.perf_counter()
        quant = faiss.IndexFlatIP(args.dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quant, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            params = f"nlist={nlist}"
        else:
            index = faiss.IndexIVFPQ(quant, args.dim, nlist, 96, 8, faiss.METRIC_INNER_PRODUCT)
            params = f"nlist={nlist} PQ96x8"
        ntrain = min(args.n, max(40 * nlist, 50_000))
        sample = X[np.random.default_rng(2).choice(args.n, ntrain, replace=False)]
        index.train(sample)
        index.add(X)
        b = time.perf_counter() - t0
        for nprobe in [int(p) for p in args.nprobe.split(",")]:
            index.nprobe = nprobe
            idx, med, p95 = time_single(lambda q, kk: index.search(q, kk)[1], Q, k)
            report(f"faiss {'IVF-Flat' if kind == 'ivf' else 'IVF-PQ'}", f"{params} nprobe={nprobe}", b, idx, med, p95)
        del index

    print()
    print(f"n={args.n} d={args.dim} mixture of {args.components} (sigma={args.sigma}), {args.queries} single queries, "
          f"{args.threads} threads, k={k}")
    print("| method | params | build s | recall@10 | median ms | p95 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['params']} | {r['build_s']} | {r['recall@10']:.3f} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} |")


if __name__ == "__main__":
    main()
