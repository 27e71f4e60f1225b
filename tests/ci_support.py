"""Skips that CI may not take: outside CI a missing module or program skips with its reason;
under ``SOUNDALIKE_CI=1`` it fails, so CI never silently skips what it must run."""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

IN_CI = os.environ.get("SOUNDALIKE_CI") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, or fail with it under CI."""
    if IN_CI:
        pytest.fail(reason + " (SOUNDALIKE_CI=1: CI must provide it)")
    pytest.skip(reason)


def import_or_skip(name: str) -> ModuleType:
    """``pytest.importorskip`` that fails under CI."""
    try:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            return importlib.import_module(name)
    except ImportError:
        pass
    skip_or_fail(f"needs the module {name!r}")
    raise AssertionError("unreachable")
