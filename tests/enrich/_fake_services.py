"""A local HTTP server that plays MusicBrainz, ListenBrainz (labs) and Last.fm from FIXTURES.

Mounted under three prefixes of one server: ``/mb/ws/2`` (MusicBrainz), ``/lb`` (ListenBrainz
labs) and ``/lfm/2.0`` (Last.fm). Responses come from ``tests/data/enrich_fixtures`` (synthetic
data shaped like each service's documented JSON; every response carries ``X-Soundalike-Fixture``).
Faults are injected per request with :meth:`FakeServices.add_fault`. Every request is logged with
the time of the (possibly fake) clock, so the rate limit is measured on the server's side.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "enrich_fixtures"
_PHRASE = re.compile(r'^artist:"((?:[^"\\]|\\.)*)"$')


class FakeClock:
    """Time that only moves when someone sleeps: rate limits and backoff without waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return 1.8e9 + self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += max(0.0, seconds)


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict/list -> JSON; str -> raw text
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0  # real sleep before answering (to trip client timeouts)


@dataclass
class Logged:
    t: float
    service: str
    path: str
    params: dict
    headers: dict
    status: int = 0

    @property
    def key(self) -> str:
        items = sorted((k, v) for k, v in self.params.items() if k != "api_key")
        return f"{self.service}:{self.path}?" + "&".join(f"{k}={v}" for k, v in items)


def _load(rel: str):
    return json.loads((FIXTURES / rel).read_text(encoding="utf-8"))


class FakeServices:
    """Start with ``with FakeServices(clock=...) as fs:``; base URLs in ``fs.urls``."""

    def __init__(self, *, clock: FakeClock | None = None, lastfm_key: str = "fixture-key") -> None:
        self.clock = clock
        self.lastfm_key = lastfm_key
        self.log: list[Logged] = []
        self.faults: list[tuple[str, str, dict, deque]] = []
        self.search_pages: dict[str, list[dict]] = {}  # name -> extra paged search results
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.held = threading.Event()
        self._lock = threading.Lock()
        idx = _load("demo_artists.json")["artists"]
        self.by_name = {name: v["slug"] for name, v in idx.items()}
        self.by_mbid = {v["mbid"]: v["slug"] for v in idx.values()}

    # --- control -----------------------------------------------------------------------------
    def add_fault(self, service: str, path_contains: str, *replies: Reply, **params) -> None:
        """Answer the next matching requests with `replies` (then fall back to the fixtures)."""
        with self._lock:
            self.faults.append((service, path_contains, {k: str(v) for k, v in params.items()}, deque(replies)))

    def requests(self, service: str | None = None) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if service is None or r.service == service]

    def counts(self) -> Counter:
        return Counter(r.key for r in self.requests())

    # --- server ------------------------------------------------------------------------------
    def __enter__(self) -> "FakeServices":
        fs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fs._handle(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.urls = {"musicbrainz": base + "/mb/ws/2", "listenbrainz": base + "/lb", "lastfm": base + "/lfm/2.0"}
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def env(self) -> dict[str, str]:
        return {"SOUNDALIKE_MUSICBRAINZ_URL": self.urls["musicbrainz"], "SOUNDALIKE_LISTENBRAINZ_URL": self.urls["listenbrainz"],
                "SOUNDALIKE_LASTFM_URL": self.urls["lastfm"], "LASTFM_API_KEY": self.lastfm_key}

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        path = parts.path
        for prefix, service in (("/mb/ws/2", "musicbrainz"), ("/lb", "listenbrainz"), ("/lfm/2.0", "lastfm")):
            if path.startswith(prefix):
                path = path[len(prefix):] or "/"
                break
        else:
            service = "unknown"
        now = self.clock.monotonic() if self.clock is not None else time.monotonic()
        entry = Logged(now, service, path, params, dict(h.headers.items()))
        with self._lock:
            self.log.append(entry)
            n = len(self.log)
        if self.hold_after is not None and n > self.hold_after:
            # Hold this request unanswered (the test kills the client meanwhile).
            self.held.set()
            self.release.wait(30)
        reply = self._fault_for(service, path, params) or self._fixture(service, path, params)
        entry.status = reply.status
        if reply.delay_s:
            time.sleep(reply.delay_s)
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        raw = body.encode("utf-8")
        etag = '"' + hashlib.sha1(raw).hexdigest()[:16] + '"'
        if reply.status == 200 and h.headers.get("If-None-Match") == etag:
            entry.status = 304  # before answering: the client may read the log right after
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("X-Soundalike-Fixture", "1")
            h.end_headers()
            return
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(raw)))
            h.send_header("X-Soundalike-Fixture", "1")
            if reply.status == 200:
                h.send_header("ETag", etag)
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or was killed

    def _fault_for(self, service: str, path: str, params: dict) -> Reply | None:
        with self._lock:
            for i, (svc, part, want, queue) in enumerate(self.faults):
                if svc == service and part in path and all(params.get(k) == v for k, v in want.items()):
                    reply = queue.popleft()
                    if not queue:
                        del self.faults[i]
                    return reply
        return None

    def _fixture(self, service: str, path: str, params: dict) -> Reply:
        if service == "musicbrainz":
            if path == "/artist":
                m = _PHRASE.match(params.get("query", ""))
                name = m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else ""
                offset, limit = int(params.get("offset", 0)), int(params.get("limit", 25))
                if name in self.search_pages:
                    allc = self.search_pages[name]
                elif name in self.by_name:
                    allc = _load(f"musicbrainz/search_{self.by_name[name]}.json")["artists"]
                else:
                    allc = []
                page = allc[offset:offset + limit]
                return Reply(200, {"created": "2026-11-01T00:00:00.000Z", "count": len(allc), "offset": offset, "artists": page})
            mbid = path.rsplit("/", 1)[-1]
            if mbid in self.by_mbid:
                return Reply(200, _load(f"musicbrainz/artist_{self.by_mbid[mbid]}.json"))
            if not re.match(r"^[0-9a-f-]{36}$", mbid):
                return Reply(400, _load("musicbrainz/error_400_invalid_mbid.json"))
            return Reply(404, _load("musicbrainz/error_404.json"))
        if service == "listenbrainz" and path == "/similar-artists/json":
            slug = self.by_mbid.get(params.get("artist_mbids", ""))
            return Reply(200, _load(f"listenbrainz/similar_{slug}.json") if slug else [])
        if service == "lastfm":
            if params.get("api_key") != self.lastfm_key:
                return Reply(403, _load("lastfm/error_10_invalid_key.json"))
            slug = self.by_name.get(params.get("artist", ""))
            method = params.get("method")
            if slug is None:
                return Reply(200, _load("lastfm/error_6_not_found.json"))
            if method == "artist.getsimilar":
                return Reply(200, _load(f"lastfm/getsimilar_{slug}.json"))
            if method == "artist.gettoptags":
                return Reply(200, _load(f"lastfm/gettoptags_{slug}.json"))
        return Reply(404, {"error": "Not Found"})
