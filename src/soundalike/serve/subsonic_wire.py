"""Subsonic wire format: parameters (GET query or POST form), authentication, JSON/XML envelopes.

Authentication (Subsonic API 1.16.1 + OpenSubsonic ``apiKeyAuthentication``):

- ``u`` + ``p`` (plain, or ``enc:`` + hex of the UTF-8 password),
- ``u`` + ``t`` + ``s`` with ``t = md5(password + s)`` (lowercase hex),
- ``apiKey`` alone (``u`` together with ``apiKey`` is error 43).

Failures answer HTTP 200 with ``status="failed"`` and the spec's error codes (10 missing
parameter, 40 wrong credentials, 42 mechanism not supported, 43 conflicting mechanisms,
44 invalid API key, 70 not found, 0 generic).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from xml.etree import ElementTree as ET

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .. import __version__
from .settings import Settings

__all__ = ["SubsonicError", "Params", "read_params", "authenticate", "ok", "failed", "API_VERSION"]

API_VERSION = "1.16.1"
SERVER_TYPE = "soundalike"
XMLNS = "http://subsonic.org/restapi"


class SubsonicError(Exception):
    """An error answered in the Subsonic envelope (HTTP 200, ``status="failed"``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Params:
    """Request parameters with repeated keys kept (``id=a&id=b``)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items: dict[str, list[str]] = {}
        for k, v in items:
            self._items.setdefault(k, []).append(v)

    def get(self, name: str, default: str | None = None) -> str | None:
        vals = self._items.get(name)
        return vals[0] if vals else default

    def all(self, name: str) -> list[str]:
        return list(self._items.get(name, []))

    def require(self, name: str) -> str:
        v = self.get(name)
        if v is None or v == "":
            raise SubsonicError(10, f"Required parameter is missing: {name}.")
        return v

    def int(self, name: str, default: int, *, lo: int = 0, hi: int = 10_000) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(raw)
        except ValueError:
            raise SubsonicError(0, f"Parameter {name}={raw!r} is not an integer.") from None
        return max(lo, min(hi, v))

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        return raw.strip().lower() in ("1", "true", "yes", "on")

    def __contains__(self, name: str) -> bool:
        return name in self._items


async def read_params(request: Request) -> Params:
    """Query parameters, plus the form body of a POST (OpenSubsonic ``formPost``)."""
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded") or ctype.startswith("multipart/form-data"):
            form = await request.form()
            items.extend((k, v) for k, v in form.multi_items() if isinstance(v, str))
    return Params(items)


def _decode_password(p: str) -> str:
    if p.startswith("enc:"):
        try:
            raw = bytes.fromhex(p[4:])
        except ValueError:
            raise SubsonicError(40, "Wrong username or password (the enc: value is not hex).") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Some clients (py-sonic, py-opensonic) hex-encode code points, i.e. Latin-1 bytes.
            return raw.decode("latin-1")
    return p


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def authenticate(params: Params, settings: Settings) -> str:
    """Check the credentials; returns the user name (``"apikey"`` for API-key access)."""
    api_key = params.get("apiKey")
    user = params.get("u")
    if api_key is not None:
        if user is not None or "p" in params or "t" in params:
            raise SubsonicError(43, "Multiple conflicting authentication mechanisms provided.")
        if not settings.api_key:
            raise SubsonicError(42, "Provided authentication mechanism not supported: no API key is configured.")
        if not _same(api_key, settings.api_key):
            raise SubsonicError(44, "Invalid API key.")
        return settings.subsonic_user or "apikey"
    if user is None:
        raise SubsonicError(10, "Required parameter is missing: u (or apiKey).")
    if not settings.subsonic_user or settings.subsonic_password is None:
        raise SubsonicError(42, "Provided authentication mechanism not supported: use apiKey.")
    password, token, salt = params.get("p"), params.get("t"), params.get("s")
    if password is not None and token is not None:
        raise SubsonicError(43, "Multiple conflicting authentication mechanisms provided.")
    if password is not None:
        good = _same(user, settings.subsonic_user) and _same(_decode_password(password), settings.subsonic_password)
    elif token is not None and salt is not None:
        expected = hashlib.md5((settings.subsonic_password + salt).encode("utf-8")).hexdigest()
        good = _same(user, settings.subsonic_user) and _same(token.lower(), expected)
    else:
        raise SubsonicError(10, "Required parameter is missing: p, or t and s.")
    if not good:
        raise SubsonicError(40, "Wrong username or password.")
    return user


# --- envelopes -------------------------------------------------------------------------------
def _envelope(status: str, payload: dict) -> dict:
    return {"status": status, "version": API_VERSION, "type": SERVER_TYPE, "serverVersion": __version__,
            "openSubsonic": True, **payload}


#: characters XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(s: str) -> str:
    r"""`s` with every character XML 1.0 forbids replaced by U+FFFD (tags may hold anything).

    Examples
    --------
    >>> xml_text("bad\x01title") == "bad\ufffdtitle"
    True
    """
    return _NOT_XML.sub("\ufffd", s)


def _xml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return xml_text(str(v))


def _to_xml(parent: ET.Element, name: str, value) -> None:
    if isinstance(value, list):
        for item in value:
            _to_xml(parent, name, item)
        return
    if isinstance(value, dict):
        el = ET.SubElement(parent, name)
        for k, v in value.items():
            if v is None:
                continue
            if isinstance(v, (dict, list)):
                _to_xml(el, k, v)
            elif k == "value":  # the element's text in XML (genre), a "value" field in JSON
                el.text = _xml_value(v)
            else:
                el.set(k, _xml_value(v))
        return
    if value is not None:  # a bare scalar child (rare): text element
        ET.SubElement(parent, name).text = _xml_value(value)


def render(doc: dict, fmt: str, callback: str | None = None) -> Response:
    """The envelope `doc` as JSON (``f=json``), JSONP (``f=jsonp``) or XML (default)."""
    if fmt == "json":
        return JSONResponse({"subsonic-response": doc})
    if fmt == "jsonp" and callback and len(callback) <= 100 and callback.isascii() \
            and callback.replace("_", "").replace(".", "").isalnum():
        body = f"{callback}({json.dumps({'subsonic-response': doc})});"
        return Response(body, media_type="application/javascript")
    root = ET.Element("subsonic-response", {"xmlns": XMLNS})
    for k, v in doc.items():
        if isinstance(v, (dict, list)):
            _to_xml(root, k, v)
        elif v is not None:
            root.set(k, _xml_value(v))
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8")
    return Response(body, media_type="application/xml")


def ok(payload: dict, fmt: str, callback: str | None = None) -> Response:
    return render(_envelope("ok", payload), fmt, callback)


def failed(err: SubsonicError, fmt: str, callback: str | None = None) -> Response:
    return render(_envelope("failed", {"error": {"code": err.code, "message": err.message}}), fmt, callback)
