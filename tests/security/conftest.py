"""Fixtures of the security tests: a synthetic library and an app with every credential set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _security_support import build_library, settings  # noqa: E402


@pytest.fixture(scope="session")
def sec_library(tmp_path_factory) -> dict:
    return build_library(tmp_path_factory.mktemp("sec-lib"))


@pytest.fixture
def make_client(sec_library):
    """``make_client(**settings)`` → a TestClient on loopback (Host ``localhost``) with credentials configured."""
    from fastapi.testclient import TestClient

    from soundalike.serve import create_app

    opened = []

    def make(**kw):
        c = TestClient(create_app(settings(sec_library["db"], **kw)), base_url="http://localhost")
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
