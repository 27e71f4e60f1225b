"""A polite JSON-over-HTTP client: descriptive User-Agent, per-host rate limit, retries with
exponential backoff that honour ``Retry-After``, timeouts, and a response cache with
conditional requests (ETag / Last-Modified) and an offline mode.

Only the standard library (``urllib``) is used. Time goes through an injectable :class:`Clock`,
so tests measure the rate limit and the backoff on a fake clock instead of sleeping.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import SoundalikeError
from .settings import SOURCES, EnrichSettings

__all__ = ["Clock", "SystemClock", "RateLimiter", "FetchError", "Response", "FetchStats", "HttpClient", "request_key"]

log = logging.getLogger(__name__)

# Header a test server sets on fixture responses; kept in the cache's ``note`` column so output
# built from fixtures can say so.
FIXTURE_HEADER = "X-Soundalike-Fixture"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CACHEABLE_ERRORS = frozenset({400, 404, 410})


class Clock(Protocol):
    """Time source: ``monotonic`` for intervals, ``time`` for cache ages, ``sleep`` to wait."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FetchError(SoundalikeError):
    """A request that failed after its retries (or could not be made).

    ``kind``: ``timeout``, ``network``, ``http`` (an unexpected status), ``rate_limited``
    (still 429/503 after the retries), ``malformed`` (not JSON), ``offline`` (not cached and
    ``--offline``), ``auth`` (key rejected). ``status`` and ``data`` hold the last response.
    """

    def __init__(self, message: str, *, kind: str, url: str = "", status: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.url = url
        self.status = status
        self.data = data


@dataclass
class Response:
    """A JSON response, fetched or cached. ``data`` is the parsed body (None when empty)."""

    source: str
    key: str
    url: str
    status: int
    data: Any
    from_cache: bool = False
    revalidated: bool = False
    fixture: bool = False
    stale: bool = False  # a cached answer used because a refresh failed

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class FetchStats:
    """Counters of one client: requests sent, retries, cache hits, 304s, failures, stale answers
    used because a refresh failed, and seconds waited for the rate limit and backoff."""

    requests: int = 0
    retried: int = 0
    cached: int = 0
    revalidated: int = 0
    failed: int = 0
    stale: int = 0
    waited_s: float = 0.0

    def as_json(self) -> dict:
        return {"requests": self.requests, "retried": self.retried, "cached": self.cached,
                "revalidated": self.revalidated, "failed": self.failed, "stale": self.stale,
                "waited_s": round(self.waited_s, 3)}


class RateLimiter:
    """At most ``rate`` requests per second per host, measured on `clock`.

    ``wait(host)`` blocks (via ``clock.sleep``) until the host's next slot; ``defer(host, s)``
    pushes the next slot back when a server asks for it (Retry-After, X-RateLimit-Reset-In).
    """

    def __init__(self, rates: Mapping[str, float], *, clock: Clock) -> None:
        self._interval = {host: 1.0 / r for host, r in rates.items()}
        self._next: dict[str, float] = {}
        self.clock = clock

    def wait(self, host: str) -> float:
        now = self.clock.monotonic()
        due = self._next.get(host, now)
        slept = 0.0
        if due > now:
            slept = due - now
            self.clock.sleep(slept)
            now = self.clock.monotonic()
        self._next[host] = max(now, due) + self._interval.get(host, 0.0)
        return slept

    def defer(self, host: str, seconds: float) -> None:
        self._next[host] = max(self._next.get(host, 0.0), self.clock.monotonic() + seconds)


def request_key(path: str, params: Mapping[str, Any] | None, *, secret: tuple[str, ...] = ()) -> str:
    """The cache key of a request: path plus its sorted query without secret parameters."""
    items = sorted((k, str(v)) for k, v in (params or {}).items() if k not in secret)
    query = urllib.parse.urlencode(items)
    return f"{path}?{query}" if query else path


def _retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock.time())


