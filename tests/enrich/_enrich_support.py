"""Helpers shared by the enrichment tests (a unique module name: every test folder has a conftest)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from soundalike.store import Store

REPO = Path(__file__).resolve().parents[2]
DEMO_MANIFEST = REPO / "demo" / "manifest.csv"


def demo_artists() -> list[str]:
    with open(DEMO_MANIFEST, newline="", encoding="utf-8") as fh:
        return list(dict.fromkeys(row["artist"] for row in csv.DictReader(fh)))


def add_artist(store: Store, name: str, *, mbid: str | None = None, n_tracks: int = 1) -> int:
    """Add `n_tracks` placeholder tracks (no audio: enrichment only needs artists)."""
    with store.transaction() as db:
        for i in range(n_tracks):
            tid = hashlib.sha256(f"{name}/{i}".encode()).hexdigest()
            store.add_track(track_id=tid, path=f"/fixture/{name}/{i}.ogg", artist=name, artist_mbid=mbid, db=db)
    return store.find_artist(name).artist_id
