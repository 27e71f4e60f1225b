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
  clearly less than the container's declared duration, or
* an Ogg file's last page is cut off (even one whose header still carries the end-of-stream
  flag) or the stream ends without its end-of-stream page: :func:`ogg_scan` walks the page
  headers (no decoding) and gives the duration the complete pages hold, which is the file's
  duration from then on (libsndfile's frame count of a cut Ogg file can be meaningless).

Such a file is embedded from what decodes and reported with the kind ``truncated``. None of
these checks decodes a file twice: the header log is already parsed when the file is opened and
the tail probe decodes a quarter second.

:func:`has_audio_signature` tells a recognised audio container that holds no frames (``empty``)
from bytes no decoder accepts (``decode``).
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["header_truncation", "tail_truncation", "short_read", "declared_vs_decoded", "TAIL_PROBE_S",
           "OggScan", "ogg_scan", "has_audio_signature"]

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


@dataclass(frozen=True)
class OggScan:
    """What the pages of an Ogg file hold.

    Attributes
    ----------
    seconds : float or None   audio the complete pages hold (None: codec not Vorbis/Opus/FLAC)
    truncated : str           why the stream is cut short ("" when it ends with a complete
                              end-of-stream page)
    """

    seconds: float | None
    truncated: str


def _ogg_rate(payload: bytes) -> tuple[int, int] | None:
    """(granule rate, pre-skip) from the first packet of a Vorbis, Opus or FLAC stream."""
    if payload[:7] == b"\x01vorbis" and len(payload) >= 16:
        return int.from_bytes(payload[12:16], "little"), 0
    if payload[:8] == b"OpusHead" and len(payload) >= 12:
        return 48000, int.from_bytes(payload[10:12], "little")  # Opus granules count 48 kHz samples
    if payload[:5] == b"\x7fFLAC" and len(payload) >= 30:  # mapping header + STREAMINFO
        return int.from_bytes(payload[27:30], "big") >> 4, 0
    return None


def ogg_scan(path: str | Path) -> OggScan | None:
    """Walk the page headers of an Ogg file (no decoding); ``None`` when it is not Ogg.

    A page whose declared body runs past the end of the file is cut off; the last complete page
    must carry the end-of-stream flag. The duration is the granule position of the last complete
    page that has one (less Opus's pre-skip), over the codec's rate.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"OggS":
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, pos = len(data), 0
            granule, eos, rate, cut, serial = None, False, None, "", None
            while pos < size:
                if data[pos:pos + 4] != b"OggS" or pos + 27 > size:
                    if not eos:  # bytes after a complete stream (a tag) are not a cut
                        cut = f"the file is truncated or damaged: no Ogg page at byte {pos} of {size}"
                    break
                nseg = data[pos + 26]
                if pos + 27 + nseg > size:
                    cut = "the file is truncated: its last Ogg page is cut off"
                    break
                body = sum(data[pos + 27:pos + 27 + nseg])
                end = pos + 27 + nseg + body
                if end > size:
                    cut = "the file is truncated: its last Ogg page is cut off"
                    break
                page_serial = data[pos + 14:pos + 18]
                if rate is None and data[pos + 5] & 0x02:  # beginning of a stream: its codec header
                    rate = _ogg_rate(bytes(data[pos + 27 + nseg:min(end, pos + 27 + nseg + 64)]))
                    serial = page_serial if rate is not None else None
                if page_serial == serial or serial is None:  # the audio stream's pages only
                    g = int.from_bytes(data[pos + 6:pos + 14], "little", signed=True)
                    if g >= 0:
                        granule = g
                    eos = bool(data[pos + 5] & 0x04)
                pos = end
    if not cut and not eos:
        cut = "the file is truncated: the Ogg stream ends without its end-of-stream page"
    seconds = None
    if rate is not None and rate[0] > 0 and granule is not None:
        seconds = max(0, granule - rate[1]) / rate[0]
    if cut and seconds is not None:
        cut += f" ({seconds:.2f} s decode)"
    return OggScan(seconds, cut)


#: Leading bytes of the audio containers soundalike decodes (offset, signature).
_SIGNATURES = ((0, b"RIFF"), (0, b"RF64"), (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"), (0, b"FORM"), (4, b"ftyp"),
               (0, b"\x1a\x45\xdf\xa3"), (0, b"\x30\x26\xb2\x75"), (0, b"caff"), (0, b".snd"), (0, b"MAC "),
               (0, b"wvpk"), (0, b"MPCK"), (0, b"TTA1"), (0, b"#!AMR"), (0, b"DSD "), (0, b"\x0b\x77"))


def has_audio_signature(path: str | Path) -> bool:
    """Whether the file starts like an audio container (or an MPEG audio frame / ADTS header)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if any(head[o:o + len(sig)] == sig for o, sig in _SIGNATURES):
        return True
    # MPEG audio frame sync (MP3 without ID3) or ADTS (AAC): 11 set bits, a valid layer/version
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x18) != 0x08
