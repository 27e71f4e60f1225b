"""Uploaded clips: size cap, content sniffing, decoding in a private temp dir, embedding.

The upload is never trusted as a path: its bytes are written to ``clip<ext>`` inside a fresh
``0700`` directory from :func:`tempfile.mkdtemp`, where ``ext`` comes from the bytes' own
signature (not the client's filename), and the directory is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from .._lifecycle import upload_dir_prefix
from ..analysis import ClipPlan, decode_clip, embed_clip
from ..audio import WindowPolicy, Windows
from ..store import ModelInfo
from .errors import ApiError, error_json

__all__ = ["sniff_audio_extension", "BodySizeLimit", "decode_upload", "EmbeddedClip", "Embedder"]


def sniff_audio_extension(head: bytes) -> str | None:
    """The file extension matching the audio container signature at the start of `head`."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0):
        return ".mp3"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return ".m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if head[:4] == b"\x30\x26\xb2\x75":
        return ".wma"
    if head[:4] == b"caff":
        return ".caf"
    if head[:4] == b".snd":
        return ".au"
    return None


class BodySizeLimit:
    """ASGI middleware: answer 413 when a request body to `paths` (None: all but `skip`) exceeds `max_bytes`.

    A declared ``Content-Length`` above the limit is refused before any byte is read; a
    chunked body is counted as it streams and cut off at the limit.
    """

    def __init__(self, app, *, max_bytes: int, paths: tuple[str, ...] | None, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths  # None: every path but those in `skip`
        self.skip = skip

    def _too_large(self) -> str:
        mb = self.max_bytes / (1024 * 1024)
        return (f"The upload is larger than the {self.max_bytes} byte ({mb:.1f} MB) limit; send a shorter clip "
                "(30 s is plenty) or raise SOUNDALIKE_MAX_UPLOAD_BYTES.")

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or (path not in self.paths if self.paths is not None else path in self.skip):
            return await self.app(scope, receive, send)
        # Multipart framing adds a little: allow 64 KiB of envelope above the file cap.
        limit = self.max_bytes + 65536
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    return await error_json(413, "UploadTooLarge", self._too_large())(scope, receive, send)
        seen = 0
        exceeded = False
        started = False

        async def counting_receive():
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message):
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await error_json(413, "UploadTooLarge", self._too_large())(scope, receive, send)
                return
            started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await error_json(413, "UploadTooLarge", self._too_large())(scope, receive, send)


@dataclass
class EmbeddedClip:
    vector: np.ndarray  # (d,) mean over windows, at the library model's layer
    duration_s: float
    n_windows: int


def decode_upload(data: bytes, *, max_bytes: int, policy: WindowPolicy, sample_rate: int) -> Windows:
    """Decode uploaded bytes into analysis windows at `sample_rate` inside a private temp dir, as
    the analysis decodes a library file.

    Raises
    ------
    ApiError
        413 above `max_bytes`; 415 when the bytes carry no known audio signature.
    DecodeError, UnsupportedFormatError (415), TooShortError, SilentAudioError (422)
    """
    if len(data) > max_bytes:
        raise ApiError(413, "UploadTooLarge", f"The upload has {len(data)} bytes; the limit is {max_bytes}.")
    if not data:
        raise ApiError(415, "NotAudio", "The upload is empty; send an audio file (WAV, FLAC, OGG, MP3, M4A, ...).")
    ext = sniff_audio_extension(data[:64])
    if ext is None:
        raise ApiError(415, "NotAudio", "The upload is not an audio file soundalike recognises (no WAV, FLAC, OGG, "
                                        "MP3, AIFF, M4A, WebM, WMA, CAF or AU signature); send an audio clip.")
    tmp = tempfile.mkdtemp(prefix=upload_dir_prefix())  # names this process: removed at the next start if it dies
    try:
        path = os.path.join(tmp, "clip" + ext)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return decode_clip(path, policy, sample_rate)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Embedder:
    """The library model's backend, loaded once, embedding uploaded clips with the analysis's own
    decode and embed steps (so an upload of a library file gives its stored vector)."""

    def __init__(self, model: ModelInfo, layer: int) -> None:
        from ..backends import load_backend

        self.model = model
        self.layer = layer
        self.policy = WindowPolicy.parse(str(model.config.get("window", "middle")))
        self.backend = load_backend(model.backend)
        self.clip = ClipPlan(self.backend, self.policy)
        self.matches_library = self.clip.model_key == model.model_key

    @property
    def sample_rate(self) -> int:
        return int(self.backend.sample_rate)

    def embed(self, windows: Windows) -> EmbeddedClip:
        V = embed_clip(windows, self.clip)  # (n_windows, n_layers, d)
        return EmbeddedClip(V[:, self.layer, :].mean(axis=0), float(windows.duration_s), len(windows.clips))
