"""Fixtures of the enrichment tests: a fake clock, the local fake services, a small library.

Nothing here reaches the network: every client is pointed at a server on 127.0.0.1.
"""

from __future__ import annotations

import pytest
from _enrich_support import add_artist, demo_artists
from _fake_services import FakeClock, FakeServices

from soundalike.enrich import EnrichSettings
from soundalike.store import Store


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
