"""Former home of ingest and embed: a re-export of :mod:`soundalike.analysis`, kept so that code
written against it keeps working. New code imports from :mod:`soundalike.analysis`."""

from __future__ import annotations

from .analysis import (  # noqa: F401 - re-exported
    EmbedPlan, FileOutcome, Progress, RunSummary, TrackResult, add_record, commit, decode_track, embed, embed_decoded,
    ingest, model_key, record_cost, record_scan_failures, register, scan_into, unreadable,
)

__all__ = [
    "FileOutcome", "RunSummary", "EmbedPlan", "TrackResult", "Progress", "ingest", "embed", "model_key", "register",
    "decode_track", "embed_decoded", "commit", "record_cost", "scan_into", "add_record", "record_scan_failures",
    "unreadable",
]
