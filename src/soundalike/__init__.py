"""soundalike: which artists and tracks sound like this one?

The public API imports no torch, transformers or fastapi; backends load them lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ParameterError,
    SoundalikeError,
    SoundalikeWarning,
    UnknownArtistError,
)

__all__ = ["__version__", "ParameterError", "SoundalikeError", "SoundalikeWarning", "UnknownArtistError"]
