"""track_workers.py: the main job's one-pass analysis in worker processes gives what ``ingest``
then ``embed`` in this process give (same tracks, vectors, failures), and never analyses a file
twice: a rerun, a moved file and a duplicated file cost a hash, not a model pass."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from soundalike.audio import WindowPolicy
from soundalike.errors import WeightsError
from soundalike.backends import load_backend
from soundalike.pipeline import EmbedPlan, embed, ingest
from soundalike.store import Store
from soundalike.track_workers import TrackWorkers, can_use_workers, ingest_and_embed
from tests.unit.test_pipeline import _bad_files as bad_files

POLICY = WindowPolicy.parse("middle:4")


def _models():
    return [load_backend("musicnn-msd", tiny=True), load_backend("descriptors")]


def _vectors(store: Store) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for m in store.models():
        for layer in range(m.n_layers):
            tids, windows, X = store.window_embeddings(m.model_key, layer=layer)
            for tid, w, x in zip(tids, windows, X):
                out[(tid, m.model_key, layer, int(w))] = x
    return out


def _kinds(summary) -> list[str]:
    return sorted(f.kind for f in summary.failures)


def test_one_pass_in_workers_equals_ingest_then_embed(small_library, tmp_path, write_audio):
    bad_files(tmp_path, write_audio)
    models = _models()
    assert can_use_workers(models, 2)
    with Store(tmp_path / "here.db") as here:
        run = here.start_run(["test"])
        a1 = ingest(here, small_library, policy=POLICY, jobs=1, run_id=run)
        a2 = embed(here, models, policy=POLICY, jobs=1, run_id=run)
        expected_failures = sorted(here.failures(run))
        expected = _vectors(here)
        expected_tracks = {t.track_id: t.path for t in here.tracks()}
    workers = TrackWorkers([m.load_spec for m in models], POLICY, 2)
    with Store(tmp_path / "workers.db") as st:
        run = st.start_run(["test"])
        b1, b2 = ingest_and_embed(st, small_library, models, policy=POLICY, jobs=2, workers=workers, run_id=run)
        got = _vectors(st)
        assert {t.track_id: t.path for t in st.tracks()} == expected_tracks
        assert sorted(st.failures(run)) == expected_failures
    assert (b1.done, b1.cached, _kinds(b1)) == (a1.done, a1.cached, _kinds(a1))
    assert (b2.done, b2.n_failed) == (a2.done, a2.n_failed)
    assert got.keys() == expected.keys()
    assert {k[1] for k in got} == {k for ks in EmbedPlan(models, POLICY).keys for k in ks}  # penultimate, taggram, descriptors
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6)


def test_rerun_moved_and_duplicated_files_are_not_analysed_again(small_library, tmp_path):
    models = _models()
    with Store(tmp_path / "s.db") as st:
        s1, s2 = ingest_and_embed(st, small_library, models, policy=POLICY, jobs=2)
        assert s2.done == s1.done > 0
        first = _vectors(st)
        # a rerun: every file known by path and bytes
        r1, r2 = ingest_and_embed(st, small_library, models, policy=POLICY, jobs=2)
        assert (r1.done, r2.done, r2.cached) == (0, 0, s2.done)
        # a moved file and a copy under another name: hashed, stored, not analysed
        src = next(p for p in sorted(small_library.rglob("*.wav")))
        moved = src.with_name("moved.wav")
        src.rename(moved)
        shutil.copy(moved, moved.with_name("copy.wav"))
        m1, m2 = ingest_and_embed(st, small_library, models, policy=POLICY, jobs=2)
        assert m2.done == 0
        paths = {t.path for t in st.tracks()}
        assert str(moved) in paths or str(moved.with_name("copy.wav")) in paths
        assert _vectors(st).keys() == first.keys()


def test_workers_started_for_another_plan_restart_for_this_one(tmp_path, small_library):
    models = _models()
    workers = TrackWorkers([models[1].load_spec], POLICY, 2)  # descriptors only
    plan = EmbedPlan(models, POLICY)
    with Store(tmp_path / "s.db") as st, workers:
        assert not workers.serves(plan)
        wav = str(next(small_library.rglob("*.wav")))
        res = list(workers.results(plan, [("t", wav, frozenset(plan.all_keys))], [[0, 0.0, 0.0, 0.0]] * 2))
        assert workers.serves(plan) and set(res[0].vectors) == set(plan.all_keys)  # never the old plan's keys
        s1, s2 = ingest_and_embed(st, small_library, models, policy=POLICY, jobs=2, workers=workers)
        assert s2.done == s1.done > 0


def test_a_worker_that_cannot_build_its_backends_reports_why(tmp_path, small_library):
    models = _models()
    bad = dict(models[0].load_spec, weights=str(tmp_path / "no-such-checkpoint"), tiny=False)
    workers = TrackWorkers([bad, models[1].load_spec], POLICY, 2)
    plan = EmbedPlan(models, POLICY)
    workers.specs = [m.load_spec for m in models]  # as if the parent had built the same (it could not)
    with workers, pytest.raises(WeightsError, match="checkpoint"):  # the worker's own error, not a broken pool
        next(workers.results(plan, iter([("t", str(next(small_library.rglob("*.wav"))), frozenset(plan.all_keys))]),
                             [[0, 0.0, 0.0, 0.0] for _ in plan.backends]))
