"""Embed the other outputs of the musicnn backends into a library (issue 5's extra audio signals).

``soundalike embed`` stores each backend's default output (musicnn: the penultimate layer). The
other outputs are backend options (CONTRACTS.md: options, not new names) and get their own model
key: ``taggram`` (50 tag probabilities) for all four musicnn models, ``pooled`` (753-d mean of
the mid-end feature map) for the two musicnn (not VGG) models. All real weights.

Usage::

    python experiments/embed_outputs.py --db /work/cache/dev.db [--window middle:30]
        [--only musicnn-msd:taggram,musicnn-mtt:pooled,descriptors]   # NAME[:OUTPUT], default all six
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soundalike.audio import WindowPolicy
from soundalike.backends.registry import load_backend
from soundalike.pipeline import embed
from soundalike.store import Store

OUTPUTS = [
    ("musicnn-msd", "taggram"), ("musicnn-mtt", "taggram"),
    ("musicnn-msd", "pooled"), ("musicnn-mtt", "pooled"),
    ("musicnn-msd-vgg", "taggram"), ("musicnn-mtt-vgg", "taggram"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--window", default="middle:30")
    ap.add_argument("--only", default=None, help="comma-separated backend:output pairs")
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args(argv)
    todo = OUTPUTS if not a.only else [(x.split(":", 1) + [None])[:2] for x in a.only.split(",")]
    # NAME alone = the backend's default output, the same model key as `soundalike embed --backend NAME`
    store = Store(a.db)
    policy = WindowPolicy.parse(a.window)
    for name, output in todo:
        backend = load_backend(name, device="cpu", **({"output": output} if output else {}))
        s = embed(store, [backend], policy=policy, jobs=a.jobs)
        print(f"{name} output={output} window={a.window}: {s.as_json()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
