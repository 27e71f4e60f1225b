"""Service settings: one frozen object, built from arguments, else ``SOUNDALIKE_*`` variables.

Precedence follows the CLI rule: an explicit argument > environment variable > default.
Everything that widens what the service exposes (write endpoints, CORS, Subsonic) is off
unless configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ParameterError

__all__ = ["Settings", "DEFAULT_MAX_UPLOAD_BYTES"]

#: Default cap on an uploaded clip (``POST /api/query``): 20 MB holds ~10 minutes of MP3 or
#: ~2 minutes of 16-bit stereo WAV, more than a query needs.
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in (_env(name) or "").split(",") if v.strip())


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParameterError(f"{name}={raw!r} is not an integer; set it to a whole number.") from None


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(f"{name}={raw!r} is not a number; set it to a number of seconds.") from None


@dataclass(frozen=True)
class Settings:
    """What the service serves and who may use it.

    Parameters
    ----------
    db : path
        The library database (opened read-only by the service).
    backend : str, optional
        Backend whose vectors answer similarity queries; default: the store's best model
        (``query.pick_model``).
    calibration : str
        Overrides every backend's validated default calibration (``query.Engine``).
    max_upload_bytes : int > 0
        Largest accepted upload for ``POST /api/query`` (413 above it).
    api_token : str, optional
        Bearer token required by endpoints that change the library (rescan); those
        endpoints answer 403 when it is unset. ``SOUNDALIKE_API_TOKEN``.
    library_root : path, optional
        Folder that ``POST /api/admin/rescan`` ingests. ``SOUNDALIKE_LIBRARY_ROOT``.
    library_manifest : path, optional
        Manifest (CSV/YAML) the rescan passes to ``ingest`` so artists, titles and genres stay
        as the manifest says. ``SOUNDALIKE_LIBRARY_MANIFEST``.
    cors_origins : tuple of str
        Origins allowed by CORS; empty (the default) adds no CORS headers at all.
        ``SOUNDALIKE_CORS_ORIGINS`` (comma-separated).
    subsonic_user, subsonic_password, api_key : str, optional
        The one Subsonic account (``SOUNDALIKE_SUBSONIC_USER`` / ``_PASSWORD``) and an
        OpenSubsonic API key (``SOUNDALIKE_API_KEY``). With none of them set, ``/rest`` is off.
    hybrid_config : path, optional
        YAML of the hybrid blend (weights, CSVs) used when a query asks for signals beyond the
        audio ones. ``SOUNDALIKE_HYBRID_CONFIG``.
    classifier : path, optional
        A genre model from ``soundalike classify train`` (skops); ``POST /api/query`` then
        predicts the clip's genre. ``SOUNDALIKE_CLASSIFIER``.
    precompute : bool
        Build the default similarity model during startup (else on first use).
    reload_interval_s : float
        How often the service checks whether another process committed to the store (an
        ``embed`` beside it) and reloads once the writes are quiet; 0 turns it off.
        ``SOUNDALIKE_RELOAD_S`` (default 30).
    watch : bool
        Run the library watcher on ``library_root`` as the store's one writer; each commit
        reloads the service at once (``serve --watch``).
    watch_settle_s, watch_rescan_s : float
        The watcher's settle time and full-rescan interval (``soundalike.watch.WatchOptions``).
    public : bool
        Serve ``/api`` and the page without credentials even when some are configured (``/rest``
        keeps Subsonic's own). Off by default; ``serve --public`` / ``SOUNDALIKE_PUBLIC=1``.
    allowed_hosts : tuple of str
        Host names (besides loopback names and IP literals) that requests may name in ``Host``,
        e.g. the reverse proxy's public name; ``*`` turns the check off (``SOUNDALIKE_ALLOWED_HOSTS``).
    trusted_proxies : tuple of str
        Addresses (or CIDR networks) of reverse proxies whose ``X-Forwarded-For``/``-Proto`` are
        believed; from anyone else they are ignored (``SOUNDALIKE_TRUSTED_PROXIES``).
    header_timeout_s, body_timeout_s : float
        Longest time a client may take to send a request's headers, and then its body
        (``serve`` only: enforced by :mod:`soundalike.serve.server`).
    max_connections, max_connections_per_client : int
        Open connections the server keeps at most, in all and per client address; more are closed
        at once.
    login_free_failures : int
        Failed logins a client may make before each further attempt must wait (1 s, doubling up
        to :data:`~soundalike.serve.access.MAX_LOGIN_DELAY_S`).
    """

    db: Path
    backend: str | None = None
    calibration: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    api_token: str | None = None
    library_root: Path | None = None
    library_manifest: Path | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    subsonic_user: str | None = None
    subsonic_password: str | None = None
    api_key: str | None = None
    hybrid_config: Path | None = None
    classifier: Path | None = None
    precompute: bool = True
    max_concurrent_queries: int = 2
    reload_interval_s: float = 30.0
    watch: bool = False
    watch_settle_s: float = 2.0
    watch_rescan_s: float = 3600.0
    public: bool = False
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 256
    max_connections_per_client: int = 32
    login_free_failures: int = 5

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0:
            raise ParameterError(f"max_upload_bytes must be > 0, got {self.max_upload_bytes}.")
        if self.max_concurrent_queries <= 0:
            raise ParameterError(f"max_concurrent_queries must be > 0, got {self.max_concurrent_queries}.")
        if self.watch and self.library_root is None:
            raise ParameterError("watch needs the library folder: pass --library DIR (or SOUNDALIKE_LIBRARY_ROOT).")
        if (self.subsonic_user is None) != (self.subsonic_password is None):
            raise ParameterError(
                "Subsonic needs both SOUNDALIKE_SUBSONIC_USER and SOUNDALIKE_SUBSONIC_PASSWORD (only one is set); "
                "set both, or neither and use SOUNDALIKE_API_KEY."
            )
        for name in ("header_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be > 0 seconds, got {getattr(self, name)}.")
        if self.max_connections <= 0 or self.max_connections_per_client <= 0:
            raise ParameterError(f"max_connections ({self.max_connections}) and max_connections_per_client "
                                 f"({self.max_connections_per_client}) must be > 0.")
        from ipaddress import ip_network

        for proxy in self.trusted_proxies:
            try:
                ip_network(proxy, strict=False)
            except ValueError:
                raise ParameterError(f"trusted proxy {proxy!r} is not an IP address or network (e.g. 10.0.0.2, "
                                     "172.16.0.0/12); set SOUNDALIKE_TRUSTED_PROXIES to addresses.") from None

    @property
    def credentials_configured(self) -> bool:
        """True when any credential is set: a Subsonic account, an API key or the write token."""
        return bool(self.subsonic_user or self.api_key or self.api_token)

    @property
    def auth_required(self) -> bool:
        """True when ``/api`` and the page need credentials (some configured and not ``public``)."""
        return self.credentials_configured and not self.public

    @property
    def subsonic_enabled(self) -> bool:
        """True when a Subsonic account or an API key is configured."""
        return bool(self.subsonic_user or self.api_key)

    @classmethod
    def from_env(cls, db: str | os.PathLike | None = None, **overrides) -> "Settings":
        """Settings from ``SOUNDALIKE_*`` variables; keyword arguments that are not None win."""
        from ..store import default_db_path

        origins = _env_list("SOUNDALIKE_CORS_ORIGINS")
        root = _env("SOUNDALIKE_LIBRARY_ROOT")
        hybrid = _env("SOUNDALIKE_HYBRID_CONFIG")
        manifest = _env("SOUNDALIKE_LIBRARY_MANIFEST")
        clf = _env("SOUNDALIKE_CLASSIFIER")
        base = cls(
            db=Path(db).expanduser() if db is not None else default_db_path(),
            backend=_env("SOUNDALIKE_SERVE_BACKEND"),
            calibration=_env("SOUNDALIKE_SERVE_CALIBRATION"),
            max_upload_bytes=_env_int("SOUNDALIKE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            api_token=_env("SOUNDALIKE_API_TOKEN"),
            library_root=Path(root).expanduser() if root else None,
            library_manifest=Path(manifest).expanduser() if manifest else None,
            cors_origins=origins,
            subsonic_user=_env("SOUNDALIKE_SUBSONIC_USER"),
            subsonic_password=_env("SOUNDALIKE_SUBSONIC_PASSWORD"),
            api_key=_env("SOUNDALIKE_API_KEY"),
            hybrid_config=Path(hybrid).expanduser() if hybrid else None,
            classifier=Path(clf).expanduser() if clf else None,
            reload_interval_s=_env_float("SOUNDALIKE_RELOAD_S", 30.0),
            public=(_env("SOUNDALIKE_PUBLIC") or "0").strip().lower() in ("1", "true", "yes", "on"),
            allowed_hosts=_env_list("SOUNDALIKE_ALLOWED_HOSTS"),
            trusted_proxies=_env_list("SOUNDALIKE_TRUSTED_PROXIES"),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given) if given else base
