"""Bounded decoding and truthful kinds (audio_readers, audio_integrity.ogg_scan).

Memory is measured with tracemalloc, which sees every NumPy buffer (decoded samples become
NumPy arrays in both readers), so a decode that holds the whole file or an interleaved
many-channel window shows.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ci_support import skip_or_fail

from soundalike import audio_readers
from soundalike.audio import WindowPolicy, load, load_windows
from soundalike.audio_integrity import has_audio_signature, ogg_scan
from soundalike.errors import DecodeError, EmptyFileError, UnsupportedFormatError


def _peak_bytes(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        out = fn(*args, **kwargs)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _signal(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _write_blocks(path: Path, y: np.ndarray, sr: int, **kw) -> Path:
    with sf.SoundFile(str(path), "w", sr, y.shape[1] if y.ndim == 2 else 1, **kw) as fh:
        for s in range(0, len(y), sr):  # in blocks: one huge Vorbis write crashes libsndfile 1.2
            fh.write(y[s:s + sr])
    return path


def test_many_channels_are_mixed_block_by_block(tmp_path, monkeypatch):
    """An 8-channel file keeps the mono window only: never the interleaved 8x array."""
    sr, seconds = 48000, 24
    mono = _signal(seconds, sr)
    p = _write_blocks(tmp_path / "eight.flac", np.repeat(mono[:, None], 8, axis=1), sr, subtype="PCM_16")
    monkeypatch.setattr(audio_readers, "BLOCK_BYTES", 1 << 18)
    win, peak = _peak_bytes(load_windows, p, policy=WindowPolicy.parse("middle:10"))
    window_bytes = 10 * sr * 4
    assert win.clips[0].size == 10 * sr and win.sample_rate == sr
    assert np.corrcoef(win.clips[0], mono[7 * sr:17 * sr])[0, 1] > 0.999
    assert peak < 1.5 * window_bytes + (1 << 20), f"peak {peak} B for a {window_bytes} B window"


def test_channel_and_rate_caps_refuse_before_reading(tmp_path, monkeypatch):
    p = _write_blocks(tmp_path / "wide.wav", np.zeros((4800, 3), np.float32) + 0.1, 48000)
    monkeypatch.setattr(audio_readers, "MAX_CHANNELS", 2)
    with pytest.raises(UnsupportedFormatError, match="3 channels; soundalike decodes at most 2") as info:
        load_windows(p, policy=WindowPolicy())
    assert info.value.kind == "unsupported"
    monkeypatch.setattr(audio_readers, "MAX_CHANNELS", 64)
    monkeypatch.setattr(audio_readers, "MAX_SAMPLE_RATE", 44100)
    with pytest.raises(UnsupportedFormatError, match="48000 Hz; soundalike decodes at most 44100 Hz"):
        load(p)


def test_kept_samples_are_capped(tmp_path, monkeypatch):
    """`full` (and load) of a track longer than MAX_KEPT_SAMPLES keeps the cap, not the track."""
    sr = 8000
    p = _write_blocks(tmp_path / "long.wav", _signal(30, sr)[:, None], sr)
    monkeypatch.setattr(audio_readers, "MAX_KEPT_SAMPLES", 5 * sr)
    y, got_sr = load(p)
    assert got_sr == sr and y.size == 5 * sr
    win = load_windows(p, policy=WindowPolicy.parse("full"))
    assert win.clips[0].size == 5 * sr and win.duration_s == pytest.approx(30.0)
    spread = load_windows(p, policy=WindowPolicy.parse("spread:4:2"))
    assert [c.size for c in spread.clips] == [2 * sr, 2 * sr, sr]  # 5 s in all


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        skip_or_fail("needs the ffmpeg program to write a WebM without a duration")
    return exe


def _live_webm(path: Path, seconds: int) -> Path:
    """Opus at 6 kbit/s muxed to a pipe: the WebM has no duration and no cues."""
    with open(path, "wb") as out:
        subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i",
                        f"sine=frequency=220:duration={seconds}:sample_rate=48000", "-c:a", "libopus", "-b:a", "6k",
                        "-f", "webm", "pipe:1"], stdout=out, check=True)
    return path


def test_webm_without_duration_is_streamed_not_loaded(tmp_path, monkeypatch):
    """Measured from its packets, then read by a seek; where it cannot seek, streamed up to the
    window: the same window either way, and never the whole track in memory."""
    import av

    p = _live_webm(tmp_path / "live.webm", 90)
    with av.open(str(p)) as c:
        assert c.duration is None  # what makes it hostile: nothing says how long it is
    whole = 90 * 48000 * 4
    win, peak = _peak_bytes(load_windows, p, policy=WindowPolicy.parse("middle:10"))
    assert win.duration_s == pytest.approx(90.0, abs=0.1)
    assert win.clips[0].size == 10 * 48000 and win.starts_s == [pytest.approx(40.0, abs=0.1)]
    assert win.truncated == ""
    assert peak < 0.3 * whole, f"peak {peak} B: the whole track is {whole} B"
    monkeypatch.setattr(audio_readers, "_seek_spans", lambda *a: None)  # a container that cannot seek
    streamed, peak = _peak_bytes(load_windows, p, policy=WindowPolicy.parse("middle:10"))
    assert streamed.clips[0].size == 10 * 48000 and streamed.duration_s == pytest.approx(90.0, abs=0.1)
    # the same audio, up to WebM's 1 ms timestamps (the seek places the window by timestamp)
    a, b = streamed.clips[0], win.clips[0]
    best = max(np.corrcoef(a[480 + lag:a.size - 480 + lag], b[480:b.size - 480])[0, 1] for lag in range(-96, 97))
    assert best > 0.99
    assert peak < 0.3 * whole, f"peak {peak} B: the whole track is {whole} B"


def test_header_that_promises_more_than_the_file_holds(tmp_path):
    """A Matroska file cut to 40 %: its header still declares 20 s. The windows are placed in
    what the packets hold (~8 s), and the file is reported truncated."""
    import av

    whole = tmp_path / "whole.mka"
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=20:sample_rate=48000",
                    "-c:a", "flac", str(whole)], check=True)
    data = whole.read_bytes()
    p = tmp_path / "cut.mka"
    p.write_bytes(data[:int(0.4 * len(data))])
    with av.open(str(p)) as c:
        assert c.duration / av.time_base == pytest.approx(20.0, abs=0.1)  # the promise
    win = load_windows(p, policy=WindowPolicy.parse("middle:10"))
    assert 6.0 < win.duration_s < 10.0
    assert win.clips[0].size / 48000 == pytest.approx(win.duration_s, abs=0.1)
    assert win.truncated.startswith("the file is truncated")


def _vorbis(tmp_path: Path, seconds: float = 30.0) -> bytes:
    p = _write_blocks(tmp_path / "whole.ogg", _signal(seconds, 44100)[:, None], 44100, format="OGG", subtype="VORBIS")
    return p.read_bytes()


@pytest.mark.parametrize("kept", [0.6, 0.75, 0.9, 0.99])
def test_truncated_ogg_gets_its_decodable_duration(tmp_path, kept):
    data = _vorbis(tmp_path)
    p = tmp_path / "cut.ogg"
    p.write_bytes(data[:int(len(data) * kept)])
    scan = ogg_scan(p)
    win = load_windows(p, policy=WindowPolicy())
    assert win.truncated.startswith("the file is truncated")
    assert 0.4 * 30 < win.duration_s < 30.0
    assert win.duration_s == pytest.approx(scan.seconds, abs=1e-6)
    assert win.clips[0].size / 44100 == pytest.approx(win.duration_s, abs=0.1)  # it all decodes


def test_cut_inside_the_last_page_is_truncated_despite_its_eos_flag(tmp_path):
    data = _vorbis(tmp_path)
    last = data.rindex(b"OggS")
    assert data[last + 5] & 0x04  # the last page carries end-of-stream
    p = tmp_path / "cut.ogg"
    p.write_bytes(data[:len(data) - 20])  # its header (with the flag) stays, its body is cut
    win = load_windows(p, policy=WindowPolicy())
    assert "last Ogg page is cut off" in win.truncated
    intact = tmp_path / "whole.ogg"
    assert load_windows(intact, policy=WindowPolicy()).truncated == ""
    assert ogg_scan(intact).truncated == "" and ogg_scan(intact).seconds == pytest.approx(30.0, abs=0.01)


def test_ogg_without_end_of_stream_page_is_truncated(tmp_path):
    data = _vorbis(tmp_path)
    p = tmp_path / "noeos.ogg"
    p.write_bytes(data[:data.rindex(b"OggS")])  # whole pages, the last one missing
    assert "without its end-of-stream page" in load_windows(p, policy=WindowPolicy()).truncated


@pytest.mark.parametrize("ext", [".mp3", ".ogg", ".flac", ".wav", ".m4a", ".opus", ".webm", ".aiff"])
@pytest.mark.parametrize("what", ["random", "text"])
def test_bytes_no_decoder_accepts_are_decode_not_empty(tmp_path, ext, what):
    rng = random.Random(f"{ext}{what}")
    p = tmp_path / f"junk{ext}"
    if what == "random":
        p.write_bytes(bytes([0x55]) + rng.randbytes(50_000))  # not a frame sync by chance
    else:
        p.write_text("Not audio at all. " * 2000)
    assert not has_audio_signature(p)
    with pytest.raises(DecodeError) as info:
        load_windows(p, policy=WindowPolicy())
    assert info.value.kind == "decode", str(info.value)


def test_empty_means_zero_bytes_or_no_frames(tmp_path):
    zero = tmp_path / "zero.mp3"
    zero.write_bytes(b"")
    with pytest.raises(EmptyFileError, match="0 bytes"):
        load_windows(zero, policy=WindowPolicy())
    no_frames = tmp_path / "noframes.wav"
    with sf.SoundFile(str(no_frames), "w", 44100, 1):
        pass  # a valid WAV header, no samples
    with pytest.raises(EmptyFileError) as info:
        load_windows(no_frames, policy=WindowPolicy())
    assert info.value.kind == "empty"
