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
from .audio_integrity import TAIL_PROBE_S, declared_vs_decoded, header_truncation, short_read, tail_truncation
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
    r = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return 20.0 * math.log10(r) if r > 0 else -math.inf


def check_quality(y: np.ndarray, sr: int, *, path: str | None = None,
                  min_duration_s: float = MIN_DURATION_S, silence_dbfs: float = SILENCE_RMS_DBFS) -> None:
    """Raise the matching :class:`AudioError` for empty, non-finite, too short or silent audio."""
    if y.size == 0:
        raise EmptyFileError("the audio decodes to 0 samples", path=path)
    if not np.isfinite(y).all():
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


def _read_sndfile(path: Path, spans: list[tuple[float, float]] | None) -> tuple[list[np.ndarray], int, float, str]:
    """Read the spans (start_s, length_s) with libsndfile; ``None`` reads the whole file.

    The last item says why the file is truncated ("" when it is not; see audio_integrity).
    """
    with sf.SoundFile(str(path)) as fh:
        sr = fh.samplerate
        total = fh.frames
        duration = total / sr if total > 0 else 0.0
        truncated = header_truncation(fh.extra_info)
        if spans is None:
            y = to_mono(fh.read(dtype="float32", always_2d=True))
            return [y], sr, duration, truncated or short_read(y.size, total, total, 0, sr) or ""
        out = []
        end = 0
        for start_s, length_s in spans:
            start = min(int(round(start_s * sr)), max(total - 1, 0))
            fh.seek(start)
            asked = int(round(length_s * sr))
            out.append(to_mono(fh.read(asked, dtype="float32", always_2d=True)))
            truncated = truncated or short_read(out[-1].size, asked, total, start, sr)
            end = max(end, start + out[-1].size)
        if not truncated and total - end > TAIL_PROBE_S * sr:
            truncated = tail_truncation(fh)
        return out, sr, duration, truncated or ""


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int, str]:
    """Decode the whole file with PyAV (FFmpeg) to mono float32; the last item says why it is truncated."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a core dependency
        raise UnsupportedFormatError(f"no decoder for {path.suffix} (PyAV missing: {exc})", path=str(path)) from None
    chunks: list[np.ndarray] = []
    sr, declared, truncated = 0, None, ""
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise UnsupportedFormatError("the file holds no audio stream", path=str(path))
            stream = streams[0]
            sr = int(stream.rate or stream.codec_context.sample_rate)
            if stream.duration is not None and stream.time_base is not None:
                declared = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                declared = container.duration / av.time_base
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.error.InvalidDataError, av.error.EOFError) as exc:  # type: ignore[attr-defined]
        decoded = sum(c.size for c in chunks)
        if not sr or decoded < MIN_DURATION_S * sr:
            raise DecodeError(f"the file is corrupt or truncated ({exc.__class__.__name__})", path=str(path)) from None
        # A decoder error after enough audio: keep what decoded, say the file is cut short.
        truncated = f"the file is truncated: decoding stops at {decoded / sr:.2f} s ({exc.__class__.__name__})"
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise UnsupportedFormatError(f"FFmpeg cannot decode it ({exc})", path=str(path)) from None
    y = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if not truncated and sr:
        truncated = declared_vs_decoded(declared, y.size / sr) or ""
    return y, sr, truncated


#: decoding after a seek starts this much before the window and drops it, so the codec's
#: overlap (one AAC frame: 1024 samples) is rebuilt before the first sample kept
SEEK_PREROLL_S = 1.0


def _read_ffmpeg_spans(path: Path, policy: WindowPolicy) -> tuple[list[np.ndarray], list[float], int, float, str] | None:
    """Decode only the windows of `policy` with PyAV, seeking to each (M4A/AAC, ...).

    Returns None when the container gives no duration or cannot seek (the caller then decodes
    the whole file). The cost is per window, whatever the track's length. The last item says why
    the file is truncated ("" when it is not): a short window or an end that cannot be decoded.
    """
    import av

    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams or container.duration is None or container.duration <= 0:
            return None
        stream = streams[0]
        rate = stream.rate or stream.codec_context.sample_rate
        if not rate:
            return None
        # the stream's own duration counts the samples a full decode gives (the container's
        # may include the encoder's priming and padding)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = float(container.duration) / av.time_base
        spans = policy.starts(duration)
        if spans == [(0.0, duration)]:
            return None  # the whole file anyway
        clips: list[np.ndarray] = []
        for start_s, length_s in spans:
            from_s = max(0.0, start_s - SEEK_PREROLL_S)
            container.seek(int(from_s * av.time_base), any_frame=False, backward=True)
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
            chunks: list[np.ndarray] = []
            first: float | None = None
            need = int(round(length_s * rate))
            got = 0
            for frame in container.decode(stream):
                if first is None:
                    if frame.pts is None or frame.time_base is None:
                        return None
                    first = float(frame.pts * frame.time_base)
                    if first > start_s + 1e-3:
                        return None  # the seek overshot: decode the whole file instead
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    got += chunks[-1].size
                if first is not None and got >= need + int((start_s - first) * rate) + rate // 10:
                    break
            if first is None:
                return None
            y = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
            skip = int(round((start_s - first) * rate))
            clips.append(np.ascontiguousarray(y[skip:skip + need]))
            if clips[-1].size < need - max(1, int(rate) // 100) and start_s + length_s <= duration:
                return None  # a window inside the declared length came back short: decode it all
        truncated = _ffmpeg_tail_truncation(container, stream, int(rate), duration)
        return clips, [s for s, _ in spans], int(rate), duration, truncated


def _ffmpeg_tail_truncation(container, stream, rate: int, duration: float) -> str:
    """Decode the last seconds after a seek; the reason when the declared end cannot be reached."""
    import av

    probe_from = max(0.0, duration - TAIL_PROBE_S - SEEK_PREROLL_S)
    last = 0.0
    try:
        container.seek(int(probe_from * av.time_base), any_frame=False, backward=True)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                last = float(frame.pts * frame.time_base) + frame.samples / rate
    except (av.error.InvalidDataError, av.error.EOFError) as exc:  # type: ignore[attr-defined]
        return f"the file is truncated: decoding stops at {last:.2f} s ({exc.__class__.__name__})"
    return declared_vs_decoded(duration, last) or ""


def _decode(path: Path, policy: WindowPolicy | None) -> tuple[list[np.ndarray], list[float], int, float, str]:
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
            with sf.SoundFile(str(path)) as fh:
                duration = fh.frames / fh.samplerate if fh.frames > 0 else 0.0
            spans = policy.starts(duration) if (policy is not None and duration > 0) else None
            clips, sr, duration, truncated = _read_sndfile(path, spans)
            starts = [s for s, _ in spans] if spans else [0.0]
            if duration > 0 and sum(c.size for c in clips) > 0:
                return clips, starts, sr, duration, truncated
        except sf.LibsndfileError as exc:
            sndfile_error = exc
        except RuntimeError as exc:  # soundfile raises RuntimeError on some truncated streams
            sndfile_error = exc
    # FFmpeg path: only the windows when the container seeks, else the whole file, then cut.
    if policy is not None and sndfile_error is None:
        try:
            import av

            spans_read = _read_ffmpeg_spans(path, policy)
        except (ImportError, av.error.FFmpegError, ValueError):  # type: ignore[attr-defined]
            spans_read = None
        if spans_read is not None and all(c.size for c in spans_read[0]):
            return spans_read
    try:
        y, sr, truncated = _read_ffmpeg(path)
    except UnsupportedFormatError:
        if sndfile_error is not None:
            raise DecodeError(f"the file is corrupt or not audio ({sndfile_error})", path=str(path)) from None
        raise
    except DecodeError:
        raise
    duration = y.size / sr if sr else 0.0
    if y.size == 0:
        raise EmptyFileError("the file decodes to 0 samples", path=str(path))
    if policy is None:
        return [y], [0.0], sr, duration, truncated
    spans = policy.starts(duration)
    clips = [y[int(round(s * sr)): int(round(s * sr)) + int(round(length * sr))] for s, length in spans]
    return clips, [s for s, _ in spans], sr, duration, truncated


def load(path: str | os.PathLike, *, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file to mono float32, optionally resampled.

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

    For libsndfile formats only the windows are read (a seek per window); other formats are
    decoded whole and cut. With ``validate`` the windows are checked for non-finite samples,
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
