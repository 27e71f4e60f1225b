"""Fixtures of the enrichment tests: a fake clock, the local fake services, a small library.

Nothing here reaches the network: every client is pointed at a server on 127.0.0.1.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from _fake_services import FakeClock, FakeServices

from soundalike.enrich import EnrichSettings
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


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def services(fake_clock):
    with FakeServices(clock=fake_clock) as fs:
        yield fs


@pytest.fixture
def settings_for():
    """``settings_for(services, **overrides)``: settings pointed at the fake services."""

    def make(fs: FakeServices, **overrides) -> EnrichSettings:
        base = dict(base_urls=dict(fs.urls), lastfm_api_key=fs.lastfm_key, contact="tests@soundalike.invalid",
                    timeout_s=2.0, max_retries=3, backoff_s=1.0)
        base.update(overrides)
        return EnrichSettings().with_(**base)

    return make


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "lib.db")
    yield s
    s.close()


@pytest.fixture
def demo_store(store) -> Store:
    for name in demo_artists():
        add_artist(store, name)
    return store
