"""A real `soundalike enrich` process SIGKILLed mid-run, then rerun: what was answered before
the kill is served from the cache, not fetched again (requests counted on the fake server)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from _fake_services import FakeServices
from _enrich_support import add_artist, demo_artists

from soundalike.store import Store

CLI = [sys.executable, "-c", "from soundalike.cli import main; main()"]


def _env(fs: FakeServices) -> dict[str, str]:
    env = dict(os.environ)
    env.update(fs.env())
    # Real clock in the child: raise the rates so the test does not wait 1 s per request.
    env.update({"SOUNDALIKE_MUSICBRAINZ_RATE": "500", "SOUNDALIKE_LISTENBRAINZ_RATE": "500",
                "SOUNDALIKE_LASTFM_RATE": "500", "SOUNDALIKE_CONTACT": "tests@soundalike.invalid"})
    env.pop("SOUNDALIKE_DB", None)
    return env


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_mid_run_then_resume_without_refetching(tmp_path):
    db = tmp_path / "lib.db"
    with Store(db) as store:
        for name in demo_artists():
            add_artist(store, name)
    with FakeServices() as fs:
        fs.hold_after = 17  # answer 17 requests, hold the 18th unanswered
        proc = subprocess.Popen(CLI + ["enrich", "--db", str(db), "--json"], env=_env(fs),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert fs.held.wait(60), "the child never reached the 18th request"
            answered = [r for r in fs.requests() if r.status != 0]
            assert len(answered) == 17
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        n_first = len(fs.requests())
        fs.hold_after = None
        fs.release.set()

        # The database survived the kill and kept every committed response.
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM enrich_responses").fetchone()[0] == 17
        con.close()

        done = subprocess.run(CLI + ["enrich", "--db", str(db), "--json"], env=_env(fs), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        second = fs.requests()[n_first:]

    refetched = {r.key for r in second} & {r.key for r in answered}
    assert refetched == set()
    assert summary["matched"] == 10 and summary["failed"] == 0
    # 50 answers in all: 17 before the kill (now cached), 33 fetched on resume.
    assert (summary["http"]["requests"], summary["http"]["cached"], summary["http"]["retried"]) == (33, 17, 0)
    assert len(second) == 33
