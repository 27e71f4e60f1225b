"""Embedding backends behind one registry (``load_backend``)."""

from .base import Backend, BackendStatus, get_scene_embeddings, get_timestamp_embeddings, model_key_for
from .registry import available_backends, backend_class, backend_statuses, load_backend, register_backend

__all__ = [
    "Backend",
    "BackendStatus",
    "available_backends",
    "backend_class",
    "backend_statuses",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_backend",
    "model_key_for",
    "register_backend",
]
