"""The query engine: the only code that turns stored vectors into neighbours.

    from soundalike.query import Engine, Query
    doc = Engine(store).run(Query(artist="Nina Simone", k=10))          # similar --json
    doc = Engine(store).run(Query(track="Nina Simone - Sinnerman"))      # any track reference
    doc = Engine(store).run(Query(tracks=(a, b), k=50, exclude_track_ids=(c,), artist_gap=2))

Layers: ``spec`` (the Query value) → ``refs`` (track/artist references) → ``vectors`` (stored
vectors, vector step) → ``space`` (calibration, percentile table, k-NN radii, top-k) →
``engine`` (caches, seeds, filters, hybrid) → ``answer`` (the document); ``defaults`` chooses and
saves each backend's default calibration; ``layout`` is the 2-D map.
"""

from __future__ import annotations

from .defaults import refresh_calibrators, validation_summary
from .engine import FALLBACK_CALIBRATION, Engine, run_query
from .layout import layout_2d, layout_method
from .refs import resolve_artist, resolve_track, track_label
from .space import LOCAL_K, CalibratedSpace
from .spec import INDEX_MODES, Query, split_signals
from .vectors import CALIBRATIONS, FIT_COUNT, LEVELS, PROFILES, load_vectors, pick_model

__all__ = [
    "CALIBRATIONS",
    "PROFILES",
    "LEVELS",
    "INDEX_MODES",
    "LOCAL_K",
    "FALLBACK_CALIBRATION",
    "FIT_COUNT",
    "Query",
    "Engine",
    "run_query",
    "resolve_track",
    "resolve_artist",
    "track_label",
    "split_signals",
    "refresh_calibrators",
    "validation_summary",
    "layout_2d",
    "layout_method",
    "load_vectors",
    "pick_model",
    "CalibratedSpace",
]
