"""The tail of ``run`` on large libraries: sampled score matrices equal the whole library's, the
report stays bounded (no artist x artist matrix above its cap), and ``--jobs`` follows the machine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundalike import _machine
from soundalike.query.space import CalibratedSpace
from soundalike.reports import build, build_report, render_html

from _eval_fixtures import fill_store  # tests/unit is on sys.path (pytest prepend mode)


def _unit(rng, n, d=6):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("calibration", ["none", "center", "nicdm", "csls", "mp-empirical", "mp-gaussian"])
def test_sampled_score_matrix_is_the_whole_librarys_submatrix(rng, calibration):
    V = _unit(rng, 40)
    R = _unit(rng, 40)
    space = CalibratedSpace.fit(np.arange(40), calibration, V=V, R=R)
    score, raw = space.score_matrix()
    rows = np.array([1, 4, 5, 17, 30, 39])
    s_sub, r_sub = space.score_matrix(rows)
    np.testing.assert_array_equal(s_sub, score[np.ix_(rows, rows)])
    np.testing.assert_array_equal(r_sub, raw[np.ix_(rows, rows)])


def test_set_profile_submatrix(rng):
    S = np.clip(_unit(rng, 12) @ _unit(rng, 12).T, -1, 1)
    S = (S + S.T) / 2
    np.fill_diagonal(S, 1.0)
    space = CalibratedSpace.fit(np.arange(12), "center", S=S, S_raw=S)
    rows = np.array([0, 3, 7])
    np.testing.assert_array_equal(space.score_matrix(rows)[0], space.score_matrix()[0][np.ix_(rows, rows)])


def test_large_library_report_samples_and_leaves_out_matrices(store, monkeypatch):
    fill_store(store)  # 6 artists, 18 tracks
    full = build_report(store, backends=["toy"], calibration="center", k=2)
    assert "score_matrix" in full["models"][0] and "pairs_sample" not in full["models"][0]
    # the same library seen as "large": caps below its size
    monkeypatch.setattr(build, "REPORT_MATRIX_MAX_ARTISTS", 3)
    monkeypatch.setattr(build, "REPORT_SAMPLE_ARTISTS", 4)
    monkeypatch.setattr(build, "REPORT_SAMPLE_TRACKS", 9)
    rep = build_report(store, backends=["toy"], calibration="center", k=2)
    m = rep["models"][0]
    assert "score_matrix" not in m and "raw_cosine_matrix" not in m and "6 artists" in m["matrix_note"]
    assert m["pairs_sample"]["n_artists"] == 4 and m["pairs_sample"]["of"] == 6
    assert len(rep["neighbours"]) == 6  # every artist still gets its neighbours
    assert rep["neighbours"] == full["neighbours"]  # and the same ones: queries see the whole library
    assert set(m["pairs"]) >= {"min", "max", "mean", "std"}
    assert "same_artist_map" in m["metrics"]
    json.dumps(rep, allow_nan=False)
    html = render_html(rep)
    assert "left out of the report" in html and "seeded sample" in html


def test_default_jobs_follow_affinity_quota_and_memory(monkeypatch):
    monkeypatch.setattr(_machine.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(_machine, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(_machine, "_available_memory_mb", lambda: 64_000.0)
    assert _machine.available_cpus() == 8 and _machine.default_jobs() == 8  # no cap at 4
    assert _machine.threads_per_worker(8) == 1 and _machine.threads_per_worker(2) == 4
    monkeypatch.setattr(_machine, "_cgroup_quota", lambda: 2.5)  # docker --cpus 2.5
    assert _machine.available_cpus() == 2 and _machine.default_jobs() == 2
    monkeypatch.setattr(_machine, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(_machine, "_available_memory_mb", lambda: 2.5 * _machine.WORKER_MEMORY_MB)
    assert _machine.default_jobs() == 2  # memory for two workers only
    monkeypatch.setattr(_machine.os, "sched_getaffinity", lambda pid: {0}, raising=False)  # taskset -c 0
    assert _machine.default_jobs() == 1 and _machine.threads_per_worker(1) == 1


def test_cgroup_quota_files(tmp_path, monkeypatch):
    real = _machine.Path

    def fake(path: str):
        return real(str(tmp_path) + path)

    monkeypatch.setattr(_machine, "Path", fake)
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    assert _machine._cgroup_quota() is None  # no files: unlimited
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text("max 100000\n")
    assert _machine._cgroup_quota() is None
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text("150000 100000\n")
    assert _machine._cgroup_quota() == 1.5
