"""One access rule for the whole service: the ``Host`` allow-list, credentials, slowed failed logins.

:class:`AccessGuard` (ASGI middleware) checks every HTTP request:

1. **Host.** ``Host`` must be a loopback name, an IP literal, or a configured public name
   (``Settings.allowed_hosts``); otherwise 400. A web page cannot then reach the service through
   DNS rebinding: that attack needs the attacker's own host name in ``Host``, and an IP literal
   cannot be rebound.
2. **Credentials.** When any credential is configured (a Subsonic account, an API key, the write
   token) and the service is not ``public``, every route that reveals the library needs one;
   ``/api/health`` and the login page stay open and ``/rest`` checks Subsonic's own parameters.
   Accepted: HTTP Basic with the Subsonic user and password; the API key (``X-API-Key`` header,
   ``apiKey`` parameter or ``Authorization: Bearer``); the write token as a bearer token; a
   session cookie from ``POST /login``, which writes (any method but GET/HEAD/OPTIONS) must pair
   with the ``X-CSRF-Token`` header (the value of the ``soundalike_csrf`` cookie).
3. **Failed logins** are logged (client address, user, mechanism) and slowed per client by
   :class:`LoginThrottle`: after ``login_free_failures`` failures each further attempt must wait
   1 s, then 2, 4 ... up to :data:`MAX_LOGIN_DELAY_S`; an attempt inside the wait is answered 429
   without its credentials being checked.

The principal (``"basic"``, ``"api_key"``, ``"token"``, ``"session"``, or None when access is
open) is left in ``request.state.principal`` for the write endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import logging
import secrets
import threading
import time
from collections import OrderedDict
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .errors import error_json
from .settings import Settings

__all__ = ["AccessGuard", "LoginThrottle", "Sessions", "host_allowed", "router", "MAX_LOGIN_DELAY_S",
           "SESSION_COOKIE", "CSRF_COOKIE", "CSRF_HEADER", "client_address"]

log = logging.getLogger("soundalike.serve.access")

#: longest wait a client with many failed logins is made to observe between attempts
MAX_LOGIN_DELAY_S = 60.0
SESSION_COOKIE = "soundalike_session"
CSRF_COOKIE = "soundalike_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 7 * 24 * 3600
#: reachable without credentials: liveness, the login form, Subsonic (it checks its own)
OPEN_PATHS = frozenset({"/api/health", "/login", "/logout", "/favicon.ico"})
OPEN_PREFIXES = ("/rest/",)
#: pages a person opens in a browser: without credentials they lead to the login form (else 401)
PAGES = frozenset({"/", "/index.html", "/docs", "/redoc"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _host_name(host: str) -> str:
    """``Host`` header value without port, brackets and trailing dot, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def host_allowed(host: str | None, allowed: tuple[str, ...] = ()) -> bool:
    """True when a request naming `host` may be served (see the module docstring).

    Examples
    --------
    >>> host_allowed("127.0.0.1:8000"), host_allowed("[::1]:80"), host_allowed("evil.example")
    (True, True, False)
    >>> host_allowed("music.example.org", ("music.example.org",)), host_allowed("a.lan", (".lan",))
    (True, True)
    """
    if "*" in allowed:
        return True
    if not host:
        return False
    name = _host_name(host)
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    for a in allowed:
        a = a.strip().lower().rstrip(".")
        if name == a or (a.startswith(".") and (name.endswith(a) or name == a[1:])):
            return True
    return False


