"""Attack 3 (half-open connections) and slow clients, against a real uvicorn on loopback started the
way ``soundalike serve`` starts it: request-receipt deadlines and connection limits hold."""

from __future__ import annotations

import time

import httpx
import pytest
from _security_support import API_KEY, LimitedServer, closed_within, connect, settings


@pytest.fixture(scope="module")
def server(sec_library):
    from soundalike.serve import create_app

    s = settings(sec_library["db"], header_timeout_s=1.0, body_timeout_s=1.5, max_connections=40,
                 max_connections_per_client=12)
    with LimitedServer(create_app(s), s) as srv:
        yield srv


def _ok(server) -> bool:
    return httpx.get(server.url + "/api/artists", headers={"X-API-Key": API_KEY}, timeout=10).status_code == 200


def test_silent_connection_is_closed(server):
    s = connect(server.port)
    closed, got = closed_within(s, 4.0)
    s.close()
    assert closed
    assert got == b"" or got.startswith(b"HTTP/1.1 408")


def test_trickled_headers_are_cut_off(server):
    """One header byte every 0.2 s never completes the request: the deadline is not reset by data."""
    s = connect(server.port)
    start = time.monotonic()
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    got, closed = b"", False
    for byte in request:
        try:
            s.send(bytes([byte]))
        except OSError:
            closed = True
            break
        done, got = closed_within(s, 0.2)
        if done:
            closed = True
            break
    elapsed = time.monotonic() - start
    s.close()
    assert closed and elapsed < 3.0
    assert got.startswith(b"HTTP/1.1 408")
    assert _ok(server)


def test_slow_body_is_cut_off(server):
    s = connect(server.port)
    s.send(b"POST /rest/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           b"Content-Length: 1000\r\n\r\nu=a")
    closed, got = closed_within(s, 4.0)
    s.close()
    assert closed and got.startswith(b"HTTP/1.1 408")


def test_connection_limits(server):
    """12 per client: the 13th and later connections are answered 503 and closed at once; all idle
    ones are closed by the header deadline; a normal client is then served."""
    socks = [connect(server.port) for _ in range(20)]
    try:
        refused = []
        for s in socks[12:]:
            closed, got = closed_within(s, 0.5)
            refused.append(closed and got.startswith(b"HTTP/1.1 503"))
        assert all(refused)
        for s in socks[:12]:
            closed, _ = closed_within(s, 3.0)
            assert closed
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    assert _ok(server)


def test_normal_keep_alive_client_is_served(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}) as c:
        for _ in range(5):
            assert c.get("/api/artists").status_code == 200
            time.sleep(0.3)  # idle between requests is the keep-alive timer's, not the header deadline
