"""Running the service: uvicorn with request-receipt time-outs and connection limits.

uvicorn bounds the idle time *between* requests (``timeout_keep_alive``) but not the time a
client takes to send one: a connection that sends nothing, or trickles a header one byte at a
time, is held for ever (each byte also cancels the keep-alive timer), and thousands of them
exhaust the process's file descriptors. :func:`protocol_class` subclasses uvicorn's own h11
protocol (the same parser, flow control and ASGI cycle) with three rules that run in the event
loop, at no cost per byte:

* a **header deadline**: from the connection's start (or a request's first byte) the headers
  must be complete within ``header_timeout_s`` (answered 408 and closed otherwise);
* a **body deadline**: the body must then arrive within ``body_timeout_s``;
* a **connection limit**: beyond ``max_connections`` open connections in all, or
  ``max_connections_per_client`` from one address, a new connection gets 503 and is closed.

A deadline is a single timer per connection armed on phase changes, not reset by data, so
trickling does not extend it. Why not a reverse proxy alone: the service must be safe on the
home network without one; behind one, these limits still hold (the proxy's address is one
client: raise ``max_connections_per_client`` there, see docs/security.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings

__all__ = ["protocol_class", "run", "uvicorn_config"]

log = logging.getLogger("soundalike.serve.server")

_REJECT = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
           b"retry-after: 5\r\nconnection: close\r\ncontent-length: 27\r\n\r\nToo many open connections.\n")
_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\ncontent-length: 38\r\n\r\nThe request took too long to arrive.\n\n")
_FINISHED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class _RateLimitedLog:
    """At most one warning per `every_s` per kind, with a count of those left out."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, kind: str, message: str, *args) -> None:
        now = time.monotonic()
        last, skipped = self._last.get(kind, (0.0, 0))
        if now - last < self.every_s:
            self._last[kind] = (last, skipped + 1)
            return
        self._last[kind] = (now, 0)
        suffix = f" ({skipped} more since the last report)" if skipped else ""
        log.warning(message + suffix, *args)


def protocol_class(settings: Settings) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the deadlines and connection limits of `settings` (module docstring)."""
    per_client: dict[str, int] = {}
    warn = _RateLimitedLog()
    header_s, body_s = settings.header_timeout_s, settings.body_timeout_s
    max_all, max_one = settings.max_connections, settings.max_connections_per_client

    class GuardedH11Protocol(H11Protocol):
        _sa_ip: str | None = None
        _sa_timer: asyncio.TimerHandle | None = None
        _sa_phase: str | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ip = self.client[0] if self.client else "unknown"
            if len(self.connections) > max_all or per_client.get(ip, 0) >= max_one:
                warn.warn("limit", "refused a connection from %s: %d open (limits %d in all, %d per client)", ip,
                          len(self.connections), max_all, max_one)
                transport.write(_REJECT)
                transport.close()
                return
            self._sa_ip = ip
            per_client[ip] = per_client.get(ip, 0) + 1
            self._sa_arm("headers", header_s)

        def connection_lost(self, exc) -> None:
            self._sa_cancel()
            if self._sa_ip is not None:
                n = per_client.get(self._sa_ip, 1) - 1
                if n > 0:
                    per_client[self._sa_ip] = n
                else:
                    per_client.pop(self._sa_ip, None)
                self._sa_ip = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._sa_follow()

        def on_response_complete(self) -> None:
            self._sa_cancel()  # between requests uvicorn's keep-alive timer runs; ours starts at the next byte
            super().on_response_complete()
            self._sa_follow(idle_ok=True)

        # -- deadlines ---------------------------------------------------------------------
        def _sa_follow(self, idle_ok: bool = False) -> None:
            if self._sa_ip is None or self.transport.is_closing():
                return
            state = self.conn.their_state
            if state in _FINISHED:
                self._sa_cancel()
            elif state is h11.SEND_BODY:
                if self._sa_phase != "body":
                    self._sa_arm("body", body_s)
            elif state is h11.IDLE and self._sa_phase is None:
                if not idle_ok or self.conn.trailing_data[0]:
                    self._sa_arm("headers", header_s)

        def _sa_arm(self, phase: str, seconds: float) -> None:
            self._sa_cancel()
            self._sa_phase = phase
            self._sa_timer = self.loop.call_later(seconds, self._sa_expire, phase)

        def _sa_cancel(self) -> None:
            if self._sa_timer is not None:
                self._sa_timer.cancel()
            self._sa_timer, self._sa_phase = None, None

        def _sa_expire(self, phase: str) -> None:
            self._sa_timer = None
            if self.transport.is_closing() or self.conn.their_state in _FINISHED:
                return
            warn.warn("timeout", "closed a connection from %s: its request %s took longer than %g s", self._sa_ip,
                      phase, header_s if phase == "headers" else body_s)
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # nothing answered yet: say why
                self.transport.write(_TIMEOUT)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # a handler reading the body sees a disconnect
                self.cycle.message_event.set()
            self.transport.close()

    GuardedH11Protocol.__name__ = GuardedH11Protocol.__qualname__ = "GuardedH11Protocol"
    return GuardedH11Protocol


def uvicorn_config(app, settings: Settings, *, host: str, port: int, log_level: str = "warning"):
    """The uvicorn configuration :func:`run` uses (tests start servers from it)."""
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=protocol_class(settings),
        proxy_headers=False,  # create_app believes forwarded headers from Settings.trusted_proxies only
        server_header=False, timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
        limit_concurrency=settings.max_connections + 16,  # tasks too: beyond, uvicorn answers 503
    )


def run(app, settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve `app` until interrupted, with the limits of `settings`."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, settings, host=host, port=port, log_level=log_level)).run()
