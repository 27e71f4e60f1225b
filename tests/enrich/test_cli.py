"""`soundalike enrich` through the Typer app: summary, --offline, --review, --export, errors."""

from __future__ import annotations

import json

import pytest
from _enrich_support import add_artist
from typer.testing import CliRunner

from soundalike.cli import app


@pytest.fixture
def env(services, monkeypatch):
    for k, v in services.env().items():
        monkeypatch.setenv(k, v)
    # In-process runs use the real clock: raise the rates (politeness is tested on the fake clock).
    for s in ("MUSICBRAINZ", "LISTENBRAINZ", "LASTFM"):
        monkeypatch.setenv(f"SOUNDALIKE_{s}_RATE", "1000")
    monkeypatch.setenv("SOUNDALIKE_CONTACT", "tests@soundalike.invalid")
    return services


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_enrich_json_summary_then_offline(demo_store, env, tmp_path):
    db = str(demo_store.path)
    r = run("enrich", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["matched"], doc["ambiguous"], doc["not_found"], doc["failed"]) == (10, 0, 0, 0)
    assert doc["http"]["requests"] == 50 and doc["fixture_responses"] == 50
    n = len(env.requests())
    r = run("enrich", "--db", db, "--offline")
    assert r.exit_code == 0
    assert "10 matched, 0 ambiguous, 0 not found, 0 failed" in r.stderr and "(offline: cache only)" in r.stderr
    assert "FIXTURES" in r.stderr  # fixture data is labelled as such in the output
    assert len(env.requests()) == n


def test_enrich_source_subset_and_export(demo_store, env, tmp_path):
    out = tmp_path / "csv"
    r = run("enrich", "--db", str(demo_store.path), "--source", "musicbrainz,listenbrainz", "--export", str(out), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["sources"]) == {"musicbrainz", "listenbrainz"}
    assert {r.service for r in env.requests()} == {"musicbrainz", "listenbrainz"}
    assert sorted(p.name for p in out.iterdir()) == ["graph.csv", "refs.csv", "tags.csv"]


def test_enrich_review_lists_ambiguous(store, env):
    env.search_pages["Nirvana"] = [
        {"id": "00000000-0000-4000-8000-00000000000a", "name": "Nirvana", "score": 100, "disambiguation": "[fixture] US band"},
        {"id": "00000000-0000-4000-8000-00000000000b", "name": "Nirvana", "score": 100, "disambiguation": "[fixture] UK band"},
    ]
    add_artist(store, "Nirvana")
    add_artist(store, "Askyel")
    db = str(store.path)
    r = run("enrich", "--db", db, "--source", "musicbrainz")
    assert r.exit_code == 0 and "1 ambiguous" in r.stderr and "--review" in r.stderr
    n = len(env.requests())
    r = run("enrich", "--db", db, "--review")
    assert r.exit_code == 0
    assert "Nirvana: ambiguous" in r.stdout and "UK band" in r.stdout and "1 of 2 artists need review" in r.stdout
    assert len(env.requests()) == n  # --review fetches nothing
    r = run("enrich", "--db", db, "--review", "--json")
    [row] = json.loads(r.stdout)
    assert row["artist"] == "Nirvana" and row["status"] == "ambiguous" and len(row["candidates"]) == 2


def test_enrich_unknown_source_is_a_usage_error(demo_store, env):
    r = CliRunner().invoke(app, ["enrich", "--db", str(demo_store.path), "--source", "spotify"])
    assert r.exit_code == 2 and "spotify" in r.output
