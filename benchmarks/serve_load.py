"""Load benchmark of ``soundalike serve``: similar-artist queries for random artists.

Builds a synthetic store (default 10,000 artists × 2 tracks of 64-d clustered random vectors,
``weights_kind='random'``: the numbers say nothing about quality), starts ``soundalike serve`` pinned
to one core with ``taskset``, and drives it from another core on loopback — with ``wrk`` when it is
installed (Lua script picking a random artist per request), else an asyncio httpx client in a
separate process. Queries: ``GET /api/artists/{id}/similar?k=10`` with the default calibration;
the service caches its models, never responses.

Usage::

    python benchmarks/serve_load.py [--artists 10000] [--duration 20] [--connections 4] [--out out/bench]

Target (issue 7): >= 200 req/s with p99 < 50 ms and 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_synthetic_store(db: Path, *, n_artists: int, tracks_per_artist: int = 2, dim: int = 64,
                          n_genres: int = 20, seed: int = 0) -> None:
    """A store of random vectors: artists around genre centres, tracks around their artist."""
    from soundalike.store import Store

    rng = np.random.default_rng(seed)
    genres = rng.standard_normal((n_genres, dim)) * 2.0
    with Store(db) as store:
        key = "synthetic-" + hashlib.sha256(f"{dim}-{seed}".encode()).hexdigest()[:12]
        store.register_model(model_key=key, backend="synthetic", config={"window": "middle:30", "default_layer": 0},
                             weights_sha256=None, weights_kind="random", dim=dim, n_layers=1)
        with store.transaction() as tx:
            for a in range(n_artists):
                g = a % n_genres
                centre = genres[g] + rng.standard_normal(dim)
                for t in range(tracks_per_artist):
                    tid = hashlib.sha256(f"artist{a}-track{t}".encode()).hexdigest()
                    store.add_track(track_id=tid, path=f"/synthetic/artist{a:05d}/track{t}.wav", artist=f"Artist {a:05d}",
                                    title=f"Track {t}", duration_s=30.0, genres=[f"genre{g:02d}"], db=tx)
                    v = (centre + 0.5 * rng.standard_normal(dim)).astype(np.float32)
                    store.put_embeddings(tx, track_id=tid, model_key=key, vectors=v[None, None, :])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 600.0) -> float:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server at {url} did not come up within {timeout} s")


WRK_LUA = """
math.randomseed(%(seed)d)
local ids = {%(ids)s}
request = function()
  return wrk.format("GET", "/api/artists/" .. ids[math.random(#ids)] .. "/similar?k=10")
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors_status\\": %%d, \\"errors_connect\\": %%d, \\"errors_read\\": %%d, \\"errors_timeout\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(url: str, ids: list[int], *, duration: int, connections: int, core: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_LUA % {"seed": 0, "ids": ",".join(map(str, ids))})
        script = fh.name
    cmd = ["taskset", "-c", core, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    doc = json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))
    errors = doc["errors_status"] + doc["errors_connect"] + doc["errors_read"] + doc["errors_timeout"]
    return {"tool": "wrk", "requests": doc["requests"], "errors": errors,
            "req_per_s": doc["requests"] / (doc["duration_us"] / 1e6),
            "p50_ms": doc["p50_us"] / 1e3, "p99_ms": doc["p99_us"] / 1e3, "max_ms": doc["max_us"] / 1e3}


async def _httpx_load(url: str, ids: list[int], duration: float, connections: int) -> dict:
    import httpx

    lat: list[float] = []
    errors = 0
    rng = random.Random(0)
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker():
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.get(f"/api/artists/{rng.choice(ids)}/similar", params={"k": 10})
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                lat.append(time.perf_counter() - t0)

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t_start
    a = np.array(lat) * 1e3
    return {"tool": "httpx-asyncio", "requests": len(lat), "errors": errors, "req_per_s": len(lat) / elapsed,
            "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artists", type=int, default=10_000)
    ap.add_argument("--duration", type=int, default=20, help="seconds of load")
    ap.add_argument("--connections", type=int, default=4, help="concurrent keep-alive connections (closed loop)")
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--db", type=Path, help="reuse/build the synthetic store here")
    ap.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    ap.add_argument("--out", type=Path, help="write serve_load.json here")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="soundalike-load-"))
    db = args.db or work / "synthetic.db"
    if not db.exists():
        t0 = time.perf_counter()
        build_synthetic_store(db, n_artists=args.artists)
        print(f"built {db} ({args.artists} artists) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    from soundalike.store import Store

    with Store(db, readonly=True) as s:
        ids = [a.artist_id for a in s.artists()]
        n_tracks = s.counts()["tracks"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SOUNDALIKE_SUBSONIC_USER": "", "SOUNDALIKE_API_KEY": ""}
    exe = shutil.which("soundalike") or sys.executable
    cmd = ([exe] if exe.endswith("soundalike") else [exe, "-m", "soundalike"]) + ["serve", "--db", str(db), "--port", str(port)]
    server = subprocess.Popen(["taskset", "-c", args.server_core, *cmd], env=env, start_new_session=True)
    try:
        startup = wait_up(url)
        print(f"server up in {startup:.1f} s (pinned to core {args.server_core})", file=sys.stderr)
        import httpx

        health = httpx.get(url + "/api/health").json()
        for a in ids[:50]:  # warm-up, and a check that answers are right-sized
            doc = httpx.get(f"{url}/api/artists/{a}/similar", params={"k": 10}).json()
            assert len(doc["neighbours"]) == 10, doc
        use_wrk = args.tool == "wrk" or (args.tool == "auto" and shutil.which("wrk"))
        if use_wrk:
            res = run_wrk(url, ids, duration=args.duration, connections=args.connections, core=args.client_core)
        else:
            code = (f"import asyncio, json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import serve_load as m; "
                    f"print(json.dumps(asyncio.run(m._httpx_load({url!r}, {ids!r}, {args.duration}, {args.connections}))))")
            out = subprocess.run(["taskset", "-c", args.client_core, sys.executable, "-c", code], capture_output=True,
                                 text=True, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    report = {
        "query": "GET /api/artists/{random id}/similar?k=10", "calibration": health["default_calibration"],
        "n_artists": len(ids), "n_tracks": n_tracks, "data": "synthetic clustered random vectors, 64-d",
        "weights_kind": "random", "server_cores": args.server_core, "connections": args.connections,
        "duration_s": args.duration, "startup_s": round(startup, 2), **{k: (round(v, 3) if isinstance(v, float) else v)
                                                                       for k, v in res.items()},
        "target": {"req_per_s": 200, "p99_ms": 50, "errors": 0},
    }
    report["meets_target"] = report["req_per_s"] >= 200 and report["p99_ms"] < 50 and report["errors"] == 0
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
