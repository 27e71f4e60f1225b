"""soundalike: which artists and tracks sound like this one?

    import soundalike
    doc = soundalike.similar("library.db", artist="Nina Simone", k=10)      # the `similar --json` document
    doc = soundalike.similar("library.db", track="Nina Simone - Sinnerman", calibration="csls")

    from soundalike import Engine, Query, Store                                  # keep an engine to reuse its models
    with Store("library.db", readonly=True) as store:
        engine = Engine(store)
        doc = engine.run(Query(artist="Nina Simone", signals=("audio", "tags")))

The public API imports no torch, transformers or fastapi; backends load them lazily. The query
names are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ParameterError,
    SoundalikeError,
    SoundalikeWarning,
    UnknownArtistError,
)

__all__ = ["__version__", "ParameterError", "SoundalikeError", "SoundalikeWarning", "UnknownArtistError",
           "Engine", "Query", "Store", "similar"]


def similar(db, artist=None, *, track=None, **options) -> dict:
    """The ``similar --json`` document for one artist (name) or one track (any track reference).

    Parameters
    ----------
    db : path of the library database (opened read-only)
    artist, track : the seed (one of them)
    **options : further :class:`soundalike.query.Query` fields (k, backend, layer, calibration,
        profile, signals, exclude_seed_artists, ...)
    """
    from .query import Engine, Query, split_signals
    from .store import Store

    if "signals" in options:
        options["signals"] = split_signals(options["signals"])
    with Store(db, readonly=True) as store:
        return Engine(store).run(Query(artist=artist, track=track, **options))


def __getattr__(name: str):
    if name in ("Engine", "Query"):
        from . import query

        return getattr(query, name)
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module 'soundalike' has no attribute {name!r}")