class HttpClient:
    """GET JSON from the enrichment services, politely, through a cache.

    Parameters
    ----------
    settings : EnrichSettings
    cache : ResponseCache, optional
        Where responses are kept (``enrich.cache.ResponseCache``); None disables caching.
    offline : bool
        Use only the cache; a missing response raises ``FetchError(kind="offline")``.
    refresh : bool
        Revalidate cached responses even when they are younger than ``settings.expiry_s``.
    clock : Clock, optional
        Injected for tests; default the system clock.
    """

    def __init__(self, settings: EnrichSettings, *, cache: Any = None, offline: bool = False, refresh: bool = False,
                 clock: Clock | None = None) -> None:
        settings.validate()
        self.settings = settings
        self.cache = cache
        self.offline = offline
        self.refresh = refresh
        self.clock: Clock = clock or SystemClock()
        hosts: dict[str, float] = {}
        for s in SOURCES:
            host = urllib.parse.urlsplit(settings.base_urls[s]).netloc
            # Two sources on one host (a mirror, a test server) share the slower rate.
            hosts[host] = min(hosts.get(host, float("inf")), settings.rates[s])
        self.limiter = RateLimiter(hosts, clock=self.clock)
        self.user_agent = settings.user_agent()
        self.stats: dict[str, FetchStats] = {s: FetchStats() for s in SOURCES}

    def total_stats(self) -> FetchStats:
        out = FetchStats()
        for st in self.stats.values():
            for name in ("requests", "retried", "cached", "revalidated", "failed", "stale", "waited_s"):
                setattr(out, name, getattr(out, name) + getattr(st, name))
        return out

    # --- public --------------------------------------------------------------------------
    def get_json(
        self,
        source: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        secret: tuple[str, ...] = (),
        retry_if: Callable[[Any], float | None] | None = None,
        validate: Callable[[Any], Any] | None = None,
    ) -> Response:
        """GET ``base_url(source) + path`` with `params`; return the JSON response.

        Statuses 2xx, 400, 404 and 410 come back as a :class:`Response` (and are cached);
        429/5xx/timeouts are retried with backoff, then raise :class:`FetchError`.
        `retry_if(data)` lets a source treat an error *body* as retryable (Last.fm's error 29
        comes with status 200): it returns a delay in seconds, or None. `validate(data)` checks
        the shape of a 2xx body before it is cached (a ValueError makes it ``malformed``).
        """
        if source not in self.stats:
            raise SoundalikeError(f"Unknown enrichment source {source!r}; use one of {', '.join(SOURCES)}.")
        stats = self.stats[source]
        base = self.settings.base_urls[source]
        key = request_key(path, params, secret=secret)
        query = urllib.parse.urlencode(sorted((k, str(v)) for k, v in (params or {}).items()))
        url = f"{base}{path}" + (f"?{query}" if query else "")
        shown_url = f"{base}{key}"  # never show or store secrets
        cached = self.cache.get(source, key) if self.cache is not None else None
        if cached is not None:
            age = self.clock.time() - cached.fetched_ts
            if self.offline or (not self.refresh and age < self.settings.expiry_s):
                stats.cached += 1
                return cached.to_response(source, key)
        if self.offline:
            stats.failed += 1
            raise FetchError(f"{source}: {shown_url} is not in the cache and --offline was given; "
                             "run once without --offline to fetch it.", kind="offline", url=shown_url)
        try:
            return self._fetch(source, base, key, url, shown_url, cached, retry_if, validate)
        except FetchError as exc:
            if cached is not None and cached.status == 200 and exc.kind != "auth":
                # stale-if-error: an old answer beats none (the next run revalidates again).
                stats.stale += 1
                log.warning("%s Using the cached answer of %s.", exc, cached.fetched or "an earlier run")
                out = cached.to_response(source, key)
                out.stale = True
                return out
            stats.failed += 1
            raise

    def _fetch(self, source: str, base: str, key: str, url: str, shown_url: str, cached: "CachedResponse | None",
               retry_if: Callable[[Any], float | None] | None, validate: Callable[[Any], Any] | None) -> Response:
        """The request loop: rate limit, conditional headers, retries with backoff."""
        stats = self.stats[source]
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if cached is not None and cached.status == 200:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        host = urllib.parse.urlsplit(base).netloc
        attempt = 0
        while True:
            stats.waited_s += self.limiter.wait(host)
            stats.requests += 1
            delay: float | None = None
            try:
                status, resp_headers, body = self._send(url, headers)
            except TimeoutError:
                failure = FetchError(f"{source}: {shown_url} timed out after {self.settings.timeout_s:g} s.",
                                     kind="timeout", url=shown_url)
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc) or type(exc).__name__
                failure = FetchError(f"{source}: cannot reach {shown_url} ({reason}).", kind="network", url=shown_url)
            else:
                fixture = FIXTURE_HEADER.lower() in resp_headers
                self._note_rate_headers(host, resp_headers)
                if status == 304 and cached is not None:
                    stats.revalidated += 1
                    if self.cache is not None:
                        self.cache.touch(source, key, self.clock.time())
                    out = cached.to_response(source, key)
                    out.revalidated = True
                    return out
                if status in RETRY_STATUSES:
                    delay = _retry_after(resp_headers.get("retry-after"), self.clock)
                    kind = "rate_limited" if status in (429, 503) else "http"
                    failure = FetchError(f"{source}: {shown_url} answered HTTP {status} after {attempt + 1} attempt(s).",
                                         kind=kind, url=shown_url, status=status, data=_loads_or_none(body))
                else:
                    try:
                        data = json.loads(body) if body.strip() else None
                    except ValueError as exc:
                        raise FetchError(f"{source}: {shown_url} returned malformed JSON (HTTP {status}: {exc}).",
                                         kind="malformed", url=shown_url, status=status) from None
                    hint = retry_if(data) if (200 <= status < 300 and retry_if is not None) else None
                    if hint is not None:
                        delay = hint if hint > 0 else None  # 0: no hint, use the backoff
                        failure = FetchError(f"{source}: {shown_url} asked to slow down (error body) after "
                                             f"{attempt + 1} attempt(s).", kind="rate_limited", url=shown_url,
                                             status=status, data=data)
                    elif 200 <= status < 300 or status in CACHEABLE_ERRORS:
                        if validate is not None and 200 <= status < 300:
                            try:
                                validate(data)
                            except ValueError as exc:
                                raise FetchError(f"{source}: {shown_url} is not the expected answer ({exc}).",
                                                 kind="malformed", url=shown_url, status=status) from None
                        now = self.clock.time()
                        if self.cache is not None:
                            self.cache.put(source, key, shown_url, status=status, fetched_ts=now,
                                           etag=resp_headers.get("etag"), last_modified=resp_headers.get("last-modified"),
                                           content_type=resp_headers.get("content-type"), body=body,
                                           note="fixture" if fixture else None)
                        return Response(source, key, shown_url, status, data, fixture=fixture)
                    else:
                        kind = "auth" if status in (401, 403) else "http"
                        raise FetchError(f"{source}: {shown_url} answered HTTP {status}.", kind=kind, url=shown_url,
                                         status=status, data=data)
            if attempt >= self.settings.max_retries:
                raise failure
            if delay is None:
                delay = self.settings.backoff_s * (2 ** attempt)
            if delay > self.settings.max_backoff_s:
                raise FetchError(f"{failure} The server asked to wait {delay:.0f} s, more than the "
                                 f"{self.settings.max_backoff_s:.0f} s allowed; try again later.",
                                 kind=failure.kind, url=shown_url, status=failure.status)
            attempt += 1
            stats.retried += 1
            log.info("%s; retry %d in %.1f s", failure, attempt, delay)
            # The wait also holds the host's next slot, so other requests do not jump the queue.
            self.limiter.defer(host, delay)

    # --- plumbing ------------------------------------------------------------------------
    def _note_rate_headers(self, host: str, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        reset_in = headers.get("x-ratelimit-reset-in")
        if remaining is not None and reset_in is not None:
            try:
                if int(remaining) <= 0:
                    self.limiter.defer(host, float(reset_in))
            except ValueError:
                pass

    def _send(self, url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        """One GET; returns (status, lowercased headers, text). Raises TimeoutError / OSError."""
        req = urllib.request.Request(url, headers=dict(headers), method="GET")
        try:
            with urllib.request.urlopen(req, timeout=self.settings.timeout_s) as resp:
                raw = resp.read()
                # Header names are case-insensitive: keep them lowercased.
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw.decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, socket.timeout):
                raw = b""
            hdrs = {k.lower(): v for k, v in exc.headers.items()} if exc.headers else {}
            return exc.code, hdrs, raw.decode("utf-8", errors="replace")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise TimeoutError(str(exc.reason)) from None
            raise
        except socket.timeout as exc:  # an alias of TimeoutError since 3.10; kept explicit
            raise TimeoutError(str(exc)) from None


def _loads_or_none(body: str) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


@dataclass
class CachedResponse:
    """One row of the response cache (see ``enrich.cache``)."""

    url: str
    status: int
    fetched_ts: float
    etag: str | None = None
    last_modified: str | None = None
    body: str | None = None
    note: str | None = None
    fetched: str = ""
    extra: dict = field(default_factory=dict)

    def data(self) -> Any:
        return _loads_or_none(self.body or "")

    def to_response(self, source: str, key: str) -> Response:
        return Response(source, key, self.url, self.status, self.data(), from_cache=True, fixture=self.note == "fixture")
