"""Decoding, mono downmix, resampling and analysis windows.

Decoding tries libsndfile (via soundfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF) first, then
PyAV (FFmpeg: M4A/AAC, Opus in other containers, WMA, ...). Resampling uses soxr. Every file
problem becomes an :class:`~soundalike.errors.AudioError` subclass whose ``kind`` is what the
store records as the failure kind.

Documented limits
-----------------
``MIN_DURATION_S`` (1.0 s)
    Shorter audio is refused as too short: no backend produces a meaningful vector from it.
``SILENCE_RMS_DBFS`` (-60 dBFS)
    Audio whose RMS over the analysis window(s) is below this floor is refused as silent.
``MAX_CHANNELS`` (64), ``MAX_SAMPLE_RATE`` (768 kHz)
    More is refused (``unsupported``) before a sample is read.
``MAX_KEPT_SAMPLES`` (2**25 mono samples, 128 MiB as float32)
    What one decode keeps, all windows together: a ``full`` window (or :func:`load`) of a
    longer track stops there (12.7 min at 44.1 kHz). Decoding is bounded by the windows, never
    by what a header claims: see :mod:`soundalike.audio_readers`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ._validation import check_audio
from .audio_integrity import has_audio_signature
from .audio_readers import MAX_CHANNELS, MAX_KEPT_SAMPLES, MAX_SAMPLE_RATE, read_ffmpeg, read_sndfile
from .errors import (
    DecodeError,
    EmptyFileError,
    InvalidAudioError,
    ParameterError,
    SilentAudioError,
    TooShortError,
    UnreadableFileError,
    UnsupportedFormatError,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "UNSUPPORTED_MUSIC_EXTENSIONS",
    "MIN_DURATION_S",
    "SILENCE_RMS_DBFS",
    "WindowPolicy",
    "Windows",
    "load",
    "to_mono",
    "resample",
    "cut_windows",
    "load_windows",
    "check_quality",
    "rms_dbfs",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MAX_KEPT_SAMPLES",
]

#: File extensions scanned as audio (lower case, with the dot).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac",
     ".aif", ".aiff", ".aifc", ".wma", ".webm", ".mka", ".ape", ".wv", ".mpc", ".tta", ".caf",
     ".au", ".snd", ".amr", ".spx", ".ac3", ".dsf"}
)
#: Music files that hold no decodable audio signal (scores, tracker modules, chip tunes): a
#: scan reports them as unsupported instead of skipping them silently.
UNSUPPORTED_MUSIC_EXTENSIONS = frozenset(
    {".mid", ".midi", ".kar", ".rmi", ".mod", ".xm", ".it", ".s3m", ".sid", ".nsf", ".spc", ".vgm", ".mscz", ".musicxml"}
)
MIN_DURATION_S = 1.0
SILENCE_RMS_DBFS = -60.0

# libsndfile decodes these containers; anything else goes straight to FFmpeg.
_SNDFILE_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"})


@dataclass(frozen=True)
class WindowPolicy:
    """Which parts of a track are analysed.

    Parameters
    ----------
    kind : {"middle", "spread", "full"}
        ``middle``: one window centred in the track (the seeds' default);
        ``spread``: ``n`` windows spread evenly over the track;
        ``full``: the whole track as one window.
    length_s : float > 0
        Window length in seconds (ignored for ``full``). A track shorter than the window is
        used as it is.
    n : int > 0
        Number of windows for ``spread``.
    """

    kind: str = "middle"
    length_s: float = 30.0
    n: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("middle", "spread", "full"):
            raise ParameterError(f"window policy {self.kind!r} is not valid; choose middle, spread or full.")
        if not (self.length_s > 0 and math.isfinite(self.length_s)):
            raise ParameterError(f"window length must be a positive number of seconds, got {self.length_s!r}.")
        if self.n < 1:
            raise ParameterError(f"number of windows must be >= 1, got {self.n!r}.")

    @classmethod
    def parse(cls, text: str) -> "WindowPolicy":
        """Parse ``middle``, ``middle:30``, ``spread:3``, ``spread:3:10`` or ``full``."""
        parts = text.strip().lower().split(":")
        try:
            if parts[0] == "middle":
                return cls("middle", float(parts[1]) if len(parts) > 1 else 30.0, 1)
            if parts[0] == "spread":
                n = int(parts[1]) if len(parts) > 1 else 3
                return cls("spread", float(parts[2]) if len(parts) > 2 else 30.0, n)
            if parts[0] == "full" and len(parts) == 1:
                return cls("full", 30.0, 1)
        except ValueError:
            pass
        raise ParameterError(
            f"window policy {text!r} is not valid; use 'middle[:SECONDS]', 'spread:N[:SECONDS]' or 'full'."
        )

    def key(self) -> str:
        """Canonical text (hashed into model keys)."""
        if self.kind == "full":
            return "full"
        if self.kind == "middle":
            return f"middle:{self.length_s:g}"
        return f"spread:{self.n}:{self.length_s:g}"

    def starts(self, duration_s: float) -> list[tuple[float, float]]:
        """(start, length) in seconds of each window of a track of `duration_s`."""
        if self.kind == "full" or duration_s <= self.length_s:
            return [(0.0, duration_s)]
        free = duration_s - self.length_s
        if self.kind == "middle":
            return [(free / 2.0, self.length_s)]
        if self.n == 1:
            return [(free / 2.0, self.length_s)]
        # Evenly spaced, first at 0 and last ending at the track's end (overlap allowed when
        # the track is shorter than n windows).
        return [(free * i / (self.n - 1), self.length_s) for i in range(self.n)]


@dataclass
class Windows:
    """Decoded analysis windows of one track at one sample rate.

    Attributes
    ----------
    clips : list of np.ndarray [shape=(n_samples,), dtype=float32]
    starts_s : list of float
    sample_rate : int
    duration_s : float   duration of the whole track
    truncated : str      why the file decodes only in part ("" when complete; see audio_integrity)
    """

    clips: list[np.ndarray]
    starts_s: list[float]
    sample_rate: int
    duration_s: float
    truncated: str = ""

    def resampled(self, sample_rate: int) -> "Windows":
        if sample_rate == self.sample_rate:
            return self
        return Windows([resample(c, orig_sr=self.sample_rate, target_sr=sample_rate) for c in self.clips],
                       list(self.starts_s), sample_rate, self.duration_s, self.truncated)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels: ``(n_samples, n_channels)`` → ``(n_samples,)`` float32."""
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.mean(axis=1)
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int, quality: str = "HQ") -> np.ndarray:
    """Resample mono audio with soxr.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    orig_sr, target_sr : int > 0
    quality : soxr quality ("QQ", "LQ", "MQ", "HQ", "VHQ")
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}.")
    if orig_sr == target_sr:
        return np.ascontiguousarray(y, dtype=np.float32)
    return soxr.resample(np.asarray(y, dtype=np.float32), orig_sr, target_sr, quality=quality).astype(np.float32, copy=False)


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    # float64 sums over blocks: no float64 copy of a long window (and no BLAS call, whose
    # threads cost more than the sum on a loaded machine)
    step = 1 << 16
    total = sum(float(np.square(y[i:i + step], dtype=np.float64).sum()) for i in range(0, y.size, step))
    r = math.sqrt(total / y.size) if y.size else 0.0
    return 20.0 * math.log10(r) if r > 0 else -math.inf


def check_quality(y: np.ndarray, sr: int, *, path: str | None = None,
                  min_duration_s: float = MIN_DURATION_S, silence_dbfs: float = SILENCE_RMS_DBFS) -> None:
    """Raise the matching :class:`AudioError` for empty, non-finite, too short or silent audio."""
    if y.size == 0:
        raise EmptyFileError("the audio decodes to 0 samples", path=path)
    if not np.isfinite(np.sum(y, dtype=np.float64)):  # NaN and inf propagate; no mask array
        raise InvalidAudioError("the audio contains NaN or infinite samples", path=path)
    dur = y.shape[-1] / sr
    if dur < min_duration_s:
        raise TooShortError(f"the audio lasts {dur:.2f} s; at least {min_duration_s:g} s is needed", path=path)
    level = rms_dbfs(y)
    if level < silence_dbfs:
        shown = "-inf" if math.isinf(level) else f"{level:.1f}"
        raise SilentAudioError(f"the audio is silent (RMS {shown} dBFS, floor {silence_dbfs:g} dBFS)", path=path)


def _check_path(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UnreadableFileError("the file does not exist", path=str(path)) from None
    except OSError as exc:
        raise UnreadableFileError(f"the file cannot be read ({exc.strerror})", path=str(path)) from None
    if path.is_dir():
        raise UnreadableFileError("the path is a directory, not an audio file", path=str(path))
    if st.st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)", path=str(path))
    if not os.access(path, os.R_OK):
        raise UnreadableFileError("the file is not readable (permission denied)", path=str(path))


def _decode(path: Path, policy: WindowPolicy | None) -> tuple[list[np.ndarray], list[float], int, float, str]:
    """Decode the windows of `policy` (the whole file for ``None``): libsndfile, then FFmpeg.

    Bounded whatever the header claims (see :mod:`soundalike.audio_readers`). Bytes that no
    decoder accepts raise :class:`DecodeError`; :class:`EmptyFileError` is kept for a zero-byte
    file and for a recognised audio container that holds no audio frames.
    """
    _check_path(path)
    ext = path.suffix.lower()
    if ext and ext not in AUDIO_EXTENSIONS:
        raise UnsupportedFormatError(
            f"'{ext}' is not an audio format soundalike reads (supported: {', '.join(sorted(AUDIO_EXTENSIONS))})",
            path=str(path),
        )
    sndfile_error: Exception | None = None
    if ext in _SNDFILE_EXTENSIONS or not ext:
        try:
            clips, starts, sr, duration, truncated = read_sndfile(path, policy)
            if duration > 0 and sum(c.size for c in clips) > 0:
                return clips, starts, sr, duration, truncated
        except (sf.LibsndfileError, RuntimeError) as exc:  # RuntimeError: some cut streams
            sndfile_error = exc
    try:
        clips, starts, sr, duration, truncated = read_ffmpeg(path, policy)
    except EmptyFileError:
        if has_audio_signature(path):
            raise  # a real container without audio frames
        raise DecodeError("no decoder accepts the file: it is not audio, or it is damaged", path=str(path)) from None
    except UnsupportedFormatError as exc:
        if sndfile_error is None and (has_audio_signature(path) or "holds no audio" not in str(exc)):
            raise  # e.g. a video without sound, 100 channels
        why = f" (libsndfile: {sndfile_error})" if sndfile_error is not None else ""
        raise DecodeError(f"no decoder accepts the file: it is not audio, or it is damaged{why}",
                          path=str(path)) from None
    if sum(c.size for c in clips) == 0:
        raise EmptyFileError("the file decodes to 0 samples", path=str(path))
    return clips, starts, sr, duration, truncated


def load(path: str | os.PathLike, *, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file to mono float32, optionally resampled.

    At most ``MAX_KEPT_SAMPLES`` samples are decoded (the start of a longer file).

    Parameters
    ----------
    path : path-like
    sr : int, optional
        Target sample rate; ``None`` keeps the file's rate.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
    sr : int

    Raises
    ------
    DecodeError, EmptyFileError, UnreadableFileError, UnsupportedFormatError
    """
    clips, _, native_sr, _, _ = _decode(Path(path), None)
    y = clips[0]
    if sr is not None:
        y = resample(y, orig_sr=native_sr, target_sr=sr)
        return y, sr
    return y, native_sr


