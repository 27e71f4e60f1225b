"""soundalike.watch: a watched library follows its folder (added, half-written, moved, re-tagged,
deleted files, a missing root, a burst beyond the queue) through the one analysis path."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import soundfile as sf

from tests.ci_support import import_or_skip

from soundalike.library import file_sha256
from soundalike.watch import LibraryWatcher, WatchOptions
from tests.conftest import SR, tone
from tests.unit.test_pipeline import SpectrumBackend


def _watcher(store, root, **opts):
    events = []
    backend = SpectrumBackend()
    w = LibraryWatcher(store, root, [backend], options=WatchOptions(**{"settle_s": 0.2, "rescan_s": 0, **opts}),
                       on_change=events.append)
    return w, backend, events


def _settle(w, seconds=0.25, rounds=40):
    """Step until the queue is empty (bounded)."""
    for _ in range(rounds):
        time.sleep(seconds)
        w.step()
        if not w.pending and not w.gone:
            return
    raise AssertionError(f"queue did not drain: {w.pending} {w.gone}")


def _start(w):
    """Catch up; files written within settle_s (all of them, here) wait in the queue first."""
    w.catch_up()
    _settle(w)


def _paths(store):
    return {t.path for t in store.tracks()}


def test_copied_file_is_analysed_once_settled_and_a_moved_one_keeps_its_id(small_library, store):
    w, backend, events = _watcher(store, small_library)
    _start(w)
    n0 = len(store.tracks())
    new = small_library / "New Artist" / "song.wav"
    new.parent.mkdir()
    sf.write(new, tone(523, 3), SR)
    w.notice([(None, str(new))])
    _settle(w)
    assert str(new) in _paths(store) and len(store.tracks()) == n0 + 1
    tid = file_sha256(new)
    calls = len(backend.calls)
    moved = small_library / "New Artist" / "renamed.wav"
    os.rename(new, moved)
    w.notice([(None, str(new)), (None, str(moved))])
    _settle(w)
    assert len(backend.calls) == calls  # no analysis: same bytes
    assert {t.track_id: t.path for t in store.tracks()}[tid] == str(moved)
    assert str(new) not in _paths(store) and len(store.tracks()) == n0 + 1


def test_half_written_file_waits_until_complete(small_library, store):
    w, backend, _ = _watcher(store, small_library, settle_s=0.6)
    _start(w)
    path = small_library / "slow.wav"
    sf.write(path, tone(700, 6), SR)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 4])
    w.notice([(None, str(path))])
    for i in range(2, 5):  # the copy goes on, a quarter every 0.3 s (shorter than settle_s)
        time.sleep(0.3)
        w.step()
        assert str(path) not in _paths(store), "analysed while still being written"
        with open(path, "ab") as fh:
            fh.write(full[(i - 1) * len(full) // 4: i * len(full) // 4 if i < 4 else len(full)])
    assert path.read_bytes() == full
    _settle(w)
    got = {t.path: t for t in store.tracks()}[str(path)]
    assert got.track_id == file_sha256(path) and abs(got.duration_s - 6.0) < 0.1


def test_retagged_file_replaces_its_entry_and_deleted_disappears(small_library, store):
    w, _, events = _watcher(store, small_library)
    _start(w)
    files = sorted(p for p in small_library.rglob("*.wav"))
    retag, gone = files[0], files[1]
    old_id = file_sha256(retag)
    sf.write(retag, tone(990, 4), SR)  # new bytes at the same path
    gone.unlink()
    w.notice([(None, str(retag)), (None, str(gone))])
    _settle(w)
    ids = {t.path: t.track_id for t in store.tracks()}
    assert ids[str(retag)] == file_sha256(retag) != old_id and old_id not in ids.values()
    assert str(gone) not in ids
    assert [e.kind for e in events].count("removed") == 1


def test_missing_root_or_mass_vanish_prunes_nothing(small_library, store, tmp_path):
    w, _, events = _watcher(store, small_library, min_vanish=3)
    _start(w)
    before = _paths(store)
    away = tmp_path / "unmounted"
    shutil.move(str(small_library), away)  # the disk is gone
    w.rescan()
    w.step()
    assert _paths(store) == before
    assert events[-1].kind == "refused" and "missing" in events[-1].message
    small_library.mkdir()  # the mount point is back, empty
    w.rescan()
    _settle(w)
    assert _paths(store) == before
    assert events[-1].kind == "refused" and "vanished at once" in events[-1].message
    shutil.rmtree(small_library)
    shutil.move(str(away), small_library)  # remounted: nothing to analyse again
    w.rescan()
    _settle(w)
    assert _paths(store) == before


def test_a_burst_beyond_the_queue_is_analysed_through_rescans(small_library, store):
    w, _, _ = _watcher(store, small_library, max_pending=4, batch_size=3)
    _start(w)
    burst = small_library / "Burst"
    burst.mkdir()
    for i in range(11):
        sf.write(burst / f"{i:02d}.wav", tone(200 + 37 * i, 1.5), SR)
    w.notice([(None, str(burst))])  # a folder moved in
    assert len(w.pending) == 4 and w.need_rescan  # bounded: the rest is found by a rescan
    _settle(w, rounds=80)
    assert sum(1 for p in _paths(store) if "/Burst/" in p) == 11


def test_calibrators_refresh_after_enough_changes(small_library, store):
    w, _, events = _watcher(store, small_library, refresh_min=3)
    _start(w)  # 6 new tracks >= 3: refreshed once the queue drained
    assert "calibrated" in [e.kind for e in events]
    assert w.changed_since_refresh == 0


def test_run_follows_file_events_until_stopped(small_library, store):
    import_or_skip("watchfiles")
    w, _, events = _watcher(store, small_library, tick_s=0.1)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,))
    t.start()
    try:
        deadline = time.monotonic() + 20
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the watch is set up after the catch-up
        new = small_library / "evented.flac"
        sf.write(new, np.sin(np.arange(SR * 2) / 9).astype(np.float32) * 0.3, SR)
        while str(new) not in _paths(store) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert str(new) in _paths(store)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
