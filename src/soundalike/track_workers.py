"""Former home of the per-track worker processes: a re-export of
:mod:`soundalike.analysis.workers` (and of the one-pass ``ingest_and_embed``), kept so that code
written against it keeps working."""

from __future__ import annotations

from .analysis.run import ingest_and_embed
from .analysis.workers import TrackWorkers, can_use_workers, start_workers

__all__ = ["TrackWorkers", "can_use_workers", "ingest_and_embed", "start_workers"]
