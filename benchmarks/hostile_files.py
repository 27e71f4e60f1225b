"""Kinds given to hostile and damaged files: truncated Ogg, bytes that are not audio.

Cuts ``--n`` real Ogg files (from ``--source``, sorted, spread over the list) at fractions from
60 % to 99 % of their bytes, writes ``--n-junk`` files of random bytes or text named like audio,
and classifies each one exactly as an analysis worker does (``load_windows`` with the default
policy, middle 30 s): ``ok``, ``truncated`` (embedded from what decodes, reported) or the failure
kind. Run it once with the code before a change and once after (``PYTHONPATH``), e.g.::

    PYTHONPATH=/tmp/old29/src python benchmarks/hostile_files.py --source ../shared/data/music --json old.json
    PYTHONPATH=src python benchmarks/hostile_files.py --source ../shared/data/music --json new.json

Each row also gives the duration found and, for the Ogg files, the duration the complete pages
hold (the last complete page's granule position), so a wrong duration shows.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np


def _ogg_complete_duration(data: bytes) -> float | None:
    """Seconds held by the complete pages of an Ogg Vorbis/Opus stream (granule of the last one)."""
    pos, last_granule, rate, pre_skip = 0, None, None, 0
    while pos + 27 <= len(data) and data[pos:pos + 4] == b"OggS":
        nseg = data[pos + 26]
        if pos + 27 + nseg > len(data):
            break
        body = sum(data[pos + 27:pos + 27 + nseg])
        end = pos + 27 + nseg + body
        if end > len(data):
            break
        payload = data[pos + 27 + nseg:end]
        if rate is None and payload[:7] == b"\x01vorbis":
            rate = int.from_bytes(payload[12:16], "little")
        elif rate is None and payload[:8] == b"OpusHead":
            rate, pre_skip = 48000, int.from_bytes(payload[10:12], "little")
        granule = int.from_bytes(data[pos + 6:pos + 14], "little", signed=True)
        if granule >= 0:
            last_granule = granule
        pos = end
    if rate is None or last_granule is None:
        return None
    return max(0, last_granule - pre_skip) / rate


def classify(path: Path) -> tuple[str, float | None, str]:
    from soundalike.audio import WindowPolicy, load_windows
    from soundalike.errors import AudioError

    try:
        w = load_windows(path, policy=WindowPolicy())
    except AudioError as exc:
        return exc.kind, None, str(exc)[:160]
    except Exception as exc:  # noqa: BLE001 - a crash is a result here, shown as such
        return f"crash:{type(exc).__name__}", None, str(exc)[:160]
    return ("truncated" if w.truncated else "ok"), w.duration_s, w.truncated[:160]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="folder searched for *.ogg files")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--n-junk", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    sources = sorted(args.source.rglob("*.ogg"))
    if len(sources) < args.n:
        print(f"only {len(sources)} Ogg files under {args.source}", file=sys.stderr)
        return 1
    step = len(sources) / args.n
    picked = [sources[int(i * step)] for i in range(args.n)]
    fractions = np.linspace(0.60, 0.99, args.n)
    rng = random.Random(args.seed)
    rng.shuffle(picked)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (src, frac) in enumerate(zip(picked, fractions)):
            data = src.read_bytes()
            cut = data[: int(len(data) * frac)]
            p = Path(tmp) / f"cut{i:02d}.ogg"
            p.write_bytes(cut)
            kind, dur, why = classify(p)
            rows.append({"file": src.name, "kept": round(float(frac), 4), "kind": kind, "duration_s": dur,
                         "complete_pages_s": _ogg_complete_duration(cut), "why": why})
        exts = [".mp3", ".ogg", ".flac", ".wav", ".m4a", ".opus", ".webm", ".aiff"]
        for i in range(args.n_junk):
            ext = exts[(i // 2) % len(exts)]
            p = Path(tmp) / f"junk{i:02d}{ext}"
            if i % 2:
                p.write_bytes(rng.randbytes(rng.randint(200, 200_000)))
                what = "random bytes"
            else:
                p.write_text("Not audio at all. " * rng.randint(10, 5000))
                what = "text"
            kind, dur, why = classify(p)
            rows.append({"file": p.name, "kept": None, "kind": kind, "duration_s": dur, "complete_pages_s": None,
                         "why": f"{what}: {why}"})
    for r in rows:
        d = "-" if r["duration_s"] is None else f"{r['duration_s']:.2f}"
        c = "-" if r["complete_pages_s"] is None else f"{r['complete_pages_s']:.2f}"
        k = "-" if r["kept"] is None else f"{100 * r['kept']:.1f}%"
        print(f"{r['file'][:44]:44s} {k:>7s} {r['kind']:12s} dur {d:>10s} pages {c:>8s}  {r['why'][:90]}")
    cut_kinds = collections.Counter(r["kind"] for r in rows if r["kept"] is not None)
    junk_kinds = collections.Counter(r["kind"] for r in rows if r["kept"] is None)
    print("truncated Ogg by kind:", dict(cut_kinds))
    print("junk named like audio by kind:", dict(junk_kinds))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cut_kinds": cut_kinds, "junk_kinds": junk_kinds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
