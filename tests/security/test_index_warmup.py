"""Attack 5: the track index of a large library is built during warm-up in the background; until it
is ready queries use exact search, so no request waits for it."""

from __future__ import annotations

import threading

import pytest


@pytest.mark.requires_import("faiss")
def test_queries_use_exact_search_until_the_index_is_ready(sec_library, monkeypatch):
    import soundalike.serve.library_state as ls
    from soundalike.query import Query
    from soundalike.query.engine import Engine
    from soundalike.serve import Settings

    import soundalike.query.engine as engine_module

    monkeypatch.setattr(ls, "FAISS_MIN_ITEMS", 2)  # a "large" library: the index is wanted
    monkeypatch.setattr(engine_module, "FAISS_MIN_ITEMS", 2)
    monkeypatch.setenv("SOUNDALIKE_INDEX", "auto")
    release, started = threading.Event(), threading.Event()
    real_build = Engine._build_index

    def slow_build(self, vec, space, level):
        started.set()
        assert release.wait(30)
        return real_build(self, vec, space, level)

    monkeypatch.setattr(Engine, "_build_index", slow_build)
    state = ls.LibraryState(Settings(db=sec_library["db"], reload_interval_s=0))
    try:
        state.warm_up()  # returns at once: the index builds in its thread
        assert started.wait(30) and not state.index_ready.is_set()
        tid = sec_library["tracks"][0]["track_id"]
        doc = state.engine.run(Query(tracks=(tid,), want="tracks", k=3))  # answered while the build is blocked
        assert len(doc["neighbours"]) == 3 and "index" not in doc
        release.set()
        assert state.index_ready.wait(60)
        assert state.engine.index_mode == "auto"
        doc2 = state.engine.run(Query(tracks=(tid,), want="tracks", k=3))
        assert doc2["index"] == "faiss candidates, re-ranked exactly"
        assert [n["track_id"] for n in doc2["neighbours"]] == [n["track_id"] for n in doc["neighbours"]]
    finally:
        release.set()
        state.index_ready.wait(60)
        state.store.close()