def client_address(scope) -> str:
    """The client's address as the service sees it (after trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class LoginThrottle:
    """Failed logins per client: counted, logged, and slowed once past `free` failures.

    Parameters
    ----------
    free : int   failures allowed before attempts must wait
    max_delay_s : float   cap of the doubling wait
    max_clients : int   clients remembered (the oldest are forgotten first; bounded memory)
    forget_s : float   a client with no failure for this long starts again from zero
    """

    def __init__(self, *, free: int = 5, max_delay_s: float = MAX_LOGIN_DELAY_S, max_clients: int = 10_000,
                 forget_s: float = 3600.0, clock=time.monotonic) -> None:
        self.free, self.max_delay_s, self.max_clients, self.forget_s = free, max_delay_s, max_clients, forget_s
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client -> (failures, last failure)

    def wait_s(self, client: str) -> float:
        """Seconds `client` must still wait before its credentials are checked again (0: go ahead)."""
        with self._lock:
            entry = self._seen.get(client)
            if entry is None:
                return 0.0
            n, last = entry
            now = self.clock()
            if now - last > self.forget_s:
                del self._seen[client]
                return 0.0
            if n < self.free:
                return 0.0
            return max(0.0, last + min(self.max_delay_s, 2.0 ** (n - self.free)) - now)

    def failed(self, client: str, *, user: str | None, how: str) -> None:
        """Record (and log) one failed login of `client`."""
        with self._lock:
            n = self._seen.pop(client, (0, 0.0))[0] + 1
            self._seen[client] = (n, self.clock())
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
        log.warning("failed login from %s (user %r, %s); %d failure%s in a row", client, (user or "")[:64], how, n,
                    "" if n == 1 else "s")

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)


class Sessions:
    """Signed, expiring session cookies (secret per server start) and their CSRF tokens."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self._secret = secrets.token_bytes(32)
        self.ttl_s = ttl_s
        self._revoked: OrderedDict[str, None] = OrderedDict()

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def new(self) -> tuple[str, str]:
        """``(session cookie value, CSRF token)``."""
        body = f"{int(time.time() + self.ttl_s)}.{secrets.token_hex(16)}"
        value = f"{body}.{self._sign(body)}"
        return value, self.csrf(value)

    def valid(self, value: str | None) -> bool:
        if not value or value in self._revoked or value.count(".") != 2:
            return False
        body, sig = value.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(body)):
            return False
        try:
            return int(body.split(".", 1)[0]) > time.time()
        except ValueError:
            return False

    def csrf(self, value: str) -> str:
        return self._sign("csrf:" + value)

    def revoke(self, value: str) -> None:
        self._revoked[value] = None
        while len(self._revoked) > 10_000:
            self._revoked.popitem(last=False)


