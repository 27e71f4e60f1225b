"""audio.py: decoding every common format, windows, resampling, and each error kind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ci_support import import_or_skip, skip_or_fail
import soundfile as sf

from soundalike import audio
from soundalike.audio import WindowPolicy, cut_windows, load, load_windows, resample
from soundalike.errors import (
    DecodeError,
    EmptyFileError,
    InvalidAudioError,
    ParameterError,
    SilentAudioError,
    TooShortError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from tests.conftest import SR, noise, tone


def _encode_with_av(path: Path, y: np.ndarray, sr: int, codec: str) -> Path:
    av = import_or_skip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr)
        stream.layout = "mono"
        frame_len = 1024
        for s in range(0, len(y), frame_len):
            chunk = y[s:s + frame_len]
            frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate = sr
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
    return path


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("a.wav", {}),
        ("a.flac", {}),
        ("a.ogg", {"subtype": "VORBIS"}),
        ("a.mp3", {"fmt": "MP3", "subtype": "MPEG_LAYER_III"}),
        ("a.aiff", {}),
    ],
)
def test_libsndfile_formats_decode_to_mono_float32(write_audio, name, kwargs):
    y = tone(440, 2.0)
    stereo = np.stack([y, 0.5 * y], axis=1)
    p = write_audio(name, stereo, **kwargs)
    got, sr = load(p)
    assert sr == SR and got.dtype == np.float32 and got.ndim == 1
    assert abs(got.size / sr - 2.0) < 0.1  # mp3 adds encoder padding
    # downmix is the channel mean: peak about 0.75 of the left channel's peak
    assert 0.6 * np.abs(y).max() < np.abs(got).max() < 0.9 * np.abs(y).max()


@pytest.mark.parametrize("ext,codec", [(".m4a", "aac"), (".opus", "libopus")])
def test_ffmpeg_formats_decode(tmp_path, ext, codec):
    av = import_or_skip("av")
    if codec not in av.codecs_available:
        skip_or_fail(f"FFmpeg build lacks the {codec} encoder needed to make the test file")
    sr = 48000
    p = _encode_with_av(tmp_path / f"a{ext}", tone(440, 2.0, sr=sr), sr, codec)
    got, got_sr = load(p, sr=16000)
    assert got_sr == 16000 and got.dtype == np.float32
    assert abs(got.size / 16000 - 2.0) < 0.15
    spec = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spec) * 16000 / got.size - 440) < 5


def test_resample_keeps_pitch_and_length():
    y = tone(1000, 1.0, harmonics=1)
    z = resample(y, orig_sr=SR, target_sr=16000)
    assert z.dtype == np.float32 and z.size == 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(z))) - 1000) <= 1
    with pytest.raises(ParameterError, match="positive"):
        resample(y, orig_sr=0, target_sr=16000)


def test_window_policies():
    y = np.ones(SR * 100, np.float32)
    mid = cut_windows(y, SR, policy=WindowPolicy())
    assert len(mid.clips) == 1 and mid.clips[0].size == 30 * SR and mid.starts_s == [35.0]
    spread = cut_windows(y, SR, policy=WindowPolicy.parse("spread:3:10"))
    assert [c.size for c in spread.clips] == [10 * SR] * 3 and spread.starts_s == [0.0, 45.0, 90.0]
    full = cut_windows(y, SR, policy=WindowPolicy.parse("full"))
    assert full.clips[0].size == y.size
    # a track shorter than the window is used as it is (the 28.4 s development clips)
    short = cut_windows(np.ones(int(28.4 * SR), np.float32), SR, policy=WindowPolicy())
    assert len(short.clips) == 1 and short.clips[0].size == int(28.4 * SR)
    assert WindowPolicy.parse("spread:3").key() == "spread:3:30"
    with pytest.raises(ParameterError, match="middle"):
        WindowPolicy.parse("sideways")


def test_load_windows_reads_only_the_window(write_audio):
    y = np.concatenate([tone(220, 20), tone(880, 20)])  # 40 s; the middle 10 s straddles both
    p = write_audio("long.flac", y)
    win = load_windows(p, policy=WindowPolicy.parse("middle:10"), sr=16000)
    assert win.sample_rate == 16000 and win.starts_s == [15.0]
    assert win.clips[0].size == 160000 and abs(win.duration_s - 40.0) < 1e-3


def test_error_kinds(tmp_path, write_audio):
    policy = WindowPolicy()
    cases = {}
    cases["empty"] = tmp_path / "empty.wav"
    cases["empty"].write_bytes(b"")
    cases["corrupt"] = tmp_path / "corrupt.mp3"
    cases["corrupt"].write_bytes(os.urandom(4000))
    good = write_audio("good.ogg", noise(5))
    cases["truncated"] = tmp_path / "truncated.flac"
    data = write_audio("full.flac", noise(5)).read_bytes()
    cases["truncated"].write_bytes(data[:200])
    cases["unsupported"] = tmp_path / "score.mid"
    cases["unsupported"].write_bytes(b"MThd\x00\x00\x00\x06")
    cases["silent"] = write_audio("silent.wav", np.zeros(SR * 3, np.float32))
    cases["short"] = write_audio("short.wav", noise(0.3))
    nan = noise(3)
    nan[100] = np.nan
    cases["nan"] = write_audio("nan.wav", nan, subtype="FLOAT")
    cases["missing"] = tmp_path / "nope.wav"
    expected = {
        "empty": EmptyFileError, "corrupt": DecodeError, "truncated": DecodeError,
        "unsupported": UnsupportedFormatError, "silent": SilentAudioError, "short": TooShortError,
        "nan": InvalidAudioError, "missing": UnreadableFileError,
    }
    for name, path in cases.items():
        with pytest.raises(expected[name]) as info:
            load_windows(path, policy=policy)
        assert info.value.path == str(path)
        assert str(info.value)  # a plain reason
    assert load_windows(good, policy=policy).clips[0].size > 0


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(UnreadableFileError, match="directory"):
        load(tmp_path)


def test_check_quality_documented_floor():
    assert audio.SILENCE_RMS_DBFS == -60.0 and audio.MIN_DURATION_S == 1.0
    quiet = tone(440, 2, amp=10 ** (-70 / 20))
    with pytest.raises(SilentAudioError, match="floor -60"):
        audio.check_quality(quiet, SR)
    audio.check_quality(tone(440, 2, amp=10 ** (-40 / 20)), SR)


def test_m4a_windows_are_read_by_seeking(tmp_path, monkeypatch):
    """M4A (FFmpeg) reads only the windows: the same audio as a whole-file decode, and the cost
    does not grow with the track (the whole-file decoder is never called)."""
    av = import_or_skip("av")
    if "aac" not in av.codecs_available:
        skip_or_fail("FFmpeg build lacks the aac encoder needed to make the test file")
    sr = 48000
    y = np.concatenate([tone(220, 20, sr=sr), tone(880, 20, sr=sr)])  # the middle 10 s straddles both
    p = _encode_with_av(tmp_path / "long.m4a", y, sr, "aac")
    from soundalike import audio_readers

    (whole,), _, cut = audio_readers.stream_ffmpeg(p, [(0.0, 40.0)], sr)
    whole_sr = sr
    assert cut == ""

    def no_stream(*args):
        raise AssertionError("decoded the file as a stream from its start")

    monkeypatch.setattr(audio_readers, "stream_ffmpeg", no_stream)
    win = load_windows(p, policy=WindowPolicy.parse("middle:10"))
    assert win.sample_rate == whole_sr and win.clips[0].size == 10 * sr
    start = int(round(win.starts_s[0] * sr))
    assert abs(win.starts_s[0] - 15.0) < 0.05 and abs(win.duration_s - 40.0) < 0.05
    ref = whole[start:start + 10 * sr]
    assert np.corrcoef(win.clips[0], ref)[0, 1] > 0.999
    spread = load_windows(p, policy=WindowPolicy.parse("spread:3:5"))
    assert [c.size for c in spread.clips] == [5 * sr] * 3
    assert win.truncated == "" and spread.truncated == ""  # the tail probe finds the declared end


def test_codec_padding_at_the_end_is_not_truncation():
    """An intact Ogg Vorbis file can declare ~0.1 s more than decodes (last granule position);
    that is not a cut file, while a window that stops well inside the declared length is."""
    from soundalike.audio_integrity import short_read

    sr, frames = 44100, int(207.15 * 44100)
    tail = frames - sr  # the last second, read as the tail probe does
    assert short_read(sr - int(0.13 * sr), sr, frames, tail, sr) is None
    assert "207.15 s" in short_read(sr - int(0.5 * sr), sr, frames, tail, sr)
    # inside the file only decoder slack (10 ms) is allowed
    assert short_read(sr - int(0.05 * sr), sr, frames, 0, sr) is not None
