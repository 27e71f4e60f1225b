"""Settings of the enrichment clients: base URLs, key, contact, politeness and cache expiry.

Precedence: an explicit argument > a ``SOUNDALIKE_*`` environment variable > the default.
Base URLs are configurable so tests (and mirrors) can point the clients elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from ..errors import ParameterError

__all__ = ["EnrichSettings", "SOURCES", "DEFAULT_URLS"]

SOURCES = ("musicbrainz", "listenbrainz", "lastfm")

DEFAULT_URLS = {
    "musicbrainz": "https://musicbrainz.org/ws/2",
    # ListenBrainz's similar-artists data is served by its labs API (datasethoster);
    # the /1/ API has no similar-artists endpoint (lb-radio returns recordings instead).
    "listenbrainz": "https://labs.api.listenbrainz.org",
    "lastfm": "https://ws.audioscrobbler.com/2.0",
}

# Requests per second per host. MusicBrainz asks for at most 1/s; Last.fm's terms ask for at
# most 5/s averaged over 5 minutes; ListenBrainz publishes X-RateLimit headers (honoured too).
DEFAULT_RATES = {"musicbrainz": 1.0, "listenbrainz": 1.0, "lastfm": 4.0}

DEFAULT_CONTACT = "contact not configured; set SOUNDALIKE_CONTACT"

_ENV_URL = {
    "musicbrainz": "SOUNDALIKE_MUSICBRAINZ_URL",
    "listenbrainz": "SOUNDALIKE_LISTENBRAINZ_URL",
    "lastfm": "SOUNDALIKE_LASTFM_URL",
}
_ENV_RATE = {
    "musicbrainz": "SOUNDALIKE_MUSICBRAINZ_RATE",
    "listenbrainz": "SOUNDALIKE_LISTENBRAINZ_RATE",
    "lastfm": "SOUNDALIKE_LASTFM_RATE",
}


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(f"Environment variable {name}={raw!r} is not a number; unset it or give e.g. 1.0.") from None
    if value <= 0:
        raise ParameterError(f"Environment variable {name}={raw!r} must be > 0.")
    return value


@dataclass(frozen=True)
class EnrichSettings:
    """Everything the enrichment clients need; build with :meth:`from_env`.

    Attributes
    ----------
    base_urls : dict[str, str]      one per source, no trailing slash
    rates : dict[str, float]        requests per second per source host (> 0)
    lastfm_api_key : str or None    from ``LASTFM_API_KEY``; Last.fm is skipped without it
    contact : str                   e-mail or URL put in the User-Agent (``SOUNDALIKE_CONTACT``)
    expiry_s : float                cached responses younger than this are used without a request
    timeout_s : float               per-request socket timeout
    max_retries : int               retries after the first attempt (429/503/timeouts)
    backoff_s : float               first backoff; doubles each retry (Retry-After wins when given)
    max_backoff_s : float           cap of one wait; a longer Retry-After fails the request
    min_score : int                 MusicBrainz search score (0-100) needed for a confident match
    search_limit : int              results per MusicBrainz search page (1-100)
    search_pages : int              pages read at most while no exact-name match is found
    similar_limit : int             similar artists asked of Last.fm / kept from ListenBrainz
    listenbrainz_algorithm : str    the labs similar-artists algorithm name
    """

    base_urls: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_URLS))
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    lastfm_api_key: str | None = None
    contact: str = DEFAULT_CONTACT
    expiry_s: float = 30 * 86400.0
    timeout_s: float = 15.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 120.0
    min_score: int = 90
    search_limit: int = 10
    search_pages: int = 3
    similar_limit: int = 50
    listenbrainz_algorithm: str = (
        "session_based_days_7500_session_300_contribution_5_threshold_10_limit_100_filter_True_skip_30"
    )

    @classmethod
    def from_env(cls, **overrides) -> "EnrichSettings":
        """Settings from ``SOUNDALIKE_*`` variables and ``LASTFM_API_KEY``; keyword overrides win."""
        urls = {s: os.environ.get(_ENV_URL[s]) or DEFAULT_URLS[s] for s in SOURCES}
        rates = {s: _env_float(_ENV_RATE[s], DEFAULT_RATES[s]) for s in SOURCES}
        base = cls(
            base_urls={k: v.rstrip("/") for k, v in urls.items()},
            rates=rates,
            lastfm_api_key=os.environ.get("LASTFM_API_KEY") or None,
            contact=os.environ.get("SOUNDALIKE_CONTACT") or DEFAULT_CONTACT,
            expiry_s=_env_float("SOUNDALIKE_ENRICH_EXPIRY_DAYS", 30.0) * 86400.0,
            timeout_s=_env_float("SOUNDALIKE_ENRICH_TIMEOUT", 15.0),
        )
        return base.with_(**overrides) if overrides else base

    def with_(self, **changes) -> "EnrichSettings":
        """A copy with some fields changed (validated)."""
        out = replace(self, **changes)
        out.validate()
        return out

    def validate(self) -> None:
        for s in SOURCES:
            url = self.base_urls.get(s, "")
            if not url.startswith(("http://", "https://")):
                raise ParameterError(f"Base URL of {s} is {url!r}; give an http(s) URL (env {_ENV_URL[s]}).")
            if self.rates.get(s, 0) <= 0:
                raise ParameterError(f"Request rate of {s} is {self.rates.get(s)!r}; it must be > 0 requests per second.")
        if not 0 <= self.min_score <= 100:
            raise ParameterError(f"min_score={self.min_score} is outside 0..100 (MusicBrainz scores).")
        if not 1 <= self.search_limit <= 100:
            raise ParameterError(f"search_limit={self.search_limit} is outside 1..100 (MusicBrainz allows 1-100).")
        if self.max_retries < 0 or self.timeout_s <= 0 or self.expiry_s < 0:
            raise ParameterError("max_retries must be >= 0, timeout_s > 0 and expiry_s >= 0.")

    def user_agent(self) -> str:
        """``soundalike/<version> ( <contact> )``, the form MusicBrainz asks for."""
        from .. import __version__

        return f"soundalike/{__version__} ( {self.contact} )"
