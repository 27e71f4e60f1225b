"""The exception tree of soundalike.

Everything raised on purpose derives from :class:`SoundalikeError`, so a caller (the CLI, the
HTTP service) can catch one type and show one clear message. Messages name the thing, the value,
what was expected, and the fix.
"""

from __future__ import annotations

__all__ = [
    "SoundalikeError",
    "SoundalikeWarning",
    "ParameterError",
    "DimensionMismatchError",
    "AudioError",
    "DecodeError",
    "EmptyFileError",
    "UnreadableFileError",
    "SilentAudioError",
    "TooShortError",
    "UnsupportedFormatError",
    "InvalidAudioError",
    "BackendError",
    "BackendUnavailable",
    "WeightsError",
    "UnknownArtistError",
    "UnknownTrackError",
    "StoreError",
    "SchemaError",
    "StoreFullError",
    "StoreBusyError",
    "ManifestError",
    "NotFittedError",
]


class SoundalikeError(Exception):
    """Root of every error soundalike raises on purpose."""


class SoundalikeWarning(UserWarning):
    """A soft problem: the result is usable but the user should know (e.g. a short clip)."""


class ParameterError(SoundalikeError, ValueError):
    """A bad argument value or option."""


class DimensionMismatchError(ParameterError):
    """Embeddings whose dimension does not match the model or the stored vectors."""


class ManifestError(ParameterError):
    """A malformed manifest (CSV/YAML): the message names the line and the field."""


class AudioError(SoundalikeError):
    """A problem with one audio file. ``kind`` is the failure kind recorded in the store."""

    kind = "audio"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DecodeError(AudioError):
    """The file cannot be decoded (corrupt, truncated, not audio, unreadable)."""

    kind = "decode"


class EmptyFileError(DecodeError):
    """The file has zero bytes or decodes to zero samples."""

    kind = "empty"


class UnreadableFileError(DecodeError):
    """The path does not exist or cannot be read (permissions, a directory, ...)."""

    kind = "unreadable"


class UnsupportedFormatError(AudioError):
    """The file is of a format no installed decoder reads."""

    kind = "unsupported"


class SilentAudioError(AudioError):
    """The audio is below the RMS floor (digital silence or near it)."""

    kind = "silent"


class TooShortError(AudioError):
    """The audio is shorter than the documented minimum."""

    kind = "too-short"


class InvalidAudioError(AudioError):
    """The samples are not finite (NaN/inf) or the array has the wrong shape or type."""

    kind = "invalid"


class BackendError(SoundalikeError):
    """A problem with an embedding backend."""


class BackendUnavailable(BackendError):
    """The backend needs an optional extra that is not installed."""


class WeightsError(BackendError):
    """Model weights are missing, of the wrong layout, or fail their checksum."""


class UnknownArtistError(SoundalikeError, LookupError):
    """No artist of that name in the library. The message lists close matches."""

    def __init__(self, message: str, *, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = list(suggestions or [])

    def __str__(self) -> str:  # LookupError would otherwise be fine; keep the plain message
        return self.args[0]


class UnknownTrackError(SoundalikeError, LookupError):
    """No track with that id in the library."""

    def __str__(self) -> str:
        return self.args[0]


class StoreError(SoundalikeError):
    """The library database cannot be opened, read or written."""


class SchemaError(StoreError):
    """The database schema is newer than this version of soundalike, or damaged."""


class StoreFullError(StoreError):
    """The disk (or SQLite's size limit) is full: the transaction in flight was rolled back."""


class StoreBusyError(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


class NotFittedError(SoundalikeError, AttributeError):
    """An estimator was used before ``fit``."""