def cut_windows(y: np.ndarray, sr: int, *, policy: WindowPolicy) -> Windows:
    """Cut analysis windows from decoded mono audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    sr : int
    policy : WindowPolicy

    Returns
    -------
    Windows
    """
    y = check_audio(y, ndim=1)
    duration = y.size / sr
    spans = policy.starts(duration)
    clips = [np.ascontiguousarray(y[int(round(s * sr)): int(round(s * sr)) + int(round(length * sr))], dtype=np.float32)
             for s, length in spans]
    return Windows(clips, [s for s, _ in spans], sr, duration)


def load_windows(path: str | os.PathLike, *, policy: WindowPolicy, sr: int | None = None,
                 validate: bool = True) -> Windows:
    """Decode only what `policy` needs from a file and check it.

    Only the windows are decoded (a seek per window, or a stream up to the last window when the
    file cannot seek or its length is unknown), whatever the header claims. With ``validate`` the windows are checked for non-finite samples,
    silence (``SILENCE_RMS_DBFS``) and a minimum duration (``MIN_DURATION_S``).

    Returns
    -------
    Windows
        At the file's own rate, or at `sr` when given.
    """
    p = Path(path)
    clips, starts, native_sr, duration, truncated = _decode(p, policy)
    if validate:
        joined = np.concatenate(clips) if len(clips) > 1 else clips[0]
        if duration < MIN_DURATION_S or joined.size / native_sr < MIN_DURATION_S:
            if joined.size == 0:
                raise EmptyFileError("the file decodes to 0 samples", path=str(p))
            raise TooShortError(
                f"the audio lasts {max(duration, joined.size / native_sr):.2f} s; at least {MIN_DURATION_S:g} s is needed",
                path=str(p),
            )
        check_quality(joined, native_sr, path=str(p))
    win = Windows(clips, starts, native_sr, duration, truncated)
    return win.resampled(sr) if sr is not None else win
