"""``serve --library DIR --watch``: the service runs the library watcher as its store's one writer.

The watcher (:class:`soundalike.watch.LibraryWatcher`) runs in a thread with its own writable
connection; after each committed step it sets the reload trigger, so the reloader swaps in the
new state at once instead of waiting for the reload interval.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from .settings import Settings

__all__ = ["Watching", "start_watching"]

log = logging.getLogger(__name__)


@dataclass
class Watching:
    """The running watcher thread: `trigger` is set (in the service's loop) after each commit."""

    trigger: asyncio.Event
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    events: list = field(default_factory=list)  # the last steps (newest last), for logs and tests

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop after the batch in flight (it is committed) and wait for the thread."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout_s)


def start_watching(settings: Settings, models, *, settle_s: float = 2.0, rescan_s: float = 3600.0) -> Watching:
    """Start the watcher of ``settings.library_root`` with the backends of `models` (the
    service's stored models, as the rescan uses); call from the service's event loop."""
    loop = asyncio.get_running_loop()
    w = Watching(asyncio.Event())

    def changed(event) -> None:
        w.events = (w.events + [event])[-100:]
        if event.kind != "refused":
            loop.call_soon_threadsafe(w.trigger.set)

    def main() -> None:
        from ..analysis import InProcess
        from ..audio import WindowPolicy
        from ..backends import load_backend
        from ..store import Store
        from ..watch import LibraryWatcher, WatchOptions

        try:
            with Store(settings.db) as store:
                policies = {m.config.get("window", "middle") for m in models} or {"middle"}
                backends = [load_backend(b) for b in sorted({m.backend for m in models})]
                watcher = LibraryWatcher(store, settings.library_root, backends, policy=WindowPolicy.parse(sorted(policies)[0]),
                                         executor=InProcess(), on_change=changed,
                                         options=WatchOptions(settle_s=settle_s, rescan_s=rescan_s))
                watcher.run(w.stop_event)
        except Exception:  # the service keeps answering from what is stored
            log.exception("the library watcher of %s stopped", settings.library_root)

    w.thread = threading.Thread(target=main, name="soundalike-watch", daemon=True)
    w.thread.start()
    return w
