"""Constants and helpers the player tests share (a uniquely named module: several test folders
have a ``conftest.py``, so importing from "conftest" would be ambiguous)."""

from __future__ import annotations

import socket

USER, PASSWORD, API_KEY = "player", "pässword 1", "player-api-key"
#: a tiny valid PNG (1×1) used as embedded cover art
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0"
                    "00000301010018dd8db00000000049454e44ae426082")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
