"""Load benchmark of ``soundalike serve`` on a synthetic store (issue 26: bounded cost, p99 from the first second).

Builds a synthetic store (default 10,000 artists × 10 tracks = 100,000 tracks of 200-d clustered
random vectors, ``weights_kind='random'``: the numbers say nothing about quality; no audio is
analysed), starts ``soundalike serve`` **cold** (no saved Faiss index: it is built in the
background during warm-up) with Subsonic credentials and an API key set, pinned to one core with
``taskset``, and drives it from a client process pinned to another core, on loopback:

1. **Open-loop load** from the moment the server answers: ``--rate`` requests/s (default 200) for
   ``--duration`` s (default 60), a third each of artist queries (``/api/artists/{id}/similar``),
   track queries (``/api/tracks/{id}/similar``) and Subsonic queries (``getSimilarSongs2``,
   ``getArtistInfo2``, ``getSong``, rotating). Requests are sent on schedule whatever the answers
   (no coordinated omission); latency counts from the scheduled time. Reported: p50/p99/max,
   the p99 of each second, errors, and the client's own CPU time.
2. **Unknown references**: sequential GETs of unknown 128-character track ids (hex and letters),
   of an unknown ``"Artist - Title"`` and of ``" - " × 85`` (255 characters) as a seed.

Usage::

    python benchmarks/serve_load.py [--tracks 100000] [--rate 200] [--duration 60] [--db PATH] [--out DIR]

Gates (issue 26): unknown 128-character id ≤ 50 ms; p99 < 50 ms from the first second, 0 errors.
The machine's load average is recorded before and after: the development machine is shared.
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
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

USER, PASSWORD, API_KEY = "bench", "bench-password", "bench-api-key"


def build_synthetic_store(db: Path, *, n_tracks: int, per_artist: int = 10, dim: int = 200, n_genres: int = 20,
                          seed: int = 0) -> None:
    """A store of random vectors (no audio): artists around genre centres, tracks around their artist.

    Then the calibrations are chosen and saved as ``run`` does (no Faiss index: the service's
    warm-up builds it, or ``soundalike index`` does beforehand).
    """
    from soundalike.store import Store

    rng = np.random.default_rng(seed)
    genres = rng.standard_normal((n_genres, dim)) * 2.0
    n_artists = -(-n_tracks // per_artist)
    with Store(db) as store:
        key = "synthetic-" + hashlib.sha256(f"{dim}-{seed}".encode()).hexdigest()[:12]
        store.register_model(model_key=key, backend="synthetic", config={"window": "middle:30", "default_layer": 0},
                             weights_sha256=None, weights_kind="random", dim=dim, n_layers=1)
        i = 0
        for start in range(0, n_artists, 1000):  # one transaction per 1,000 artists
            with store.transaction() as tx:
                for a in range(start, min(start + 1000, n_artists)):
                    g = a % n_genres
                    centre = genres[g] + rng.standard_normal(dim)
                    V = (centre + 0.5 * rng.standard_normal((per_artist, dim))).astype(np.float32)
                    for t in range(per_artist):
                        if i >= n_tracks:
                            break
                        tid = hashlib.sha256(f"artist{a}-track{t}".encode()).hexdigest()
                        store.add_track(track_id=tid, path=f"/synthetic/artist{a:05d}/track{t}.wav",
                                        artist=f"Artist {a:05d}", title=f"Track {t}", album=f"Album {a % 3}",
                                        duration_s=30.0, genres=[f"genre{g:02d}"], db=tx)
                        store.put_embeddings(tx, track_id=tid, model_key=key, vectors=V[t][None, None, :])
                        i += 1
        prepare_store(store)


def prepare_store(store) -> None:
    """What the end of ``soundalike run`` leaves: the default calibration chosen and its states saved."""
    from soundalike.query import refresh_calibrators

    refresh_calibrators(store)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 900.0) -> float:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up within {timeout} s")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the client (runs in its own process, pinned to its own core) ---------------------------------
def _requests(ids: dict, n: int, seed: int = 0) -> list[tuple[str, str, dict]]:
    """``(kind, path, params)`` of the load: artist, track and Subsonic queries in turn."""
    rng = random.Random(seed)
    sub = ["getSimilarSongs2", "getArtistInfo2", "getSong"]
    out = []
    for i in range(n):
        kind = ("artist", "track", "subsonic")[i % 3]
        if kind == "artist":
            out.append((kind, f"/api/artists/{rng.choice(ids['artists'])}/similar", {"k": 10}))
        elif kind == "track":
            out.append((kind, f"/api/tracks/{rng.choice(ids['tracks'])}/similar", {"k": 10}))
        else:
            ep = sub[(i // 3) % 3]
            ident = rng.choice(ids["artists"]) if ep == "getArtistInfo2" else rng.choice(ids["tracks"])
            out.append((kind, f"/rest/{ep}", {"id": ident, "count": 10, "apiKey": API_KEY, "f": "json"}))
    return out


async def _open_loop(url: str, ids: dict, rate: float, duration: float, connections: int = 32) -> dict:
    """Requests due at ``i / rate`` s, sent by `connections` keep-alive workers as they come free.

    A request waits in an O(1) queue when every connection is busy; its latency counts from the
    time it was due, so queueing behind a slow server is measured (no coordinated omission).
    """
    import httpx

    plan = _requests(ids, int(rate * duration))
    lat = np.full(len(plan), np.nan)
    status = np.zeros(len(plan), np.int32)
    queue: asyncio.Queue = asyncio.Queue()
    cpu0 = time.process_time()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers={"X-API-Key": API_KEY}) as client:
        t0 = time.perf_counter() + 0.05

        async def worker() -> None:
            while True:
                i = await queue.get()
                if i is None:
                    return
                _, path, params = plan[i]
                if time.perf_counter() - (t0 + i / rate) > 30:  # hopelessly late: counted, not sent (bounded run)
                    status[i], lat[i] = -2, 30.0
                    continue
                try:
                    r = await client.get(path, params=params)
                    status[i] = r.status_code
                    if r.status_code == 200 and path.startswith("/rest/") and b'"status":"ok"' not in r.content:
                        status[i] = 299  # a Subsonic failed envelope counts as an error
                except httpx.HTTPError:
                    status[i] = -1
                lat[i] = time.perf_counter() - (t0 + i / rate)

        workers = [asyncio.create_task(worker()) for _ in range(connections)]
        for i in range(len(plan)):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(i)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ms = lat * 1e3
    second = (np.arange(len(plan)) / rate).astype(int)
    per_second = [float(np.percentile(ms[second == s], 99)) for s in range(int(duration))]
    kinds = np.array([k for k, _, _ in plan])
    by_kind = {k: {"p50_ms": round(float(np.percentile(ms[kinds == k], 50)), 2),
                   "p99_ms": round(float(np.percentile(ms[kinds == k], 99)), 2)} for k in ("artist", "track", "subsonic")}
    errors = int((status != 200).sum())
    return {"requests": len(plan), "errors": errors, "error_statuses": sorted({int(s) for s in status if s != 200}),
            "req_per_s": round(len(plan) / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
            "p99_first_second_ms": round(per_second[0], 2), "p99_worst_second_ms": round(max(per_second), 2),
            "p99_per_second_ms": [round(v, 1) for v in per_second], "by_kind": by_kind,
            "client_cpu_s": round(cpu, 2), "client_cpu_share_of_one_core": round(cpu / elapsed, 3)}


def _unknown_refs(url: str, ids: dict, repeats: int) -> dict:
    import httpx

    rng = random.Random(1)
    tid = ids["tracks"][0]
    cases = {
        "unknown_128_hex_id": lambda: ("/api/tracks/" + "".join(rng.choice("0123456789abcdef") for _ in range(128)), {}),
        "unknown_128_char_id": lambda: ("/api/tracks/" + "".join(rng.choice(string.ascii_letters) for _ in range(128)), {}),
        "unknown_artist_title": lambda: (f"/api/tracks/{tid}/similar",
                                         {"seed": f"Artist {rng.randrange(10**5):05d} - Trakc {rng.randrange(10)}x"}),
        "seed_dash_x85": lambda: (f"/api/tracks/{tid}/similar", {"seed": " - " * 85}),
    }
    out = {}
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
        for name, make in cases.items():
            lat, codes = [], set()
            for _ in range(repeats):
                path, params = make()
                t = time.perf_counter()
                r = c.get(path, params=params)
                lat.append((time.perf_counter() - t) * 1e3)
                codes.add(r.status_code)
            a = np.array(lat)
            out[name] = {"n": repeats, "statuses": sorted(codes), "median_ms": round(float(np.median(a)), 2),
                         "p95_ms": round(float(np.percentile(a, 95)), 2), "max_ms": round(float(a.max()), 2)}
        t = time.perf_counter()
        r = c.get(f"/api/tracks/{tid}/similar", params={"seed": " - " * 4000})  # the 11-14 s case
        out["seed_dash_x4000"] = {"status": r.status_code, "ms": round((time.perf_counter() - t) * 1e3, 2)}
    return out


def _cpu_per_request(url: str, ids: dict, pid: int, n: int) -> dict:
    """Server CPU milliseconds per request of each kind, sent one at a time (independent of the machine's load)."""
    import httpx

    plan = _requests(ids, 3 * n, seed=2)
    out = {}
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
        for kind in ("artist", "track", "subsonic"):
            reqs = [(p, q) for k, p, q in plan if k == kind]
            c0 = _cpu_s(pid)
            for path, params in reqs:
                c.get(path, params=params)
            out[kind] = round((_cpu_s(pid) - c0) / len(reqs) * 1e3, 2)
        c0 = _cpu_s(pid)
        for i in range(n):
            c.get("/api/tracks/" + hashlib.sha256(str(i).encode()).hexdigest() * 2)  # unknown 128 hex
        out["unknown_128_hex_id"] = round((_cpu_s(pid) - c0) / n * 1e3, 2)
        c0 = _cpu_s(pid)
        for i in range(n):
            c.get("/api/health")  # the HTTP stack alone (no library work): the floor of every request
        out["health_baseline"] = round((_cpu_s(pid) - c0) / n * 1e3, 2)
    return out


def client_main(url: str, ids_file: str, rate: float, duration: float, repeats: int) -> None:
    ids = json.loads(Path(ids_file).read_text())
    res = {"load": asyncio.run(_open_loop(url, ids, rate, duration))}
    res["unknown_references"] = _unknown_refs(url, ids, repeats)
    print("JSON " + json.dumps(res))


# --- the driver ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--repeats", type=int, default=40, help="requests per unknown-reference case")
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--db", type=Path, help="reuse/build the synthetic store here")
    ap.add_argument("--warm-index", action="store_true", help="keep a saved Faiss index (default: cold start)")
    ap.add_argument("--out", type=Path, help="write serve_load.json here")
    ap.add_argument("--client", nargs=5, metavar=("URL", "IDS", "RATE", "DURATION", "REPEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        url, ids_file, rate, duration, repeats = args.client
        client_main(url, ids_file, float(rate), float(duration), int(repeats))
        return 0

    work = Path(tempfile.mkdtemp(prefix="soundalike-load-"))
    db = args.db or work / "synthetic.db"
    build_s = None
    if not db.exists():
        t0 = time.perf_counter()
        build_synthetic_store(db, n_tracks=args.tracks)
        build_s = round(time.perf_counter() - t0, 1)
        print(f"built {db} ({args.tracks} tracks) in {build_s} s", file=sys.stderr)
    from soundalike.neighbours import index_dir
    from soundalike.store import Store

    if not args.warm_index:
        shutil.rmtree(index_dir(db), ignore_errors=True)  # cold: the index is built during warm-up
    with Store(db, readonly=True) as s:
        ids = {"artists": [a.artist_id for a in s.artists()], "tracks": [t.track_id for t in s.tracks()]}
    ids_file = work / "ids.json"
    ids_file.write_text(json.dumps(ids))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SOUNDALIKE_SUBSONIC_USER": USER, "SOUNDALIKE_SUBSONIC_PASSWORD": PASSWORD,
           "SOUNDALIKE_API_KEY": API_KEY, "SOUNDALIKE_RELOAD_S": "0", "OMP_NUM_THREADS": "1"}
    exe = shutil.which("soundalike")
    cmd = ([exe] if exe else [sys.executable, "-m", "soundalike"]) + ["serve", "--db", str(db), "--port", str(port)]
    load_before = os.getloadavg()
    server_log = open(work / "server.log", "w")
    t_start = time.monotonic()
    server = subprocess.Popen(["taskset", "-c", args.server_core, *cmd], env=env, start_new_session=True,
                              stdout=server_log, stderr=subprocess.STDOUT)
    try:
        startup = wait_up(url)
        print(f"server up after {startup:.1f} s; load for {args.duration:g} s at {args.rate:g}/s", file=sys.stderr)
        cpu0 = _cpu_s(server.pid)
        client = subprocess.run(["taskset", "-c", args.client_core, sys.executable, __file__, "--client", url,
                                 str(ids_file), str(args.rate), str(args.duration), str(args.repeats)],
                                capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        server_cpu = _cpu_s(server.pid) - cpu0
        if client.returncode != 0:
            raise RuntimeError(client.stderr[-3000:])
        res = json.loads(next(line[5:] for line in client.stdout.splitlines() if line.startswith("JSON ")))
        print("load done; server CPU per request", file=sys.stderr)
        res["server_cpu_per_request"] = _cpu_per_request(url, ids, server.pid, args.repeats * 5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server_log.close()
    log_text = (work / "server.log").read_text()
    index_ready = "track index ready" in log_text
    load = res["load"]
    unknown = res["unknown_references"]
    report = {
        "data": f"synthetic store: {len(ids['tracks'])} tracks, {len(ids['artists'])} artists, 200-d clustered random "
                "vectors (weights_kind 'random': says nothing about quality), no audio",
        "server": f"soundalike serve, credentials set (Subsonic user + API key), pinned to core {args.server_core}; "
                  "cold start (no saved Faiss index)" if not args.warm_index else "warm index",
        "client": f"httpx asyncio, open loop, its own process pinned to core {args.client_core}",
        "store_build_s": build_s, "startup_s": round(startup, 2), "since_spawn_s": round(time.monotonic() - t_start, 1),
        "index_built_during_run": index_ready, "server_cpu_s_during_client": round(server_cpu, 2),
        "load": load, "unknown_references": unknown, "server_cpu_ms_per_request": res["server_cpu_per_request"],
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "gates": {"unknown_128_char_id_ms_le": 50, "p99_ms_lt": 50, "errors": 0, "rate": args.rate},
    }
    worst_unknown = max(unknown["unknown_128_hex_id"]["p95_ms"], unknown["unknown_128_char_id"]["p95_ms"])
    report["meets_gates"] = {
        "unknown_128_char_id (p95)": worst_unknown <= 50,
        "p99_from_first_second": load["p99_worst_second_ms"] < 50,
        "p99_overall": load["p99_ms"] < 50,
        "no_errors": load["errors"] == 0,
        "rate_held": load["req_per_s"] >= 0.98 * args.rate,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)  # the store too, unless --db put it elsewhere
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
