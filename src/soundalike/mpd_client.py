"""Fill MPD's queue with tracks that sound like the song playing (python-mpd2, real MPD).

``queue_similar`` appends tracks once; ``radio`` keeps the queue topped up as songs play (as
blissify and mpd-sima do) until stopped. MPD names songs by their path relative to its
``music_directory``; a stored track maps to that name through ``music_dir`` (``--music-dir``),
or, when not given, through the suffix of the stored path (the playing song then tells where
MPD's music directory is in the store's paths).

Connection settings: flag, else ``MPD_HOST`` (``password@host``, or a socket path) and
``MPD_PORT``, else ``localhost:6600``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import ParameterError, SoundalikeError, UnknownTrackError
from .playlist import DEFAULT_ARTIST_GAP, make_playlist
from .store import Store, Track

__all__ = ["MpdError", "MpdSettings", "connect", "TrackMap", "queue_similar", "radio", "QueueResult"]

log = logging.getLogger(__name__)


class MpdError(SoundalikeError):
    """MPD cannot be reached, refuses the password, or answers an error."""


@dataclass(frozen=True)
class MpdSettings:
    host: str = "localhost"
    port: int = 6600
    password: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def resolve(cls, host: str | None = None, port: int | None = None, password: str | None = None) -> "MpdSettings":
        """Flags over ``MPD_HOST`` / ``MPD_PORT`` over the defaults (``password@host`` in MPD_HOST)."""
        env_host = os.environ.get("MPD_HOST") or None
        env_pw = None
        if env_host and "@" in env_host and not env_host.startswith("@"):  # "@name" is an abstract socket
            env_pw, env_host = env_host.split("@", 1)
        env_port = os.environ.get("MPD_PORT")
        try:
            eport = int(env_port) if env_port else None
        except ValueError:
            raise ParameterError(f"MPD_PORT={env_port!r} is not a port number; set it to e.g. 6600.") from None
        return cls(host=host or env_host or "localhost", port=port or eport or 6600,
                   password=password if password is not None else env_pw)

    @property
    def where(self) -> str:
        return self.host if self.host.startswith(("/", "@")) else f"{self.host}:{self.port}"


def connect(settings: MpdSettings):
    """A connected, authenticated ``mpd.MPDClient``; one-line `MpdError` naming the fix otherwise."""
    try:
        import mpd
    except ImportError:
        raise MpdError("The MPD commands need python-mpd2; install it with `pip install 'soundalike[mpd]'`.") from None
    client = mpd.MPDClient()
    client.timeout = settings.timeout_s
    try:
        client.connect(settings.host, settings.port)
    except (OSError, mpd.ConnectionError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MpdError(f"Cannot reach MPD at {settings.where} ({reason}); start MPD, or pass --host/--port "
                       "(or set MPD_HOST/MPD_PORT).") from None
    try:
        if settings.password:
            client.password(settings.password)
        client.status()
    except mpd.CommandError as exc:
        client.disconnect()
        text = str(exc)
        if "incorrect password" in text:
            raise MpdError(f"MPD at {settings.where} refused the password; pass the right --password "
                           "(or MPD_HOST=password@host).") from None
        if "permission" in text:
            raise MpdError(f"MPD at {settings.where} needs a password for this; pass --password "
                           "(or MPD_HOST=password@host).") from None
        raise MpdError(f"MPD at {settings.where} answered: {text}") from None
    return client


class TrackMap:
    """Stored tracks ↔ MPD song names (paths relative to MPD's music directory)."""

    def __init__(self, store: Store, music_dir: str | os.PathLike | None = None) -> None:
        self.tracks = {t.track_id: t for t in store.tracks()}
        self.by_path: dict[str, str] = {}
        for tid, paths in store.recorded_paths().items():
            for p in paths:
                self.by_path.setdefault(os.path.normpath(p), tid)
        self.music_dir = os.path.normpath(os.path.abspath(os.path.expanduser(music_dir))) if music_dir else None

    def track_of(self, mpd_file: str) -> str | None:
        """The stored track id of an MPD song name, or None."""
        if self.music_dir is not None:
            return self.by_path.get(os.path.normpath(os.path.join(self.music_dir, mpd_file)))
        suffix = os.sep + os.path.normpath(mpd_file)
        hits = {tid for p, tid in self.by_path.items() if p.endswith(suffix)}
        if len(hits) == 1:
            tid = hits.pop()
            p = next(p for p, t in self.by_path.items() if t == tid and p.endswith(suffix))
            self.music_dir = p[: -len(suffix)] or os.sep  # learnt from the playing song
            return tid
        return None

    def mpd_file(self, track: Track) -> str | None:
        """The MPD song name of a stored track (None when it lies outside MPD's music directory)."""
        if self.music_dir is None:
            return None
        p = os.path.normpath(track.path)
        if not p.startswith(self.music_dir.rstrip(os.sep) + os.sep):
            return None
        return str(PurePosixPath(*Path(os.path.relpath(p, self.music_dir)).parts))


@dataclass
class QueueResult:
    playing: str                    # MPD song name playing now
    seed_track_id: str
    added: list[str] = field(default_factory=list)     # MPD song names appended
    skipped_outside: int = 0        # similar tracks that are not in MPD's music directory


def _not_in_store(mpd_file: str, music_dir: str | None) -> UnknownTrackError:
    where = f"under --music-dir {music_dir}" if music_dir else "(pass --music-dir, MPD's music_directory, if MPD sees other paths)"
    return UnknownTrackError(f"The song MPD is playing, {mpd_file!r}, is not in the soundalike store {where}; "
                             "add it with `soundalike ingest MUSIC_DIR` then `soundalike embed`.")


def queue_similar(client, store: Store, *, n: int = 20, music_dir: str | os.PathLike | None = None,
                  artist_gap: int = DEFAULT_ARTIST_GAP, backend: str | None = None,
                  track_map: TrackMap | None = None) -> QueueResult:
    """Append `n` tracks that sound like the song MPD is playing (none already queued).

    Raises
    ------
    MpdError
        Nothing is playing.
    UnknownTrackError
        The playing song is not in the store (the message says how to add it).
    """
    tmap = track_map or TrackMap(store, music_dir)
    song = client.currentsong()
    if not song or "file" not in song:
        raise MpdError("MPD is not playing anything; start a song, then run `soundalike mpd queue` again.")
    seed = tmap.track_of(song["file"])
    if seed is None:
        raise _not_in_store(song["file"], tmap.music_dir)
    queued = {tmap.track_of(s["file"]) for s in client.playlistinfo() if "file" in s} - {None}
    pl = make_playlist(store, [seed], n=n, artist_gap=artist_gap, backend=backend, exclude=sorted(queued))
    result = QueueResult(song["file"], seed)
    for t in pl.tracks:
        name = tmap.mpd_file(tmap.tracks[t.track_id])
        if name is None:
            result.skipped_outside += 1
            continue
        client.add(name)
        result.added.append(name)
    return result


def _remaining(client) -> int:
    """Songs queued after the one playing."""
    st = client.status()
    total = int(st.get("playlistlength", 0))
    pos = int(st["song"]) if "song" in st else -1
    return total - pos - 1


def radio(client, store: Store, *, n: int = 10, keep: int = 3, music_dir: str | os.PathLike | None = None,
          artist_gap: int = DEFAULT_ARTIST_GAP, backend: str | None = None, stop: threading.Event | None = None,
          max_topups: int | None = None, poll_s: float = 0.5,
          on_topup: Callable[[QueueResult], None] | None = None) -> int:
    """Keep MPD's queue topped up: whenever fewer than `keep` songs follow the playing one, append
    `n` that sound like it. Checks MPD's status every `poll_s` seconds; runs until `stop` is set,
    `max_topups` top-ups were made, or the connection ends. Returns the number of top-ups.
    """
    stop = stop or threading.Event()
    tmap = TrackMap(store, music_dir)
    topups = 0
    while not stop.is_set():
        if client.currentsong() and _remaining(client) < keep:
            try:
                res = queue_similar(client, store, n=n, artist_gap=artist_gap, backend=backend, track_map=tmap)
            except UnknownTrackError as exc:  # a song outside the store plays: say so, wait for the next
                log.warning("%s", exc)
            else:
                topups += 1
                if on_topup:
                    on_topup(res)
                if max_topups is not None and topups >= max_topups:
                    break
                continue  # check again at once: the top-up may not have been enough
        _wait_for_change(client, stop, poll_s)
    return topups


def _wait_for_change(client, stop: threading.Event, poll_s: float) -> None:
    """Wait until the playing song or the queue changes (MPD's status is polled), or `stop` is set.

    Polling keeps the connection usable for commands at any moment; python-mpd2 3.x has no
    non-blocking ``idle``.
    """
    def mark() -> tuple:
        st = client.status()
        return st.get("songid"), st.get("playlist"), st.get("state")

    before = mark()
    while not stop.wait(poll_s):
        if mark() != before:
            return
