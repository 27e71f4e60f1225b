"""schemathesis against the OpenAPI spec of a live server (capped examples). Gate: no 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.requires_import("schemathesis")
def test_schemathesis_no_server_errors(serve_library):
    from soundalike.serve import Settings, create_app

    from conftest import ServerThread

    exe = shutil.which("schemathesis") or shutil.which("st")
    cmd = [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]
    with ServerThread(create_app(Settings(db=serve_library["db"], max_upload_bytes=256 * 1024))) as srv:
        r = subprocess.run([*cmd, "run", f"{srv.url}/openapi.json", "--checks", "not_a_server_error",
                            "--max-examples", "25", "--generation-deterministic", "--workers", "1",
                            "--request-timeout", "60"], capture_output=True, text=True, timeout=900)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    assert "passed" in r.stdout, tail
