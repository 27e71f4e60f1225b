"""Peak memory of the service for hostile uploads (the bounded-decoding gate: <= 300 MB).

Makes the two hostile files from generated audio with ffmpeg (unless they exist in ``--files``):

* ``hour.webm``: one hour of Opus at 6 kbit/s (tone + pink noise), muxed to a pipe so the
  WebM carries no duration and no cues (~3 MB);
* ``hi8.flac``: 60 s of 8 channels at 384 kHz, 16 bit (a DC level with a 3 s tone: ~2.4 MB);

starts ``soundalike serve --db DB`` on 127.0.0.1, posts one small warm-up clip (5 s WAV) to
``/api/query``, then posts each file: before each, the process's peak RSS (``VmHWM``) is reset
(``/proc/PID/clear_refs``), and the peak above the RSS after the warm-up is reported with the
answer (status, duration, windows, the error). Linux only. Usage::

    python benchmarks/hostile_uploads.py --db library.db --files /tmp/hostile [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import wave
from pathlib import Path

import numpy as np


def make_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    webm, flac, warm = folder / "hour.webm", folder / "hi8.flac", folder / "warmup.wav"
    if not webm.exists():
        with open(webm, "wb") as out:  # to a pipe: the muxer cannot go back to write duration or cues
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=3600:sample_rate=48000",
                            "-f", "lavfi", "-i", "anoisesrc=d=3600:c=pink:r=48000:a=0.05",
                            "-filter_complex", "amix=inputs=2", "-c:a", "libopus", "-b:a", "6k", "-f", "webm", "pipe:1"],
                           stdout=out, check=True)
    if not flac.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "aevalsrc=exprs=0.1+if(between(t\\,28\\,31)\\,0.2*sin(2*PI*220*t)\\,0):s=384000:d=60",
                        "-filter_complex", "[0]asplit=8[a][b][c][d][e][f][g][h];"
                        "[a][b][c][d][e][f][g][h]join=inputs=8:channel_layout=7.1",
                        "-c:a", "flac", "-compression_level", "8", "-sample_fmt", "s16", str(flac)], check=True)
    if not warm.exists():
        sr = 22050
        t = np.arange(5 * sr) / sr
        y = (0.3 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2")
        with wave.open(str(warm), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes(y.tobytes())
    return {"warmup": warm, "hour.webm": webm, "hi8.flac": flac}


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM", "VmRSS")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) * 1024
    return out


def _post(port: int, path: Path, timeout: float) -> tuple[int, dict, float]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/query?k=3", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--files", type=Path, required=True, help="folder for the generated files (reused)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    files = make_files(args.files)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SOUNDALIKE_MAX_UPLOAD_BYTES": str(20 * 1024 * 1024)}
    proc = subprocess.Popen([sys.executable, "-m", "soundalike", "serve", "--db", str(args.db), "--port", str(port),
                             "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = []
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    print(proc.stderr.read().decode()[-2000:], file=sys.stderr)
                    return 1
                time.sleep(0.5)
        code, doc, dt = _post(port, files["warmup"], args.timeout)
        base = _status(proc.pid)["VmRSS"]
        print(f"warm-up: HTTP {code} in {dt:.1f} s; RSS after it {base / 2**20:.0f} MiB")
        for name in ("hour.webm", "hi8.flac"):
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            c0 = _cpu(proc.pid)
            code, doc, dt = _post(port, files[name], args.timeout)
            st = _status(proc.pid)
            row = {"file": name, "bytes": files[name].stat().st_size, "http": code, "wall_s": round(dt, 2),
                   "cpu_s": round(_cpu(proc.pid) - c0, 2),
                   "peak_above_warm_mb": round((st["VmHWM"] - base) / 1e6, 1),
                   "held_after_mb": round((st["VmRSS"] - base) / 1e6, 1),
                   "duration_s": doc.get("duration_s"), "n_windows": doc.get("n_windows"),
                   "error": doc.get("error"), "top_artist": (doc.get("artists") or [{}])[0].get("artist")}
            rows.append(row)
            print(json.dumps(row))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("load average:", os.getloadavg())
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "loadavg": os.getloadavg()}, indent=1))
    return 0


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
