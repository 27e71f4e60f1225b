"""Backend registry: built-ins register with a decorator, third parties via the
``soundalike.backends`` entry point group (same registry)."""

from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ParameterError
from .base import Backend, BackendStatus

__all__ = ["register_backend", "load_backend", "backend_class", "available_backends", "backend_statuses",
           "worker_preload_modules", "DEFAULT_BACKENDS"]

#: the main job's backends (``soundalike run`` without ``--backend``)
DEFAULT_BACKENDS = ("musicnn-msd", "descriptors")

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Backend]] = {}
_LOADED = False

# Built-in backend modules; each must import without torch.
_BUILTIN_MODULES = (
    "soundalike.backends.descriptors",
    "soundalike.backends.musicnn",
    "soundalike.backends.vggish",
    "soundalike.backends.mert",
)


def register_backend(name: str):
    """Class decorator: ``@register_backend("vggish")``."""

    def deco(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _discover() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a module not written yet, or a broken optional import
            if exc.name and exc.name.startswith("soundalike"):
                continue
            log.warning("backend module %s failed to import: %s", mod, exc)
    for ep in entry_points(group="soundalike.backends"):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not break the listing
            log.warning("backend plugin %s failed to load: %s", ep.name, exc)
            continue
        _REGISTRY.setdefault(ep.name, cls)
        if not getattr(cls, "name", ""):
            cls.name = ep.name


def available_backends() -> list[str]:
    """Names of all registered backends (ensembles are built from these with ``+``)."""
    _discover()
    return sorted(_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ParameterError(f"Unknown backend {name!r}; choose one of: {known}.") from None


def backend_statuses() -> list[BackendStatus]:
    _discover()
    return [_REGISTRY[n].status() for n in sorted(_REGISTRY)]


def load_backend(
    name: str,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    **options: Any,
) -> Backend:
    """Build a backend by name. ``a+b`` builds an ensemble of the members.

    Parameters
    ----------
    name : str
        A registered name (``soundalike backends``) or members joined with ``+``.
    weights : path, optional
        File or directory holding the weights; else the backend's own lookup
        (``SOUNDALIKE_WEIGHTS_DIR``, the HF cache, an installed package).
    device : {"cpu", "auto", "cuda", "cuda:N", ...}
        Where torch backends run; backends without a network ignore ``cpu``/``auto``.
    dtype : {"float32", "bfloat16", "float16"}
    **options
        ``compile=True`` and ``max_batch`` (int or ``"auto"``) go to torch backends only.
        Backend-specific options (e.g. ``chunk_s=10`` for MERT, ``tiny=True`` for tests).
    """
    spec = {"name": name, "weights": weights, "device": device, "dtype": dtype, **options}
    backend = _build(name, weights=weights, device=device, dtype=dtype, **options)
    backend.load_spec = spec
    return backend


def _build(name: str, *, weights: Any, device: str, dtype: str, **options: Any) -> Backend:
    if "+" in name:
        from .ensemble import Ensemble

        if weights is not None and not isinstance(weights, (list, tuple)):
            raise ParameterError(f"weights for the ensemble {name!r} must be a list of numbers, one per member.")
        return Ensemble(name.split("+"), weights=list(weights) if weights is not None else None,
                        device=device, dtype=dtype, **options)
    cls = backend_class(name)
    missing = cls.missing_requirements()
    if missing:
        raise BackendUnavailable(
            f"Backend {name!r} needs {', '.join(missing)}; install it with "
            f"pip install 'soundalike[{cls.extra}]' -c constraints.txt"
            if cls.extra
            else f"Backend {name!r} needs {', '.join(missing)}; pip install {' '.join(missing)}"
        )
    kwargs: dict[str, Any] = dict(options)
    if weights is not None:
        kwargs["weights"] = weights
    accepted = inspect.signature(cls.__init__).parameters
    runtime = {"device": (device, ("cpu", "auto")), "dtype": (dtype, ("float32",)),
               "compile": (options.get("compile", False), (False,)), "max_batch": (options.get("max_batch"), (None, "auto"))}
    for opt, (value, neutral) in runtime.items():
        kwargs.pop(opt, None)
        if opt in accepted and value is not None:
            kwargs[opt] = value
        elif opt not in accepted and value not in neutral:
            # device/dtype/compile/max_batch only concern torch networks; the others run on the CPU as they are
            raise ParameterError(f"Backend {name!r} does not take {opt}={value!r} (it runs on the CPU in float32); "
                                 f"leave {opt} at its default for it.")
    return cls(**kwargs)


def worker_preload_modules(names: list[str] | tuple[str, ...]) -> list[str]:
    """Modules a worker process running these backends (ensembles: ``a+b``) needs: each backend's
    own and the heavy ones it declares (``Backend.worker_preload``), for a forkserver to import once."""
    out: list[str] = []
    for cls in (backend_class(m) for n in names for m in n.split("+")):
        for module in (cls.__module__, *cls.worker_preload):
            if module not in out:
                out.append(module)
    return out
