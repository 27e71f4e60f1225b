"""`soundalike mpd queue|radio` against a real MPD (Debian ``mpd``) on a free loopback port, with
the demo clips as its music directory and a null audio output. Without ``mpd`` the tests skip
locally and FAIL under SOUNDALIKE_CI=1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from typer.testing import CliRunner

from player_support import free_port

pytestmark = pytest.mark.requires_import("mpd")
PASSWORD = "mpd-secret"


@pytest.fixture(scope="module")
def mpd_server(player_library, tmp_path_factory):
    """A real MPD serving the player library's music folder: ``{"port", "music", "unknown"}``."""
    exe = shutil.which("mpd")
    if exe is None:
        msg = "requires the program 'mpd' (Debian package mpd), which is not installed"
        if os.environ.get("SOUNDALIKE_CI") == "1":
            pytest.fail(msg + " (SOUNDALIKE_CI=1: .ci/run must install it)")
        pytest.skip(msg)
    import soundfile as sf

    music = player_library["music"]
    unknown = music / "not_ingested" / "stranger.flac"  # a song MPD has but the store lacks
    unknown.parent.mkdir(parents=True, exist_ok=True)
    y, sr = sf.read(str(player_library["dup_of"]), dtype="float32")
    sf.write(str(unknown), y[::-1].copy(), sr)
    base = tmp_path_factory.mktemp("mpd")
    port = free_port()
    conf = base / "mpd.conf"
    conf.write_text(f'''music_directory "{music}"
playlist_directory "{base}"
db_file "{base / 'db'}"
log_file "{base / 'log'}"
bind_to_address "127.0.0.1"
port "{port}"
zeroconf_enabled "no"
password "{PASSWORD}@read,add,control,admin"
default_permissions ""
audio_output {{
    type "null"
    name "null"
}}
''', encoding="utf-8")
    proc = subprocess.Popen([exe, "--no-daemon", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mpd did not start: {proc.stderr.read().decode(errors='replace')}")
                time.sleep(0.1)
        c = _client(port)
        c.update()
        while "updating_db" in c.status():
            time.sleep(0.1)
        c.disconnect()
        yield {"port": port, "music": music, "unknown": unknown}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(port: int):
    import mpd

    c = mpd.MPDClient()
    c.timeout = 10
    c.connect("127.0.0.1", port)
    c.password(PASSWORD)
    return c


def _play(c, name: str) -> None:
    c.clear()
    c.add(name)
    c.play(0)
    c.pause(1)  # keep the song "playing" (paused) while the test runs


def _cli(*args: str, env: dict | None = None):
    from soundalike.cli import app

    return CliRunner().invoke(app, list(args), env=env)


def _rel(path, music) -> str:
    return os.path.relpath(path, music).replace(os.sep, "/")


def test_queue_appends_similar_tracks(mpd_server, player_library):
    from soundalike.store import Store

    port, music, db = mpd_server["port"], mpd_server["music"], str(player_library["db"])
    c = _client(port)
    playing = _rel(player_library["dup_of"], music)
    _play(c, playing)
    res = _cli("mpd", "queue", "-n", "4", "--port", str(port), "--host", "127.0.0.1", "--password", PASSWORD,
               "--music-dir", str(music), "--db", db)
    assert res.exit_code == 0, res.output
    queue = [s["file"] for s in c.playlistinfo()]
    assert queue[0] == playing and len(queue) == 5 and res.stdout.split() == queue[1:]
    with Store(db, readonly=True) as s:
        stored = {os.path.relpath(t.path, music).replace(os.sep, "/"): t for t in s.tracks()}
    assert all(q in stored for q in queue)
    assert _rel(player_library["dup"], music) not in queue  # the playing recording's "Best Of" copy
    artists = [stored[q].artist for q in queue[1:]]
    assert all(a not in artists[max(0, i - 3):i] for i, a in enumerate(artists))  # default artist gap 3
    # again, through MPD_HOST=password@host and without --music-dir (learnt from the playing song)
    env = {"MPD_HOST": f"{PASSWORD}@127.0.0.1", "MPD_PORT": str(port)}
    res = _cli("mpd", "queue", "-n", "3", "--db", db, env=env)
    assert res.exit_code == 0, res.output
    queue2 = [s["file"] for s in c.playlistinfo()]
    assert queue2[:5] == queue and len(queue2) == 8 and len(set(queue2)) == 8  # nothing queued twice
    c.disconnect()


def test_radio_keeps_the_queue_topped_up(mpd_server, player_library):
    from soundalike.mpd_client import radio
    from soundalike.store import Store

    port, music = mpd_server["port"], mpd_server["music"]
    c = _client(port)
    _play(c, _rel(player_library["base"] / player_library["rows"][5]["path"], music))
    stop, seen = threading.Event(), []
    radio_client = _client(port)
    with Store(player_library["db"], readonly=True) as store:
        t = threading.Thread(target=radio, args=(radio_client, store), daemon=True,
                             kwargs={"n": 3, "keep": 2, "music_dir": music, "stop": stop, "max_topups": 2,
                                     "poll_s": 0.05, "on_topup": seen.append})
        t.start()
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(seen) == 1 and len(c.playlistinfo()) == 4  # the first top-up: 3 after the playing song
        time.sleep(0.3)
        assert len(seen) == 1  # 3 queued >= keep: nothing more until songs are played
        c.next()
        c.next()  # now 1 song follows the playing one: below keep=2
        t.join(timeout=60)
        stop.set()
    assert not t.is_alive() and len(seen) == 2
    queue = [s["file"] for s in c.playlistinfo()]
    assert len(queue) == 7 and len(set(queue)) == 7
    radio_client.disconnect()
    c.disconnect()


def test_mpd_errors_are_one_line(mpd_server, player_library):
    port, db = str(mpd_server["port"]), str(player_library["db"])
    res = _cli("mpd", "queue", "--host", "127.0.0.1", "--port", port, "--password", "wrong", "--db", db)
    assert res.exit_code == 1 and "refused the password" in res.output and "--password" in res.output
    res = _cli("mpd", "queue", "--host", "127.0.0.1", "--port", str(free_port()), "--db", db)
    assert res.exit_code == 1 and "Cannot reach MPD at 127.0.0.1:" in res.output
    c = _client(mpd_server["port"])
    _play(c, _rel(mpd_server["unknown"], mpd_server["music"]))
    res = _cli("mpd", "queue", "--host", "127.0.0.1", "--port", port, "--password", PASSWORD,
               "--music-dir", str(mpd_server["music"]), "--db", db)
    assert res.exit_code == 1 and "is not in the soundalike store" in res.output and "soundalike ingest" in res.output
    c.clear()
    res = _cli("mpd", "queue", "--host", "127.0.0.1", "--port", port, "--password", PASSWORD, "--db", db)
    assert res.exit_code == 1 and "not playing anything" in res.output
    for out in (res.output,):
        assert len(out.strip().splitlines()) == 1
    c.disconnect()
