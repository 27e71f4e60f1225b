"""The service follows its store: vectors that ``embed`` commits (WAL) are served without a restart.

Requests keep being answered from the loaded, committed state while another process writes the
same file. Every ``reload_interval_s`` the service asks SQLite whether anyone committed since
(``PRAGMA data_version``: one cheap call); once the writes have been quiet for one interval (or
have gone on for ten), a new :class:`LibraryState` is built in a worker thread and swapped in
whole, so a request never sees half of a reload.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI

__all__ = ["follow_store", "data_version"]

log = logging.getLogger(__name__)


def data_version(state) -> int:
    """SQLite's change counter of `state`'s connection (changes when another connection commits)."""
    return int(state.store.execute("PRAGMA data_version").fetchone()[0])


async def _wait(interval_s: float, trigger: asyncio.Event | None) -> bool:
    """Sleep one interval, or less when `trigger` is set first; True when triggered."""
    if trigger is None:
        await asyncio.sleep(interval_s)
        return False
    try:
        await asyncio.wait_for(trigger.wait(), interval_s if interval_s > 0 else None)
    except asyncio.TimeoutError:
        return False
    trigger.clear()
    return True


async def follow_store(app: FastAPI, interval_s: float, *, trigger: asyncio.Event | None = None) -> None:
    """Reload ``app.state.library`` when its store changed; runs until cancelled.

    `trigger` (set by the service's own watcher after each commit) reloads at once, without
    waiting for a quiet interval.
    """
    from .library_state import LibraryState

    state = app.state.library
    last = data_version(state)
    first_change: float | None = None
    retired: list = []  # (when swapped out, state)
    while True:
        triggered = await _wait(interval_s, trigger)
        # closed one interval (at least 5 s: triggered reloads come sooner) after the swap: no request still holds it
        grace = max(interval_s, 5.0)
        for _, old in [r for r in retired if time.monotonic() - r[0] >= grace]:
            old.store.close()
        retired = [r for r in retired if time.monotonic() - r[0] < grace]
        state = app.state.library
        now_v = await asyncio.to_thread(data_version, state)
        if triggered:
            pass  # our own watcher committed: reload now
        elif now_v != last:
            last = now_v
            first_change = first_change or time.monotonic()
            if time.monotonic() - first_change < 10 * interval_s:
                continue  # still being written: wait for a quiet interval
        elif not first_change:
            continue
        settings = app.state.settings
        try:
            new = await asyncio.to_thread(LibraryState, settings)
            if settings.precompute:
                await asyncio.to_thread(new.warm_up)
        except Exception:  # a failed reload keeps serving the loaded state
            log.exception("reload of %s failed; still serving the previous state", settings.db)
            first_change = None
            continue
        app.state.library = new
        retired.append((time.monotonic(), state))
        last, first_change = data_version(new), None
        log.info("reloaded %s: %d artists, %d tracks", settings.db, len(new.artists), len(new.tracks))
