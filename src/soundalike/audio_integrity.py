"""Is a file complete? Cheap checks that tell a truncated file from a short one.

A truncated file (a download cut off, a copy that ran out of space) often decodes cleanly
where its analysis window lies, so decoding alone does not notice it. The rule (see
``docs/robustness.md``): a file is **truncated** when

* its header promises more audio than the file holds: libsndfile's own header log says so for
  WAV/AIFF/CAF-style containers (``data : N (should be M)``), an Ogg stream ends without its
  end-of-stream page, or
* a read inside the duration the header declares comes back short or fails (a window, or one
  probe of the last quarter second, read only when the windows stopped before the end), or
* FFmpeg reports a decoding error after at least ``MIN_DURATION_S`` decoded, or decodes
  clearly less than the container's declared duration.

Such a file is embedded from what decodes and reported with the kind ``truncated``. None of
these checks decodes a file twice: the header log is already parsed when the file is opened and
the tail probe decodes a quarter second.
"""

from __future__ import annotations

import re

import numpy as np
import soundfile as sf

__all__ = ["header_truncation", "tail_truncation", "short_read", "declared_vs_decoded", "TAIL_PROBE_S"]

#: Length of the probe read at the end of a file whose windows stop before it.
TAIL_PROBE_S = 1.0
#: A shortfall this small at the very end is codec padding, not a cut file: libsndfile counts an
#: Ogg Vorbis file's frames from its last granule position, which can lie ~0.1 s past the last
#: decoded sample (seen on an intact Debian-packaged track: 207.15 s declared, 207.02 s decoded).
TAIL_SLACK_S = 0.25

# libsndfile logs e.g. "data : 1764000 (should be 529169)" when a chunk is longer than the file.
_CHUNK_SHORT = re.compile(r"^\s*(data|SSND|ssnd|BODY|data chunk)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
# Sizes written by streaming encoders that never patched the header: not a promise of length.
_UNKNOWN_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}


def header_truncation(log: str) -> str | None:
    """The reason a file is cut short according to libsndfile's header log, else ``None``."""
    m = _CHUNK_SHORT.search(log)
    if m:
        declared, actual = int(m.group(2)), int(m.group(3))
        if declared not in _UNKNOWN_SIZES and actual < declared:
            return (f"the file is truncated: its header declares {declared} bytes of audio but it holds "
                    f"{actual} ({100.0 * actual / declared:.0f}%)")
    if "Last page lacks an end-of-stream bit" in log:
        return "the file is truncated: the Ogg stream ends without its end-of-stream page"
    return None


def short_read(got: int, asked: int, frames: int, start: int, sr: int) -> str | None:
    """Reason when a window read inside the declared length returned fewer frames than asked."""
    expected = max(0, min(asked, frames - start))
    # 10 ms of decoder slack inside the file; at the declared end, the codec's padding
    slack = int(TAIL_SLACK_S * sr) if start + asked >= frames else max(1, sr // 100)
    if expected and got < expected - slack:
        return (f"the file is truncated: its header declares {frames / sr:.2f} s but decoding stops at "
                f"{(start + got) / sr:.2f} s")
    return None


def tail_truncation(fh: sf.SoundFile) -> str | None:
    """Probe the last ``TAIL_PROBE_S`` of an open file; the reason when it cannot be read."""
    frames, sr = fh.frames, fh.samplerate
    n = min(frames, max(1, int(TAIL_PROBE_S * sr)))
    try:
        fh.seek(frames - n)
        got = fh.read(n, dtype="float32", always_2d=True).shape[0]
    except (sf.LibsndfileError, RuntimeError) as exc:
        return f"the file is truncated: its header declares {frames / sr:.2f} s but its end cannot be decoded ({exc})"
    return short_read(got, n, frames, frames - n, sr)


def declared_vs_decoded(declared_s: float | None, decoded_s: float) -> str | None:
    """Reason when FFmpeg decoded clearly less than the container declares (> 1 s and > 5%)."""
    if declared_s is None or not np.isfinite(declared_s) or declared_s <= 0:
        return None
    if declared_s - decoded_s > max(1.0, 0.05 * declared_s):
        return (f"the file is truncated: its container declares {declared_s:.2f} s but only "
                f"{decoded_s:.2f} s decode")
    return None
