"""Export the enrichment signals as the hybrid's CSV files (header row, UTF-8):

- ``refs.csv``: ``artist,similar_artist,rank_or_score`` (score in (0, 1], directed)
- ``graph.csv``: ``artist_a,artist_b,kind,weight``
- ``tags.csv``: ``artist,tag,weight``

Artists are written by their library names; reference-list entries outside the library are
kept by name (as music-map-style lists are), so the files can be merged with hand-made ones.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import ParameterError
from ..store import Store
from .signals import signal_inputs

__all__ = ["export_csv"]


def export_csv(store: Store, out_dir: str | os.PathLike, *, include_outside: bool = True, **kwargs) -> dict[str, Path]:
    """Write ``refs.csv``, ``graph.csv`` and ``tags.csv`` into `out_dir`; return their paths.

    Extra keyword arguments go to :func:`signal_inputs`.
    """
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"Cannot create the export folder {out}: {exc.strerror}; pass another --export.") from None
    sig = signal_inputs(store, include_outside=include_outside, **kwargs)
    names = {a.artist_id: a.name for a in store.artists()}

    def name(x: int | str) -> str:
        return x if isinstance(x, str) else names.get(x, str(x))

    paths = {"refs": out / "refs.csv", "graph": out / "graph.csv", "tags": out / "tags.csv"}
    with open(paths["refs"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["artist", "similar_artist", "rank_or_score"])
        for a, b, s in sig["refs"]:
            w.writerow([name(a), name(b), f"{s:.6g}"])
    with open(paths["graph"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["artist_a", "artist_b", "kind", "weight"])
        for a, b, kind, weight in sig["graph"]:
            w.writerow([name(a), name(b), kind, f"{weight:.6g}"])
    with open(paths["tags"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["artist", "tag", "weight"])
        for aid in sorted(sig["tags"], key=lambda i: name(i).casefold()):
            for tag, weight in sig["tags"][aid].items():
                w.writerow([name(aid), tag, f"{weight:.6g}"])
    return paths
