"""Last.fm: ``artist.getSimilar`` and ``artist.getTopTags`` (JSON; key from ``LASTFM_API_KEY``).

Shapes (https://www.last.fm/api/show/artist.getSimilar, .../artist.getTopTags):

- ``{"similarartists": {"artist": [{"name", "mbid", "match": "0.83", "url", "image": [...],
  "streamable"}], "@attr": {"artist"}}}``
- ``{"toptags": {"tag": [{"count": 100, "name", "url"}], "@attr": {"artist"}}}``
- errors: ``{"error": <code>, "message": "...", "links": []}``; 6 = artist not found (invalid
  parameters), 10 = invalid API key, 26 = suspended key, 29 = rate limit exceeded, 11 / 16 =
  service temporarily unavailable, 8 = operation failed. The HTTP status may be 200 or 4xx.

The key is sent as ``api_key`` but never stored: cache keys and shown URLs leave it out.
"""

from __future__ import annotations

from typing import Any

from .http import FetchError, HttpClient, Response

__all__ = ["SOURCE", "RETRY_CODES", "AUTH_CODES", "NOT_FOUND_CODES", "similar_request", "toptags_request", "similar",
           "toptags", "error_code", "retry_hint", "parse_similar", "parse_toptags", "LastfmAuthError"]

SOURCE = "lastfm"
RETRY_CODES = frozenset({8, 11, 16, 29})
AUTH_CODES = frozenset({4, 9, 10, 14, 26})
NOT_FOUND_CODES = frozenset({6})
SECRET = ("api_key",)


class LastfmAuthError(FetchError):
    """The key was rejected (codes 4, 9, 10, 14, 26): no point asking again this run."""


def similar_request(name: str, *, api_key: str, limit: int = 50) -> tuple[str, dict[str, Any]]:
    return "/", {"method": "artist.getsimilar", "artist": name, "api_key": api_key, "format": "json",
                 "limit": limit, "autocorrect": 0}


def toptags_request(name: str, *, api_key: str) -> tuple[str, dict[str, Any]]:
    return "/", {"method": "artist.gettoptags", "artist": name, "api_key": api_key, "format": "json", "autocorrect": 0}


def error_code(data: Any) -> int | None:
    if isinstance(data, dict) and "error" in data:
        try:
            return int(data["error"])
        except (TypeError, ValueError):
            return -1
    return None


def retry_hint(data: Any) -> float | None:
    """0.0 (retry with backoff) for a temporary error body, else None."""
    return 0.0 if error_code(data) in RETRY_CODES else None


def _validator(parse):
    """Check a body before it is cached: error 6 (not found) is a cacheable answer; a key error
    stops Last.fm for the run; any other error body is not cached."""

    def check(data: Any) -> None:
        code = error_code(data)
        if code is None:
            parse(data)
        elif code in AUTH_CODES:
            raise LastfmAuthError(f"Last.fm rejected the API key (error {code}: {data.get('message', '')}); "
                                  "check LASTFM_API_KEY.", kind="auth", data=data)
        elif code not in NOT_FOUND_CODES:
            raise ValueError(f"Last.fm error {code}: {data.get('message', '')}")

    return check


def _get(client: HttpClient, path: str, params: dict, parse) -> Response:
    try:
        resp = client.get_json(SOURCE, path, params, secret=SECRET, retry_if=retry_hint, validate=_validator(parse))
    except FetchError as exc:
        code = error_code(exc.data)
        if exc.kind == "auth" or code in AUTH_CODES:
            msg = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            raise LastfmAuthError(f"Last.fm rejected the API key (error {code}: {msg}); check LASTFM_API_KEY.",
                                  kind="auth", url=exc.url, status=exc.status, data=exc.data) from None
        raise
    code = error_code(resp.data)
    if code in AUTH_CODES:
        raise LastfmAuthError(f"Last.fm rejected the API key (error {code}: {resp.data.get('message', '')}); "
                              "check LASTFM_API_KEY.", kind="auth", url=resp.url, status=resp.status, data=resp.data)
    return resp


def similar(client: HttpClient, name: str, *, api_key: str, limit: int = 50) -> Response:
    path, params = similar_request(name, api_key=api_key, limit=limit)
    return _get(client, path, params, parse_similar)


def toptags(client: HttpClient, name: str, *, api_key: str) -> Response:
    path, params = toptags_request(name, api_key=api_key)
    return _get(client, path, params, parse_toptags)


def _as_list(x: Any) -> list:
    # Last.fm's JSON turns a one-element list into a bare object.
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def parse_similar(data: Any) -> list[tuple[str, str | None, float]]:
    """``[(name, mbid or None, match in [0, 1])]`` best first. Raises ValueError on other shapes."""
    if not isinstance(data, dict) or not isinstance(data.get("similarartists"), dict):
        raise ValueError("a Last.fm artist.getSimilar answer needs a 'similarartists' object")
    out = []
    for a in _as_list(data["similarartists"].get("artist")):
        if not isinstance(a, dict) or not a.get("name"):
            continue
        try:
            match = float(a.get("match", 0) or 0)
        except (TypeError, ValueError):
            continue
        out.append((str(a["name"]), str(a["mbid"]) if a.get("mbid") else None, max(0.0, min(1.0, match))))
    out.sort(key=lambda t: -t[2])
    return out


def parse_toptags(data: Any) -> dict[str, float]:
    """``{tag: count}`` (Last.fm counts are relative, 0-100)."""
    if not isinstance(data, dict) or not isinstance(data.get("toptags"), dict):
        raise ValueError("a Last.fm artist.getTopTags answer needs a 'toptags' object")
    out: dict[str, float] = {}
    for t in _as_list(data["toptags"].get("tag")):
        if isinstance(t, dict) and t.get("name"):
            try:
                out[str(t["name"])] = float(t.get("count", 0) or 0)
            except (TypeError, ValueError):
                continue
    return out