def _same(a: str, b: str | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class _Denied(Exception):
    def __init__(self, user: str | None, how: str) -> None:
        self.user, self.how = user, how


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    out = {}
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        k, _, v = part.strip().partition("=")
        if k:
            out[k] = v
    return out


def check_credentials(settings: Settings, sessions: Sessions, headers: dict[bytes, bytes], query: str,
                      method: str) -> str | None:
    """The principal that the request's credentials prove, None when it presents none.

    Raises
    ------
    _Denied   credentials presented and wrong (a failed login), or a cookie write without CSRF token
    """
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, value = auth.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise _Denied(None, "basic (malformed)") from None
        if settings.subsonic_user and settings.subsonic_password is not None and \
                _same(user, settings.subsonic_user) & _same(password, settings.subsonic_password):
            return "basic"
        raise _Denied(user, "basic")
    if scheme == "bearer" and value:
        if settings.api_token and _same(value, settings.api_token):
            return "token"
        if settings.api_key and _same(value, settings.api_key):
            return "api_key"
        raise _Denied(None, "bearer")
    key = headers.get(b"x-api-key", b"").decode("latin-1") or None
    if key is None and b"apikey=" in query.encode("latin-1", "replace").lower():
        key = next((v for k, v in parse_qsl(query, keep_blank_values=True) if k == "apiKey"), None)
    if key is not None:
        if settings.api_key and _same(key, settings.api_key):
            return "api_key"
        raise _Denied(None, "api key")
    cookie = _cookies(headers).get(SESSION_COOKIE)
    if cookie is not None:
        if not sessions.valid(cookie):
            return None  # an expired session is no failed login: the page asks to log in again
        if method not in SAFE_METHODS:
            token = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
            if not _same(sessions.csrf(cookie), token):
                raise _Denied(None, "session without CSRF token")
        return "session"
    return None


class AccessGuard:
    """ASGI middleware enforcing the access rule (module docstring) on every HTTP request."""

    def __init__(self, app, *, settings: Settings, throttle: LoginThrottle, sessions: Sessions) -> None:
        self.app, self.settings, self.throttle, self.sessions = app, settings, throttle, sessions

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.settings.allowed_hosts):
            log.warning("refused Host %r from %s", host[:100], client_address(scope))
            resp = error_json(400, "HostNotAllowed", "This server does not answer for that host name; add it to "
                                                     "SOUNDALIKE_ALLOWED_HOSTS (serve --allowed-host) if it is yours.")
            return await resp(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or method == "OPTIONS":
            return await self.app(scope, receive, send)
        if not self.settings.credentials_configured:  # nothing to check against: open (loopback by default)
            scope.setdefault("state", {})["principal"] = None
            return await self.app(scope, receive, send)
        client = client_address(scope)
        principal = None
        try:
            presented = self._presents(headers, scope)
            if presented:
                wait = self.throttle.wait_s(client)
                if wait > 0:
                    return await self._too_many(wait)(scope, receive, send)
            principal = check_credentials(self.settings, self.sessions, headers,
                                          scope.get("query_string", b"").decode("latin-1"), method)
        except _Denied as d:
            if d.how != "session without CSRF token":
                self.throttle.failed(client, user=d.user, how=d.how)
                return await self._unauthorized("Wrong credentials.")(scope, receive, send)
            resp = error_json(403, "Forbidden", f"A write with a session cookie needs the {CSRF_HEADER} header "
                                                f"(the value of the {CSRF_COOKIE} cookie).")
            return await resp(scope, receive, send)
        if principal is not None and principal != "session":
            self.throttle.succeeded(client)
        if principal is None and self.settings.auth_required:
            if method in ("GET", "HEAD") and path in PAGES:  # a person at the page: the login form
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                return await RedirectResponse("/login?next=" + quote(target, safe="/"), 303)(scope, receive, send)
            return await self._unauthorized("This server needs credentials: HTTP Basic with the Subsonic user and "
                                             "password, the API key (X-API-Key header or apiKey parameter), or a "
                                             "session from /login.")(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        return await self.app(scope, receive, send)

    @staticmethod
    def _presents(headers: dict[bytes, bytes], scope) -> bool:
        return bool(headers.get(b"authorization") or headers.get(b"x-api-key")
                    or b"apikey=" in scope.get("query_string", b"").lower())

    @staticmethod
    def _unauthorized(message: str):
        return error_json(401, "Unauthorized", message, {"WWW-Authenticate": 'Basic realm="soundalike", charset="UTF-8"'})

    @staticmethod
    def _too_many(wait: float):
        s = max(1, int(wait + 0.999))
        return error_json(429, "TooManyFailedLogins", f"Too many failed logins from this address; retry in {s} s.",
                          {"Retry-After": str(s)})


# --- the page's login form -----------------------------------------------------------------------
router = APIRouter(include_in_schema=False)

_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>soundalike — log in</title>
<style>body{{font:16px system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.4rem 0;box-sizing:border-box}}input{{padding:.4rem}}
.err{{color:#b00020}}</style></head><body><h1>soundalike</h1>{message}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label>User <input name="user" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//host`` or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target[:1000]


def _login_page(message: str, next_: str, status: int) -> HTMLResponse:
    msg = f'<p class="err">{html.escape(message)}</p>' if message else ""
    page = HTMLResponse(_LOGIN_PAGE.format(message=msg, next=html.escape(_safe_next(next_))), status_code=status)
    page.headers["Cache-Control"] = "no-store"
    page.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    return page


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002 (the form field's name)
    return _login_page("", next, 200)


@router.post("/login")
def login(request: Request, user: Annotated[str, Form(max_length=256)] = "",
          password: Annotated[str, Form(max_length=1024)] = "",
          next: Annotated[str, Form(max_length=1000)] = "/") -> Response:  # noqa: A002
    """Check the Subsonic user and password; on success set the session and CSRF cookies."""
    settings: Settings = request.app.state.settings
    throttle: LoginThrottle = request.app.state.login_throttle
    client = client_address(request.scope)
    wait = throttle.wait_s(client)
    if wait > 0:
        page = _login_page(f"Too many failed logins from this address; retry in {int(wait + 0.999)} s.", next, 429)
        page.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return page
    if not settings.subsonic_user or settings.subsonic_password is None:
        return _login_page("No user is configured on this server (set SOUNDALIKE_SUBSONIC_USER and _PASSWORD).",
                           next, 403)
    if not (_same(user, settings.subsonic_user) & _same(password, settings.subsonic_password)):
        throttle.failed(client, user=user, how="login form")
        return _login_page("Wrong user or password.", next, 401)
    throttle.succeeded(client)
    value, csrf = request.app.state.sessions.new()
    resp = RedirectResponse(_safe_next(next), 303)
    secure = request.url.scheme == "https"
    resp.set_cookie(SESSION_COOKIE, value, max_age=SESSION_TTL_S, httponly=True, samesite="strict", secure=secure)
    resp.set_cookie(CSRF_COOKIE, csrf, max_age=SESSION_TTL_S, httponly=False, samesite="strict", secure=secure)
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        request.app.state.sessions.revoke(value)
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(SESSION_COOKIE)
    resp.delete_cookie(CSRF_COOKIE)
    return resp
