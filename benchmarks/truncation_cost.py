"""What the truncation checks cost per track (``soundalike.audio_integrity``).

Writes one 4-minute track per format (WAV, FLAC, Ogg Vorbis, MP3; 44.1 kHz stereo noise + tone),
then times ``load_windows`` with the default policy (middle 30 s) with the checks on (header log,
tail probe, Ogg page scan) and with them patched out, interleaved, ``--repeats`` times each; reports medians of wall and CPU time.

Usage::

    python benchmarks/truncation_cost.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from soundalike import audio_readers
from soundalike.audio import WindowPolicy, load_windows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=240.0)
    args = ap.parse_args(argv)
    sr = 44100
    t = np.arange(int(args.seconds * sr)) / sr
    y = (0.1 * np.random.default_rng(0).standard_normal((t.size, 2)) + 0.2 * np.sin(2 * np.pi * 220 * t)[:, None])
    y = y.astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("wav", "flac", "ogg", "mp3"):
            p = Path(tmp) / f"t.{ext}"
            with sf.SoundFile(str(p), "w", sr, 2) as fh:  # in blocks: one huge Vorbis write crashes libsndfile 1.2
                for s0 in range(0, y.shape[0], sr):
                    fh.write(y[s0:s0 + sr])
            times = {"checks": [], "none": []}
            cpu = {"checks": [], "none": []}
            for _ in range(args.repeats):
                for mode in ("checks", "none"):
                    patches = [] if mode == "checks" else [
                        mock.patch.object(audio_readers, "header_truncation", lambda log: None),
                        mock.patch.object(audio_readers, "tail_truncation", lambda fh: None),
                        mock.patch.object(audio_readers, "ogg_scan", lambda path: None)]
                    for m in patches:
                        m.start()
                    t0, c0 = time.perf_counter(), time.process_time()
                    w = load_windows(p, policy=WindowPolicy())
                    times[mode].append(time.perf_counter() - t0)
                    cpu[mode].append(time.process_time() - c0)
                    for m in patches:
                        m.stop()
                    assert not w.truncated
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            medc = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
            out[ext] = {"wall_ms_with_checks": round(med["checks"], 2), "wall_ms_without": round(med["none"], 2),
                        "cpu_ms_with_checks": round(medc["checks"], 2), "cpu_ms_without": round(medc["none"], 2),
                        "extra_cpu_ms": round(medc["checks"] - medc["none"], 2)}
    print(json.dumps({"track_s": args.seconds, "policy": "middle:30", "repeats": args.repeats, "per_format": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
