"""Soak: random ``kill -9`` during ``soundalike run``, then a paced load on the service.

Part 1 (kills). A synthetic library (default 300 WAVs of 2 s, 30 artists) is analysed once
cleanly, then ``soundalike run`` is started again and again on a second database and killed
with SIGKILL after a random delay (uniform in 0.3 s .. the clean run's wall time) until
``--kills`` kills have landed; a run that finishes before its kill completes a cycle (its store
is compared with the clean one and a fresh database starts the next cycle). After every kill:
the processes of the killed command's tree still alive after 5 s (found through an environment
tag in /proc, so re-parented ones count), their memory, and ``PRAGMA integrity_check``. At the
end the last database is finished and compared with the clean run vector for vector
(``rtol=1e-5, atol=1e-6``). ``--src DIR`` runs another source tree (e.g. an old checkout, to
measure what it leaves behind; its leftovers are killed afterwards).

Part 2 (paced load). A synthetic store of ``--tracks`` tracks (default 100,000: 10,000 artists x
10 tracks, 64-d clustered random vectors, ``weights_kind='random'`` -- cost only, never quality)
served by ``soundalike serve`` (pinned to one core); an open-loop client on the other core sends
``--rate`` requests/s for ``--duration`` s, a third each of ``/api/artists/{id}/similar``,
``/api/tracks/{id}/similar`` and Subsonic ``getSimilarSongs2``; latency runs from each request's
scheduled time (queueing included), a non-200 answer or a Subsonic ``failed`` status is an error.

Usage::

    python benchmarks/soak.py [--kills 20] [--files 300] [--tracks 100000] [--rate 200] [--duration 60]
                              [--skip-kills] [--skip-load] [--src DIR] [--out out/soak]

Target (issue 19): 0 processes left behind; p99 < 50 ms and no error at 100k tracks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TAG = "SOUNDALIKE_TEST_TREE"


# --- process accounting -------------------------------------------------------------------
def tagged(tag: str) -> list[dict]:
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] in ("Z", "X"):
                continue
            found.append({"pid": int(entry), "rss_mb": int(stat[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20,
                          "cmd": Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")[:90].decode(errors="replace")})
        except (OSError, IndexError, ValueError):
            continue
    return found


def system_snapshot() -> dict:
    mem = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    n = sum(1 for e in os.listdir("/proc") if e.isdigit())
    return {"processes": n, "mem_available_mb": int(mem["MemAvailable"].split()[0]) // 1024,
            "load_1min": os.getloadavg()[0]}


def _count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return 0
    try:
        return int(con.execute(sql).fetchone()[0] or 0)
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def _rows(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {tuple(r[:4]): np.frombuffer(r[4], "<f4") for r in
                con.execute("SELECT track_id, model_key, window, layer, vector FROM embeddings")}
    finally:
        con.close()


def _integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def _same_as(db: Path, clean: Path) -> bool:
    a, b = _rows(db), _rows(clean)
    if a.keys() != b.keys():
        return False
    tables = all(_count(db, f"SELECT COUNT(*) FROM {t}") == _count(clean, f"SELECT COUNT(*) FROM {t}")
                 for t in ("tracks", "artists", "embeddings", "windows"))
    return tables and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


# --- part 1: kills ------------------------------------------------------------------------
def write_library(root: Path, n: int, seconds: float = 3.0, sr: int = 22050) -> None:
    import soundfile as sf

    for i in range(n):
        p = root / f"Artist {i % 30:02d}" / f"track {i:03d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * sr)) / sr
        y = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * (110 + 7 * (i % 30)) * t)
        sf.write(str(p), y.astype(np.float32), sr)


def _stage(db: Path, runs_before: int) -> str:
    if _count(db, f"SELECT COUNT(*) FROM runs WHERE run_id > {runs_before} AND finished IS NOT NULL"):
        return "report"
    if _count(db, "SELECT COUNT(*) FROM embeddings"):
        return "embed"
    if _count(db, f"SELECT COUNT(*) FROM runs WHERE run_id > {runs_before}"):
        return "ingest"
    return "start-up"


def kills(args: argparse.Namespace, work: Path) -> dict:
    lib = work / "lib"
    write_library(lib, args.files, seconds=args.seconds)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_CACHE_DIR": str(work / "numba")}
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())

    def cmd(db: Path) -> list[str]:
        return [sys.executable, "-m", "soundalike", "run", str(lib), "--db", str(db), "--backend", "descriptors",
                "--jobs", str(args.jobs), "--out", str(work / "out")]

    warm = work / "warm"  # fills numba's cache first, so the clean run's time is a warm run's
    write_library(warm, 3, seconds=args.seconds)
    subprocess.run(cmd(work / "warm.db")[:4] + [str(warm)] + cmd(work / "warm.db")[5:], env={**env, TAG: "warm"},
                   check=True, capture_output=True)
    clean = work / "clean.db"
    t0 = time.monotonic()
    subprocess.run(cmd(clean), env={**env, TAG: "clean"}, check=True, capture_output=True)
    clean_s = time.monotonic() - t0
    print(f"clean run: {clean_s:.1f} s", file=sys.stderr)

    before = system_snapshot()
    rng = random.Random(args.seed)
    log, cycles, cycle_db = [], [], work / "killed-0.db"
    leftovers: list[dict] = []
    while len(log) < args.kills:
        tag = uuid.uuid4().hex
        runs_before = _count(cycle_db, "SELECT MAX(run_id) FROM runs")
        delay = rng.uniform(0.3, clean_s)
        proc = subprocess.Popen(cmd(cycle_db), env={**env, TAG: tag}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is not None:  # finished before the kill: this cycle is complete
            same = _same_as(cycle_db, clean)
            cycles.append({"db": cycle_db.name, "runs": runs_before + 1, "equal_to_clean": same,
                           "integrity": _integrity(cycle_db)})
            print(f"cycle {len(cycles)} complete: equal to clean run: {same}", file=sys.stderr)
            cycle_db = work / f"killed-{len(cycles)}.db"
            continue
        stage = _stage(cycle_db, runs_before)
        tree = tagged(tag)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t_kill = time.monotonic()
        left = tagged(tag)
        while left and time.monotonic() - t_kill < 5.0:
            time.sleep(0.05)
            left = tagged(tag)
        gone_s = time.monotonic() - t_kill
        leftovers += left
        entry = {"kill": len(log) + 1, "after_s": round(delay, 2), "stage": stage, "tree_before": len(tree),
                 "tree_rss_mb": round(sum(p["rss_mb"] for p in tree), 1), "left_after_5s": len(left),
                 "left_rss_mb": round(sum(p["rss_mb"] for p in left), 1), "gone_after_s": round(gone_s, 2),
                 "integrity": _integrity(cycle_db)}
        log.append(entry)
        print(json.dumps(entry), file=sys.stderr)
    # finish the last cycle and compare
    subprocess.run(cmd(cycle_db), env={**env, TAG: "final"}, check=True, capture_output=True)
    cycles.append({"db": cycle_db.name, "equal_to_clean": _same_as(cycle_db, clean), "integrity": _integrity(cycle_db)})
    after = system_snapshot()
    for p in leftovers:  # an old source tree leaves processes behind: stop exactly those
        try:
            os.kill(p["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    stages: dict[str, int] = {}
    for e in log:
        stages[e["stage"]] = stages.get(e["stage"], 0) + 1
    return {
        "source": str(args.src or "this checkout"), "files": args.files, "jobs": args.jobs, "backend": "descriptors",
        "clean_run_s": round(clean_s, 1), "kills": len(log), "kills_by_stage": stages,
        "integrity_ok": sum(e["integrity"] == "ok" for e in log),
        "processes_in_tree_at_kill_max": max(e["tree_before"] for e in log),
        "left_behind_processes": sum(e["left_after_5s"] for e in log),
        "left_behind_rss_mb": round(sum(e["left_rss_mb"] for e in log), 1),
        "max_gone_after_s": max(e["gone_after_s"] for e in log if not e["left_after_5s"]) if any(
            not e["left_after_5s"] for e in log) else None,
        "cycles": cycles, "system_before": before, "system_after": after, "log": log,
    }


# --- part 2: paced load -------------------------------------------------------------------
async def _paced(url: str, plan: list[str], rate: float, connections: int) -> dict:
    import httpx

    lat, errors, kinds_err = [], 0, {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        t0 = time.perf_counter() + 0.2

        async def one(i: int, path: str) -> None:
            nonlocal errors
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                r = await client.get(path)
                bad = r.status_code != 200 or (path.startswith("/rest/") and '"status":"ok"' not in r.text.replace(" ", ""))
            except httpx.HTTPError:
                bad = True
            lat.append(time.perf_counter() - scheduled)
            if bad:
                errors += 1
                kind = path.split("?")[0].rsplit("/", 1)[-1]
                kinds_err[kind] = kinds_err.get(kind, 0) + 1

        await asyncio.gather(*(one(i, p) for i, p in enumerate(plan)))
        elapsed = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {"requests": len(lat), "errors": errors, "errors_by_endpoint": kinds_err, "achieved_req_per_s": len(lat) / elapsed,
            "p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def load(args: argparse.Namespace, work: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from serve_load import build_synthetic_store, free_port, wait_up

    db = args.db or work / "synthetic-100k.db"
    n_artists = args.tracks // 10
    if not db.exists():
        t0 = time.perf_counter()
        build_synthetic_store(db, n_artists=n_artists, tracks_per_artist=10)
        print(f"built {db} ({args.tracks} tracks) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    from soundalike.store import Store

    with Store(db, readonly=True) as s:
        artist_ids = [a.artist_id for a in s.artists()]
        track_ids = [t.track_id for t in s.tracks()]
    port, key = free_port(), "soak-key"
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SOUNDALIKE_API_KEY": key, "SOUNDALIKE_SUBSONIC_USER": ""}
    server = subprocess.Popen(["taskset", "-c", args.server_core, sys.executable, "-m", "soundalike", "serve", "--db",
                               str(db), "--port", str(port)], env=env, start_new_session=True)
    rng = random.Random(args.seed)
    n = int(args.rate * args.duration)
    plan = []
    for i in range(n):
        k = i % 3
        if k == 0:
            plan.append(f"/api/artists/{rng.choice(artist_ids)}/similar?k=10")
        elif k == 1:
            plan.append(f"/api/tracks/{rng.choice(track_ids)}/similar?k=10")
        else:
            plan.append(f"/rest/getSimilarSongs2?id={rng.choice(track_ids)}&count=10&apiKey={key}&f=json")
    try:
        startup = wait_up(url)
        import httpx

        for p in plan[:60]:  # warm-up (first use of each model), and a check that answers are right
            r = httpx.get(url + p, timeout=120)
            assert r.status_code == 200, (p, r.text[:300])
        code = (f"import asyncio, json, sys; sys.path.insert(0, {str(HERE)!r}); import soak; "
                f"print(json.dumps(asyncio.run(soak._paced({url!r}, {plan!r}, {args.rate}, {args.connections}))))")
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
            fh.write(code)
        before = system_snapshot()
        out = subprocess.run(["taskset", "-c", args.client_core, sys.executable, fh.name], capture_output=True, text=True,
                             check=True).stdout
        os.unlink(fh.name)
        res = json.loads(out.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return {"n_tracks": len(track_ids), "n_artists": len(artist_ids), "data": "synthetic clustered random vectors, 64-d",
            "weights_kind": "random", "rate_req_per_s": args.rate, "duration_s": args.duration,
            "mix": "1/3 /api/artists/{id}/similar, 1/3 /api/tracks/{id}/similar, 1/3 /rest/getSimilarSongs2",
            "server_core": args.server_core, "client_core": args.client_core, "startup_s": round(startup, 1),
            "load_1min_at_start": before["load_1min"], **{k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()},
            "target": {"p99_ms": 50, "errors": 0}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each synthetic track")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--src", type=Path, help="source tree to run instead of the installed soundalike")
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--db", type=Path, help="reuse/build the synthetic store of the load part here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-kills", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--out", type=Path, help="write soak.json here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="soundalike-soak-"))
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    try:
        if not args.skip_kills:
            report["kills"] = kills(args, work)
        if not args.skip_load:
            report["load"] = load(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
