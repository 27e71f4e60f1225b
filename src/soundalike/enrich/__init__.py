"""Artist enrichment from MusicBrainz, ListenBrainz and Last.fm — cached, polite, offline-able.

- :func:`enrich` fetches (or reads from the cache) identities, tags, relations and
  similar-artist lists for the library's artists (``soundalike enrich``).
- :func:`signal_inputs` turns what is cached into the hybrid's ``tags``, ``refs`` and
  ``graph`` inputs, without any network access.
- :func:`export_csv` writes them as the hybrid's CSV files.

Modules: ``http`` (polite client), ``cache`` (the tables; the only SQL here), ``identity``,
``musicbrainz``, ``listenbrainz``, ``lastfm``, ``signals``, ``export``, ``settings``, ``run``.
"""

from __future__ import annotations

from .export import export_csv
from .http import FetchError, HttpClient, SystemClock
from .run import EnrichSummary, enrich, parse_sources
from .settings import SOURCES, EnrichSettings
from .signals import signal_inputs

__all__ = [
    "EnrichSettings", "EnrichSummary", "FetchError", "HttpClient", "SOURCES", "SystemClock", "enrich", "export_csv",
    "parse_sources", "signal_inputs",
]
