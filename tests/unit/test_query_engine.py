"""The query engine: saved calibrators (no fits at query time), the same answer at every size,
track references, several seeds with filters, CLI text, and the layering rule."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soundalike.cli import app
from soundalike.errors import ParameterError, UnknownTrackError
from soundalike.query import FIT_COUNT, Engine, Query, refresh_calibrators
from soundalike.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "soundalike"


def _fill(store: Store, tmp_path: Path, *, n_artists: int = 12, per: int = 3, d: int = 16, seed: int = 0,
          model_key: str = "m1") -> list[str]:
    """Clustered synthetic vectors: one cluster per artist, real files for the path references."""
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(n_artists, d)) * 2.0
    store.register_model(model_key=model_key, backend="test-vec", config={"default_layer": 0}, weights_sha256=None,
                         weights_kind="none", dim=d, n_layers=1)
    tids = []
    with store.transaction() as tx:
        for a in range(n_artists):
            for j in range(per):
                p = tmp_path / f"Artist {a}" / f"song {j} [flac].wav"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(f"{a}-{j}-{seed}".encode())
                tid = hashlib.sha256(p.read_bytes()).hexdigest()
                store.add_track(db=tx, track_id=tid, path=str(p), artist=f"Artist {a}", title=f"Song {j}",
                                album="One", duration_s=30.0, external_id=f"ext-{a}-{j}")
                x = C[a] + 0.6 * rng.normal(size=d) + 4.0
                store.put_embeddings(tx, track_id=tid, model_key=model_key, vectors=x[None, None, :].astype(np.float32),
                                     starts_s=[0.0], lengths_s=[30.0])
                tids.append(tid)
    return tids


def test_saved_calibrator_spares_every_query_a_fit(store, tmp_path):
    _fill(store, tmp_path)
    done = refresh_calibrators(store)
    assert len(done) == 1 and done[0]["method"].startswith("5-fold cross-validation by artist")
    chosen = done[0]["calibration"]
    best = max(v["cv_map"] for v in done[0]["results"].values())
    assert done[0]["results"][chosen]["cv_map"] == best  # the winner (ties: center, the stated fallback)
    assert set(done[0]["results"]) >= {"none", "center", "nicdm", "csls"}
    FIT_COUNT["n"] = 0
    engine = Engine(store)
    art = engine.run(Query(artist="Artist 3", k=5))
    trk = engine.run(Query(track=engine.tracks[0].track_id, k=5))
    assert art["calibration"] == trk["calibration"] == chosen and art["calibration_source"] == "validated default"
    r = CliRunner().invoke(app, ["similar", "Artist 3", "--db", str(store.path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["neighbours"] == Engine(store).run(Query(artist="Artist 3"))["neighbours"]
    assert FIT_COUNT["n"] == 0  # every surface loaded the saved state
    assert refresh_calibrators(store)[0].get("unchanged")  # same vectors: nothing refitted
    other = "none" if chosen != "none" else "center"
    engine.run(Query(artist="Artist 3", calibration=other))
    assert FIT_COUNT["n"] == 1  # an override without a saved state is fitted once, then cached
    engine.run(Query(track=engine.tracks[1].track_id, calibration=other))
    engine.run(Query(artist="Artist 4", calibration=other))
    assert FIT_COUNT["n"] == 2  # its track level, once
    r = CliRunner().invoke(app, ["status", "--db", str(store.path), "--json"])
    model = json.loads(r.stdout)["models"][0]
    assert model["calibration"]["calibration"] == chosen and model["calibration"]["results"][chosen]["cv_map"] > 0.5


def test_too_few_artists_fall_back_to_center(store, tmp_path):
    _fill(store, tmp_path, n_artists=4)
    done = refresh_calibrators(store)
    assert done[0]["calibration"] == "center" and done[0]["method"].startswith("fallback")


def test_same_answer_at_every_size(store, tmp_path, monkeypatch):
    """A sampled percentile table (large libraries) keeps the neighbours and the scores within 1e-2."""
    import soundalike.query.space as space

    _fill(store, tmp_path, n_artists=60, per=2)
    for cal in ("center", "nicdm", "csls"):
        exact = Engine(store).run(Query(artist="Artist 7", k=8, calibration=cal))
        monkeypatch.setattr(space, "EXACT_TABLE_MAX_ITEMS", 10)
        monkeypatch.setattr(space, "TABLE_SAMPLE_PAIRS", 20_000)
        sampled = Engine(store).run(Query(artist="Artist 7", k=8, calibration=cal))
        monkeypatch.undo()
        assert [n["artist_id"] for n in sampled["neighbours"]] == [n["artist_id"] for n in exact["neighbours"]]
        assert [n["score"] for n in sampled["neighbours"]] == pytest.approx([n["score"] for n in exact["neighbours"]],
                                                                            abs=1e-2)


def test_track_references(store, tmp_path):
    tids = _fill(store, tmp_path, n_artists=3)
    engine = Engine(store)
    t = engine.track_by_id[tids[4]]
    assert engine.track(t.path).track_id == t.track_id                       # a path
    assert engine.track(t.track_id[:6]).track_id == t.track_id               # a sha256 prefix
    assert engine.track(t.external_id).track_id == t.track_id                # a manifest id
    assert engine.track("  artist 1 -  SONG 1").track_id == t.track_id       # "Artist - Title", normalised
    assert engine.track(t.track_id.upper()[:8]).track_id == t.track_id
    with pytest.raises(UnknownTrackError, match="Closest: Artist 1 - Song 1") as e:
        engine.track("Artist 1 - Sonng 1")
    assert "\n" not in str(e.value)
    from soundalike.query import resolve_track
    from soundalike.store import Track

    twins = [Track("abcdef" + c * 58, f"/x/{c}.wav", 1, "A", f"t{c}", None, None, None, ()) for c in "01"]
    with pytest.raises(UnknownTrackError, match="matches 2 tracks .*abcdef000000 A - t0; abcdef111111 A - t1"):
        resolve_track(twins, "abcdef")
    assert resolve_track(twins, "abcdef1").path == "/x/1.wav"
    r = CliRunner().invoke(app, ["similar", "--track", "Artist 9 - Song 1", "--db", str(store.path)])
    assert r.exit_code == 1 and "No track 'Artist 9 - Song 1'" in r.output and "Closest:" in r.output


def test_several_seeds_filters_and_gap(store, tmp_path):
    """What playlists ask: track neighbours of several seeds, some tracks excluded, artists spread."""
    tids = _fill(store, tmp_path)
    engine = Engine(store)
    a, b, c = tids[0], tids[3], tids[1]
    doc = engine.run(Query(tracks=(a, b), k=6, exclude_track_ids=(c,), artist_gap=1))
    got = [n["track_id"] for n in doc["neighbours"]]
    assert doc["query"] == {"track_ids": [a, b]} and len(got) == 6
    assert not {a, b, c} & set(got)
    artists = [n["artist_id"] for n in doc["neighbours"]]
    assert all(x != y for x, y in zip(artists, artists[1:]))
    scores = [n["score"] for n in doc["neighbours"]]
    assert all(0 <= s <= 1 for s in scores)
    by_artist = engine.run(Query(artists=("Artist 0", "Artist 1"), want="tracks", k=4, exclude_seed_artists=True))
    assert by_artist["query"]["artist_ids"] and all(n["artist"] not in ("Artist 0", "Artist 1")
                                                    for n in by_artist["neighbours"])
    with pytest.raises(ParameterError, match="not both"):
        engine.run(Query(artist="Artist 0", track=a))


def test_cli_text_is_never_markup(store, tmp_path):
    _fill(store, tmp_path, n_artists=3)
    r = CliRunner().invoke(app, ["similar", "[/]", "--db", str(store.path)])
    assert r.exit_code == 1 and "Unknown artist '[/]'" in r.output
    r = CliRunner().invoke(app, ["tracks", "Artist 1", "--db", str(store.path)], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "song 0 [flac].wav" in r.output
    r = CliRunner().invoke(app, ["similar", "Artist 1", "--backend", "vggish", "--db", str(store.path)])
    assert r.exit_code == 1 and "it has: test-vec" in r.output and "embed --backend" not in r.output
    from soundalike.backends import backend_statuses

    r = CliRunner().invoke(app, ["backends"], env={"COLUMNS": "80"})
    assert r.exit_code == 0
    text = " ".join(r.output.split())  # the terminal wraps long lines; nothing is cut
    assert all(" ".join(s.install_hint.split()) in text for s in backend_statuses() if s.status != "ready")


def _imports(path: Path) -> set[str]:
    """Absolute names of the soundalike modules `path` imports (relative imports resolved)."""
    pkg = ["soundalike", *path.relative_to(SRC).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("soundalike")}


def test_no_upward_imports():
    """audio → library → backends → store → query → evaluation/reports → cli/serve, never back up."""
    above_query = ("soundalike.serve", "soundalike.cli", "soundalike.reports", "soundalike.evaluate")
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        mods = _imports(path)
        if not rel.startswith(("serve/", "cli/")) and any(m.startswith("soundalike.serve") for m in mods):
            bad.append(f"{rel} imports serve")
        below = rel.startswith(("query/", "signals/", "backends/")) or rel in (
            "similarity.py", "calibration.py", "hybrid.py", "neighbours.py", "metrics.py", "store.py", "library.py",
            "audio.py", "pipeline.py")
        if below and any(m.startswith(above_query) for m in mods):
            bad.append(f"{rel} imports {sorted(m for m in mods if m.startswith(above_query))}")
        below_engine = rel.startswith("backends/") or rel in ("audio.py", "library.py", "store.py", "pipeline.py",
                                                             "distributed.py", "_migrations.py")
        if below_engine and any(m.startswith("soundalike.query") for m in mods):
            bad.append(f"{rel} imports the query engine")
    assert not bad, bad
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert max(sizes.values()) <= 600, {k: v for k, v in sizes.items() if v > 600}
