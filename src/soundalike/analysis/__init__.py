"""One analysis path: scan → validate → decode → embed → commit, for every way audio enters.

:func:`analyse` is the one entry point (``run``, ``ingest``, ``embed``, ``embed --ray``, the
service's rescan, ``beet soundalike``, the taggram back-fill, a watcher); :func:`ingest` and
:func:`embed` are its two stages as functions. Sources say what is read (:class:`Folder`,
:class:`Stored`), executors where the kernel runs (:class:`InProcess`, :class:`TrackWorkers`,
:class:`~soundalike.analysis.ray.RayCluster`). The kernel (:func:`decode_track`,
:func:`embed_decoded`, :func:`commit`; ``docs/analysis-kernel.md``) is called from this package
only: a test fails otherwise.

Example
-------
>>> from soundalike.analysis import Folder, analyse                       # doctest: +SKIP
>>> with Store("lib.db") as store:                                        # doctest: +SKIP
...     summary = analyse(store, Folder("~/Music"), [load_backend("descriptors")], jobs=2)
"""

from __future__ import annotations

from .clips import ClipPlan, decode_clip, embed_clip
from .executors import Executor, InProcess, Item, auto_executor
from .kernel import (
    DecodedTrack, EmbedPlan, Failure, FileOutcome, Progress, RunSummary, TrackResult, commit, decode_track,
    embed_decoded, model_key, record_cost, register, unreadable,
)
from .run import AnalysisSummary, analyse, default_backend_names, embed, executor_for, ingest, ingest_and_embed
from .sources import Folder, Source, Stored, add_record, record_scan_failures, scan_into
from .taggrams import TAGGRAM_BACKEND, fill_taggrams, taggram_model
from .workers import LocalWorkers, TrackWorkers, can_use_workers, start_workers

__all__ = [
    "analyse", "AnalysisSummary", "executor_for", "ingest", "embed", "ingest_and_embed", "default_backend_names",
    "Folder", "Stored", "Source", "Executor", "Item", "InProcess", "TrackWorkers", "LocalWorkers", "auto_executor",
    "can_use_workers", "start_workers", "RunSummary", "FileOutcome", "EmbedPlan", "TrackResult", "Progress",
    "DecodedTrack", "Failure", "decode_track", "embed_decoded", "commit", "model_key", "register", "record_cost",
    "unreadable", "add_record", "scan_into", "record_scan_failures", "fill_taggrams", "taggram_model",
    "TAGGRAM_BACKEND", "ClipPlan", "decode_clip", "embed_clip",
]
