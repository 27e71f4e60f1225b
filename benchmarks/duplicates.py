"""Duplicate-recording detector on constructed cases (issue 15): precision / recall table.

Positives: the same recording as another file — transcoded (MP3 96 and 320 kbit/s, FLAC, Opus
96 kbit/s), re-tagged (new title "(Remastered)" and album, so new bytes), ±6 dB, equalised (bass
+6 dB, treble −6 dB), resampled (16 kHz and 44.1 kHz), trimmed (2 s off the start, 3 s off the
end) or faded (1 s in, 3 s out). Hard negatives: every pair of *different* recordings by the same
artist, and every pair from the same source package (same game: same mastering and brief), with
the subset whose tempo (±3 BPM) and key agree in the ``descriptors`` measurements reported apart.
Data: ``../shared/data/music`` (30 s clips of real, freely licensed tracks); originals are all of
its tracks, variants are made from a seeded subset with ffmpeg.

Every pair among the originals and variants is scored by `soundalike.recordings.DuplicateDetector`
from the stored vectors (mean over windows), durations and titles — the same call playlists use.

Usage::

    python benchmarks/duplicates.py [--backend descriptors] [--backend musicnn-msd] [--originals 30]
        [--work out/bench-duplicates] [--results benchmarks/RESULTS.md]

Gate (issue 15): recall >= 0.9 at precision >= 0.95.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MUSIC = REPO.parent / "shared" / "data" / "music"

#: variant name -> (ffmpeg output options, file suffix); None = a copy with new tags (mutagen)
VARIANTS: dict[str, tuple[list[str], str] | None] = {
    "mp3-96k": (["-c:a", "libmp3lame", "-b:a", "96k"], ".mp3"),
    "mp3-320k": (["-c:a", "libmp3lame", "-b:a", "320k"], ".mp3"),
    "flac": (["-c:a", "flac"], ".flac"),
    "opus-96k": (["-c:a", "libopus", "-b:a", "96k"], ".opus"),
    "retagged": None,
    "gain+6dB": (["-af", "volume=6dB", "-c:a", "flac"], ".flac"),
    "gain-6dB": (["-af", "volume=-6dB", "-c:a", "flac"], ".flac"),
    "equalised": (["-af", "bass=g=6:f=120,treble=g=-6:f=6000", "-c:a", "flac"], ".flac"),
    "resampled-16k": (["-ar", "16000", "-c:a", "flac"], ".flac"),
    "resampled-44k": (["-ar", "44100", "-c:a", "flac"], ".flac"),
    "trimmed-start-2s": (["-ss", "2", "-c:a", "flac"], ".flac"),
    "trimmed-end-3s": (["-t", "27", "-c:a", "flac"], ".flac"),
    "faded-1s-3s": (["-af", "afade=t=in:d=1,afade=t=out:st=27:d=3", "-c:a", "flac"], ".flac"),
}


def _manifest_rows() -> list[dict]:
    with open(MUSIC / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def prepare(work: Path, n_originals: int, backends: list[str]) -> Path:
    """Make the variants, a manifest, and a store with every backend's vectors (cached in `work`)."""
    from soundalike.backends import load_backend
    from soundalike.pipeline import embed, ingest
    from soundalike.store import Store

    rows = _manifest_rows()
    rng = np.random.default_rng(0)
    picked = sorted(rng.choice(len(rows), size=min(n_originals, len(rows)), replace=False).tolist())
    files = work / "files"
    out_rows = []
    for i, r in enumerate(rows):
        src = MUSIC / r["path"]
        base = {"artist": r["artist"], "title": r["title"], "album": r["source_package"], "genre": r["genre"]}
        out_rows.append({**base, "path": str(src), "track_id": r["track_id"]})
        if i not in picked:
            continue
        for name, spec in VARIANTS.items():
            tid = f"{r['track_id']}~{name}"
            if spec is None:
                dst = files / f"{tid}.ogg"
                if not dst.exists():
                    from mutagen.oggvorbis import OggVorbis

                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, dst)
                    tags = OggVorbis(str(dst))
                    tags["title"], tags["album"] = r["title"] + " (Remastered)", "Best Of"
                    tags.save()
                out_rows.append({**base, "title": r["title"] + " (Remastered)", "album": "Best Of",
                                 "path": str(dst), "track_id": tid})
                continue
            opts, suffix = spec
            dst = files / f"{tid}{suffix}"
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *opts, str(dst)], check=True)
            out_rows.append({**base, "path": str(dst), "track_id": tid})
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "artist", "title", "album", "genre", "track_id"])
        w.writeheader()
        w.writerows(out_rows)
    db = work / "library.db"
    with Store(db) as store:
        ingest(store, work, manifest=manifest)
        for b in backends:
            t0, c0 = time.perf_counter(), time.process_time()
            embed(store, [load_backend(b)])
            print(f"embedded {b}: {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU",
                  file=sys.stderr)
    return db


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", action="append", default=None)
    ap.add_argument("--originals", type=int, default=30)
    ap.add_argument("--work", type=Path, default=REPO / "out" / "bench-duplicates")
    ap.add_argument("--results", type=Path, default=None, help="append the table to this Markdown file")
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args(argv)
    backends = args.backend or ["descriptors"]
    args.work.mkdir(parents=True, exist_ok=True)
    db = prepare(args.work, args.originals, backends)
    if args.prepare_only:
        return
    from duplicates_eval import evaluate_and_report  # noqa: E402  (second half, below)

    evaluate_and_report(db, backends, args)


if __name__ == "__main__":
    main()
