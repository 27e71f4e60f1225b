"""Attack 3 and DNS rebinding: with credentials configured, nothing that reveals the library answers
without them; Host is checked; failed logins are logged and slowed per client."""

from __future__ import annotations

import base64
import logging
import time

import pytest
from _security_support import API_KEY, PASSWORD, TOKEN, USER


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_no_library_without_credentials(make_client, sec_library):
    c = make_client()
    tid = sec_library["tracks"][0]["track_id"]
    for path in ("/api/artists", f"/api/tracks/{tid}", f"/api/tracks/{tid}/audio", f"/api/tracks/{tid}/similar",
                 "/api/map", "/openapi.json", "/static/app.js"):
        r = c.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "Unauthorized"
        assert r.headers["www-authenticate"].startswith("Basic")
    assert c.head(f"/api/tracks/{tid}/audio").status_code == 401
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")
    assert c.get("/api/health").status_code == 200  # liveness stays open


@pytest.mark.parametrize("how", ["basic", "header-key", "param-key", "bearer-token", "bearer-key"])
def test_each_credential_opens_the_api(make_client, sec_library, how):
    c = make_client()
    tid = sec_library["tracks"][0]["track_id"]
    headers, params = {}, {}
    if how == "basic":
        headers = _basic(USER, PASSWORD)
    elif how == "header-key":
        headers = {"X-API-Key": API_KEY}
    elif how == "param-key":
        params = {"apiKey": API_KEY}
    elif how == "bearer-token":
        headers = {"Authorization": f"Bearer {TOKEN}"}
    else:
        headers = {"Authorization": f"Bearer {API_KEY}"}
    assert c.get("/api/artists", headers=headers, params=params).status_code == 200
    r = c.get(f"/api/tracks/{tid}/audio", headers=headers, params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")


def test_wrong_credentials_are_refused(make_client):
    c = make_client()
    assert c.get("/api/artists", headers=_basic(USER, "nope")).status_code == 401
    assert c.get("/api/artists", headers={"X-API-Key": "nope"}).status_code == 401
    assert c.get("/api/artists", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/api/artists", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_login_form_session_and_csrf(make_client, sec_library):
    c = make_client()
    r = c.get("/login")
    assert r.status_code == 200 and 'name="password"' in r.text
    r = c.post("/login", data={"user": USER, "password": "wrong", "next": "/"}, follow_redirects=False)
    assert r.status_code == 401 and "soundalike_session" not in r.cookies
    r = c.post("/login", data={"user": USER, "password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    assert c.get("/api/artists").status_code == 200  # the session cookie
    assert c.get("/").status_code == 200
    # a write with the cookie alone (what a forged cross-site form sends) is refused ...
    r = c.post("/api/admin/rescan")
    assert r.status_code == 403 and "x-csrf-token" in r.json()["error"]["message"]
    # ... and passes the access rule with the page's CSRF header (409: no library folder configured)
    r = c.post("/api/admin/rescan", headers={"X-CSRF-Token": c.cookies["soundalike_csrf"]})
    assert r.status_code == 409
    c.post("/logout")
    assert c.get("/api/artists").status_code == 401


def test_public_opts_out_for_reads_only(make_client):
    c = make_client(public=True)
    assert c.get("/api/artists").status_code == 200
    assert c.post("/api/admin/rescan").status_code == 401  # writes still need credentials
    assert c.post("/api/admin/rescan", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 409


def test_host_allow_list(make_client):
    c = make_client()
    auth = {"X-API-Key": API_KEY}
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "192.168.1.20:8000"):
        assert c.get("/api/artists", headers={**auth, "Host": host}).status_code == 200, host
    # a DNS-rebinding page names its own host: refused before anything else, even /api/health
    for host in ("evil.example", "evil.example:8000", "music.example.org"):
        r = c.get("/api/health", headers={"Host": host})
        assert r.status_code == 400 and r.json()["error"]["type"] == "HostNotAllowed", host
    c2 = make_client(allowed_hosts=("music.example.org",))
    assert c2.get("/api/health", headers={"Host": "music.example.org"}).status_code == 200
    assert c2.get("/api/health", headers={"Host": "evil.example"}).status_code == 400


def test_forwarded_headers_only_from_trusted_proxies(make_client, caplog):
    """The login throttle keys on the client address: a client cannot pick it with X-Forwarded-For."""
    c = make_client(login_free_failures=1)  # TestClient's address is "testclient": no trusted proxy
    caplog.set_level(logging.WARNING, logger="soundalike.serve.access")
    c.get("/api/artists", headers={**_basic(USER, "x"), "X-Forwarded-For": "10.9.9.9"})
    assert "failed login from testclient" in caplog.text and "10.9.9.9" not in caplog.text


def test_failed_logins_are_logged_and_slowed(make_client, caplog):
    c = make_client(login_free_failures=3)
    caplog.set_level(logging.WARNING, logger="soundalike.serve.access")
    for _ in range(3):
        r = c.get("/rest/ping", params={"u": USER, "p": "guess", "f": "json"})
        assert r.json()["subsonic-response"]["error"]["code"] == 40
    assert caplog.text.count("failed login from testclient (user 'listener', subsonic password)") == 3
    # past the free failures: even the right password is not checked until the wait is over
    r = c.get("/rest/ping", params={"u": USER, "p": PASSWORD, "f": "json"})
    assert "Too many failed logins" in r.json()["subsonic-response"]["error"]["message"]
    r = c.get("/api/artists", headers=_basic(USER, PASSWORD))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    time.sleep(1.1)  # 1 s after the third failure
    r = c.get("/rest/ping", params={"u": USER, "p": PASSWORD, "f": "json"})
    assert r.json()["subsonic-response"]["status"] == "ok"


def test_throttle_doubles_and_forgets():
    from soundalike.serve.access import LoginThrottle

    now = [0.0]
    th = LoginThrottle(free=2, max_delay_s=8, forget_s=100, clock=lambda: now[0])
    for _ in range(2):
        th.failed("a", user="u", how="test")
    assert th.wait_s("a") == 1.0 and th.wait_s("b") == 0.0
    for _ in range(5):
        th.failed("a", user="u", how="test")
    assert th.wait_s("a") == 8.0  # capped
    now[0] = 50
    assert th.wait_s("a") == 0.0  # waited long enough
    th.failed("a", user="u", how="test")
    now[0] = 200
    assert th.wait_s("a") == 0.0 and "a" not in th._seen  # forgotten


def test_serve_get_carries_the_configured_credentials(sec_library, monkeypatch):
    from typer.testing import CliRunner

    from soundalike.cli import app

    monkeypatch.setenv("SOUNDALIKE_SUBSONIC_USER", USER)
    monkeypatch.setenv("SOUNDALIKE_SUBSONIC_PASSWORD", PASSWORD)
    r = CliRunner().invoke(app, ["serve", "--db", str(sec_library["db"]), "--get", "/api/artists?q=artist%201"])
    assert r.exit_code == 0, r.output
    assert '"Artist 1"' in r.output
