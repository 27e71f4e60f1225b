"""Agreement of the default main job's vectors between two source trees, on the development clips.

The speed work must not change what the default computes. This script embeds every development
clip (``../shared/data/music``, its ``manifest.csv``) with ``musicnn-msd`` and ``descriptors`` under
two source trees — ``--ref-src`` (e.g. an export of ``main`` before the change) and this
checkout — and the reference fp32 port of musicnn (``runtime="reference"``), then reports:

* musicnn: per-clip cosine of this tree's vectors to the reference tree's and to the fp32 port
  (gate: >= 0.999 on every clip), max abs difference, and same-artist mAP (calibration
  ``center``) of each (gate: within 0.005 of 0.513);
* descriptors: clips whose tempo (BPM, equal within 0.01) and key (sin, cos, mode) are equal
  (gate: >= 90 of 93), and the Pearson r of every other feature over the clips (gate: >= 0.999).

Usage::

    git archive main src | tar -x -C /tmp/ref
    python benchmarks/agreement.py --ref-src /tmp/ref/src --json-out out/agreement.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import csv, sys, numpy as np
from pathlib import Path
from threadpoolctl import threadpool_limits
import torch
torch.set_num_threads(1)
threadpool_limits(1)
from soundalike.audio import WindowPolicy, load_windows
from soundalike.backends import load_backend
dev, out, reference = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
rows = list(csv.DictReader(open(dev / "manifest.csv")))
mn = load_backend("musicnn-msd", runtime="reference" if reference else "auto")
desc = None if reference else load_backend("descriptors")
M, D = [], []
for r in rows:
    p = dev / r["path"]
    M.append(mn.embed_layers(np.stack(load_windows(p, policy=WindowPolicy(), sr=16000).clips))[0, 0])
    if desc is not None:
        D.append(desc.embed_layers(np.stack(load_windows(p, policy=WindowPolicy(), sr=22050).clips))[0, 0])
np.savez(out, musicnn=np.array(M), descriptors=np.array(D) if D else np.zeros((0, 0)))
"""


def embed(src: Path, dev: Path, out: Path, *, reference: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", CHILD, str(dev), str(out), "1" if reference else "0"], env=env, check=True)
    import numpy as np

    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-src", type=Path, required=True, help="the src/ folder of the reference tree")
    ap.add_argument("--dev", type=Path, default=REPO.parent / "shared" / "data" / "music")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    from soundalike.calibration import Centerer
    from soundalike.backends.descriptors import FEATURE_NAMES
    from soundalike.metrics import same_artist_map
    from soundalike.similarity import cosine_matrix

    artists = [r["artist"] for r in csv.DictReader(open(args.dev / "manifest.csv"))]
    with tempfile.TemporaryDirectory() as tmp:
        new = embed(REPO / "src", args.dev, Path(tmp) / "new.npz")
        old = embed(args.ref_src, args.dev, Path(tmp) / "old.npz")
        port = embed(REPO / "src", args.dev, Path(tmp) / "port.npz", reference=True)

    def cos(A, B):
        return (A * B).sum(1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)

    def map_center(X):
        return float(same_artist_map(cosine_matrix(Centerer().fit_transform(X)), artists)["MAP"])

    A, B, P = new["musicnn"], old["musicnn"], port["musicnn"]
    c_old, c_port = cos(A, B), cos(A, P)
    doc = {"n_clips": len(artists), "musicnn": {
        "cosine_to_reference_tree_min": float(c_old.min()), "cosine_to_fp32_port_min": float(c_port.min()),
        "max_abs_diff_to_reference_tree": float(np.abs(A - B).max()),
        "map_center_this_tree": map_center(A), "map_center_reference_tree": map_center(B),
        "map_center_fp32_port": map_center(P)}}
    X, Y = new["descriptors"], old["descriptors"]
    idx = {n: i for i, n in enumerate(FEATURE_NAMES)}
    tempo_eq = np.abs(X[:, idx["tempo_bpm"]] - Y[:, idx["tempo_bpm"]]) <= 0.01
    key_eq = np.all([np.abs(X[:, idx[k]] - Y[:, idx[k]]) <= 1e-6 for k in ("key_sin", "key_cos", "mode")], axis=0)
    r = {}
    for n, i in idx.items():
        if n in ("tempo_bpm", "key_sin", "key_cos", "mode"):
            continue
        x, y = X[:, i].astype(np.float64), Y[:, i].astype(np.float64)
        r[n] = 1.0 if np.array_equal(x, y) else float(np.corrcoef(x, y)[0, 1])
    doc["descriptors"] = {"tempo_and_key_equal": int((tempo_eq & key_eq).sum()), "tempo_equal": int(tempo_eq.sum()),
                          "key_equal": int(key_eq.sum()), "other_features_r_min": min(r.values()),
                          "worst_feature": min(r, key=r.get), "bit_identical": bool(np.array_equal(X, Y)),
                          "max_abs_diff": float(np.abs(X - Y).max())}
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
