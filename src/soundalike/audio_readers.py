"""Bounded readers: decode only the analysis windows, whatever a file's header claims.

Every decode (a library file, an uploaded clip) goes through :func:`read_sndfile` or
:func:`read_ffmpeg`, which keep memory independent of the file's length, channels and rate:

* the channel count and sample rate are checked against ``MAX_CHANNELS`` and
  ``MAX_SAMPLE_RATE`` before any sample is read;
* samples are read in blocks of at most ``BLOCK_BYTES`` and mixed to mono block by block, so a
  many-channel file never exists as one interleaved array;
* only the samples inside the windows are kept (at most ``MAX_KEPT_SAMPLES`` per file: a
  ``full`` window or many ``spread`` windows stop there), and decoding stops after the last one;
* a file whose length is unknown (a live WebM, a header that lies) is measured by reading its
  packets without decoding them, then decoded as a stream up to its last window.

Both readers return ``(clips, starts_s, sample_rate, duration_s, truncated)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from .audio_integrity import (
    TAIL_PROBE_S,
    declared_vs_decoded,
    header_truncation,
    ogg_scan,
    short_read,
    tail_truncation,
)
from .errors import DecodeError, EmptyFileError, UnsupportedFormatError

if TYPE_CHECKING:  # audio.py imports this module
    from .audio import WindowPolicy

__all__ = ["MAX_CHANNELS", "MAX_SAMPLE_RATE", "MAX_KEPT_SAMPLES", "BLOCK_BYTES", "SEEK_PREROLL_S",
           "plan_spans", "read_sndfile", "read_ffmpeg", "stream_ffmpeg"]

#: More channels than this is not music (7th-order ambisonics has 64): refused before reading.
MAX_CHANNELS = 64
#: The highest sample rate decoded (DXD and 768 kHz PCM); higher is refused before reading.
MAX_SAMPLE_RATE = 768_000
#: Mono samples kept per file, all windows together (128 MiB as float32: 12.7 min at 44.1 kHz).
MAX_KEPT_SAMPLES = 1 << 25
#: Interleaved float32 bytes read at once before the mono mix.
BLOCK_BYTES = 4 << 20
#: decoding after a seek starts this much before the window and drops it, so the codec's
#: overlap (one AAC frame: 1024 samples) is rebuilt before the first sample kept
SEEK_PREROLL_S = 1.0

Decoded = tuple[list[np.ndarray], list[float], int, float, str]
Spans = list[tuple[float, float]]


def check_layout(channels: int, rate: int, path: Path) -> None:
    """Refuse a channel count or sample rate no analysis needs, before anything is allocated."""
    if rate <= 0 or channels <= 0:
        raise DecodeError(f"the file declares {channels} channels at {rate} Hz: not a usable audio stream",
                          path=str(path))
    if channels > MAX_CHANNELS:
        raise UnsupportedFormatError(f"the file has {channels} channels; soundalike decodes at most {MAX_CHANNELS}",
                                     path=str(path))
    if rate > MAX_SAMPLE_RATE:
        raise UnsupportedFormatError(f"the file's sample rate is {rate} Hz; soundalike decodes at most "
                                     f"{MAX_SAMPLE_RATE} Hz", path=str(path))


def plan_spans(policy: "WindowPolicy | None", duration_s: float, sr: int) -> Spans:
    """The windows of `policy` (the whole track for ``None``), cut to ``MAX_KEPT_SAMPLES`` in all."""
    spans = [(0.0, duration_s)] if policy is None else policy.starts(duration_s)
    budget = MAX_KEPT_SAMPLES / sr
    out: Spans = []
    for start, length in spans:
        if budget <= 0:
            break
        out.append((start, min(length, budget)))
        budget -= length
    return out


class _Collector:
    """Copies the samples of a mono stream that fall inside `spans` into preallocated clips."""

    def __init__(self, spans: Spans, sr: int, origin_s: float = 0.0) -> None:
        # sample positions relative to the stream's first sample, which lies at `origin_s`
        self.bounds = [(int(round((s - origin_s) * sr)), int(round((s - origin_s) * sr)) + int(round(n * sr)))
                       for s, n in spans]
        self.clips = [np.zeros(b - a, np.float32) for a, b in self.bounds]
        self.filled = [0] * len(spans)
        self.pos = 0
        self.end = max((b for _, b in self.bounds), default=0)

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    def feed(self, y: np.ndarray) -> None:
        lo, hi = self.pos, self.pos + y.size
        for i, (a, b) in enumerate(self.bounds):
            s, e = max(a, lo), min(b, hi)
            if s < e:
                self.clips[i][s - a:e - a] = y[s - lo:e - lo]
                self.filled[i] = max(self.filled[i], e - a)
        self.pos = hi

    def result(self) -> list[np.ndarray]:
        return [c[:n] if n < c.size else c for c, n in zip(self.clips, self.filled)]


def _read_mono(fh: sf.SoundFile, frames: int) -> np.ndarray:
    """Read up to `frames` frames from the current position, mixed to mono block by block."""
    out = np.empty(max(frames, 0), np.float32)
    block = max(1024, BLOCK_BYTES // (4 * fh.channels))
    got = 0
    while got < frames:
        y = fh.read(min(block, frames - got), dtype="float32", always_2d=True)
        if not len(y):
            break
        out[got:got + len(y)] = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
        got += len(y)
    return out[:got]


def read_sndfile(path: Path, policy: "WindowPolicy | None") -> Decoded:
    """Read the windows of `policy` (the whole file for ``None``) with libsndfile, bounded.

    Returns empty clips and duration 0 when libsndfile reads no frames (the caller tries FFmpeg).
    An Ogg file is first scanned page by page: a cut last page or a missing end-of-stream page
    makes it truncated, its duration is what the complete pages hold (libsndfile's frame count
    of a cut Ogg file can be meaningless), and it is read as a stream without seeking.
    """
    scan = ogg_scan(path)
    with sf.SoundFile(str(path)) as fh:
        sr, total = fh.samplerate, fh.frames
        check_layout(fh.channels, sr, path)
        truncated = header_truncation(fh.extra_info) or ""
        sequential = False
        if scan is not None and scan.seconds is not None:
            pages = int(round(scan.seconds * sr))
            if scan.truncated or total <= 0 or total > pages + TAIL_PROBE_S * sr:
                total, sequential = pages, True
            truncated = scan.truncated or truncated
        if total <= 0:
            return [], [], sr, 0.0, truncated
        duration = total / sr
        spans = plan_spans(policy, duration, sr)
        if sequential:
            col = _Collector(spans, sr)
            block = max(1024, BLOCK_BYTES // (4 * fh.channels))
            try:
                while not col.done:
                    y = _read_mono(fh, block)
                    if not y.size:
                        break
                    col.feed(y)
            except (sf.LibsndfileError, RuntimeError):
                pass  # the cut: what decoded before it is kept
            clips = col.result()
            return clips, [s for s, _ in spans], sr, duration, truncated
        clips, end = [], 0
        for start_s, length_s in spans:
            start = min(int(round(start_s * sr)), max(total - 1, 0))
            fh.seek(start)
            asked = int(round(length_s * sr))
            clips.append(_read_mono(fh, asked))
            truncated = truncated or short_read(clips[-1].size, asked, total, start, sr) or ""
            end = max(end, start + clips[-1].size)
        if not truncated and total - end > TAIL_PROBE_S * sr:
            truncated = tail_truncation(fh) or ""
        return clips, [s for s, _ in spans], sr, duration, truncated


# --- FFmpeg (PyAV) -------------------------------------------------------------------------
def _audio_stream(container, path: Path):
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        raise UnsupportedFormatError("the file holds no audio stream", path=str(path))
    stream = streams[0]
    rate = int(stream.rate or stream.codec_context.sample_rate or 0)
    channels = int(getattr(stream.codec_context, "channels", 0) or stream.codec_context.layout.nb_channels or 0)
    check_layout(channels, rate, path)
    return stream, rate


def _declared_s(container, stream) -> float | None:
    import av

    # the stream's own duration counts the samples a full decode gives (the container's may
    # include the encoder's priming and padding)
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def _demux_s(container, stream) -> tuple[float | None, int]:
    """(seconds the packets span, number of packets), read without decoding anything."""
    first = last = None
    n = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        n += 1
        if packet.pts is None or packet.time_base is None:
            continue
        t0 = float(packet.pts * packet.time_base)
        t1 = t0 + float((packet.duration or 0) * packet.time_base)
        first = t0 if first is None else min(first, t0)
        last = t1 if last is None else max(last, t1)
    if last is None or last <= 0:
        return None, n
    return last - max(first or 0.0, 0.0), n


def _seek_spans(container, stream, rate: int, duration: float, spans: Spans) -> list[np.ndarray] | None:
    """Decode each span after a seek; ``None`` when the container cannot seek to it."""
    import av

    clips = []
    for start_s, length_s in spans:
        from_s = max(0.0, start_s - SEEK_PREROLL_S)
        container.seek(int(from_s * av.time_base), any_frame=False, backward=True)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        col: _Collector | None = None
        for frame in container.decode(stream):
            if col is None:
                if frame.pts is None or frame.time_base is None:
                    return None
                first = float(frame.pts * frame.time_base)
                if first > start_s + 1e-3:
                    return None  # the seek overshot
                col = _Collector([(start_s, length_s)], rate, origin_s=first)
            for out in resampler.resample(frame):
                col.feed(out.to_ndarray().reshape(-1))
            if col.pos >= col.end + rate // 10:
                break
        if col is None:
            return None
        clips.append(col.result()[0])
        if clips[-1].size < int(round(length_s * rate)) - max(1, rate // 100) and start_s + length_s <= duration:
            return None  # a window inside the length came back short: decode it as a stream
    return clips


def _tail_truncation(container, stream, rate: int, duration: float) -> str:
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


def stream_ffmpeg(path: Path, spans: Spans | None, rate: int) -> tuple[list[np.ndarray], int, str]:
    """Decode from the start, keeping only `spans` (``None``: nothing, just count).

    Returns the clips, the samples decoded and the decoder's error name ("" when it reached the
    end or stopped after the last span).
    """
    import av

    col = _Collector(spans or [], rate)
    error = ""
    with av.open(str(path)) as container:
        stream, _ = _audio_stream(container, path)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    col.feed(out.to_ndarray().reshape(-1))
                if spans is not None and col.done:
                    break
            else:
                for out in resampler.resample(None):
                    col.feed(out.to_ndarray().reshape(-1))
        except (av.error.InvalidDataError, av.error.EOFError) as exc:  # type: ignore[attr-defined]
            error = exc.__class__.__name__
    return col.result(), col.pos, error


def read_ffmpeg(path: Path, policy: "WindowPolicy | None") -> Decoded:
    """Read the windows of `policy` (the whole file for ``None``) with PyAV (FFmpeg), bounded.

    With a declared duration the windows are read after a seek each. Otherwise, or when the
    seek fails or a window comes back short, the packets are counted without decoding to find
    the real length, and the file is decoded as a stream up to its last window.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream, rate = _audio_stream(container, path)
            declared = _declared_s(container, stream)
            if declared and policy is not None:
                spans = plan_spans(policy, declared, rate)
                if spans != [(0.0, declared)]:
                    clips = _seek_spans(container, stream, rate, declared, spans)
                    if clips is not None and all(c.size for c in clips):
                        truncated = _tail_truncation(container, stream, rate, declared)
                        return clips, [s for s, _ in spans], rate, declared, truncated
        with av.open(str(path)) as container:
            stream, rate = _audio_stream(container, path)
            held, n_packets = _demux_s(container, stream)
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise DecodeError(f"no decoder accepts the file: it is not audio, or it is damaged ({exc})",
                          path=str(path)) from None
    if n_packets == 0:
        raise EmptyFileError("the file holds no audio frames", path=str(path))
    if held is None:  # packets without timestamps: count the samples once, keeping none
        _, n, _ = stream_ffmpeg(path, None, rate)
        held = n / rate
    spans = plan_spans(policy, held, rate)
    if policy is not None and spans != [(0.0, held)] and (declared is None or abs(declared - held) > 1.0):
        try:  # now that the real length is known, a seek may reach the windows (Matroska without cues)
            with av.open(str(path)) as container:
                stream, _ = _audio_stream(container, path)
                clips = _seek_spans(container, stream, rate, held, spans)
        except (av.error.InvalidDataError, av.error.EOFError):  # type: ignore[attr-defined]
            clips = None
        if clips is not None and all(c.size for c in clips):
            return clips, [s for s, _ in spans], rate, held, declared_vs_decoded(declared, held) or ""
    try:
        clips, decoded, error = stream_ffmpeg(path, spans, rate)
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise DecodeError(f"no decoder accepts the file: it is not audio, or it is damaged ({exc})",
                          path=str(path)) from None
    if decoded == 0:
        raise DecodeError(f"no decoder accepts the file: its {n_packets} packets decode to no audio "
                          f"({error or 'no frames'})", path=str(path))
    truncated = ""
    if error:
        if decoded < rate:  # less than a second before the decoder gave up
            raise DecodeError(f"the file is corrupt or truncated: decoding stops at {decoded / rate:.2f} s ({error})",
                              path=str(path))
        truncated = f"the file is truncated: decoding stops at {decoded / rate:.2f} s ({error})"
        if decoded / rate < held:
            held = decoded / rate
            if any(c.size < n * rate - rate // 100 for c, (_, n) in zip(clips, spans)):
                # the windows were placed beyond the cut: place them in what decodes
                spans = plan_spans(policy, held, rate)
                clips, _, _ = stream_ffmpeg(path, spans, rate)
    else:
        truncated = declared_vs_decoded(declared, held) or ""
    return clips, [s for s, _ in spans], rate, held, truncated
