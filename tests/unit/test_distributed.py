"""distributed.py: Ray workers store the same vectors as the local pipeline; a killed worker
loses no finished work and the rerun (or the surviving worker) completes the library.

They share the session's local Ray cluster (``ray_cluster`` in tests/conftest.py); those tests are slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from ci_support import import_or_skip

from soundalike.audio import WindowPolicy
from soundalike.backends.registry import load_backend
from soundalike.pipeline import embed, ingest, model_key
from soundalike.store import Store
from tests.conftest import chirp, noise, tone

ray = import_or_skip("ray")
from soundalike.distributed import RayEmbedder, WorkerLostError, embed_ray  # noqa: E402

BACKEND = "descriptors"
N_TRACKS = 12


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    import soundfile as sf

    root = tmp_path_factory.mktemp("raylib") / "lib"
    for i in range(N_TRACKS):
        kind = i % 3
        y = (tone(180 + 40 * i, 3) if kind == 0 else noise(3, seed=i) if kind == 1 else chirp(3, f0=150 + 30 * i))
        p = root / f"Artist {i % 4}" / "Album" / f"{i:02d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), y, 22050)
    return root


def _fresh_store(tmp_path, library, name: str) -> Store:
    s = Store(tmp_path / f"{name}.db")
    assert ingest(s, library).done == N_TRACKS
    return s


def _vectors(store: Store, key: str) -> dict[str, np.ndarray]:
    tids, X = store.track_embeddings(key)
    return dict(zip(tids, X))


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, library):
    """Vectors of the local pipeline: ``(model_key, {track_id: (dim,)})``."""
    s = _fresh_store(tmp_path_factory.mktemp("local"), library, "local")
    backend = load_backend(BACKEND)
    embed(s, [backend], batch_size=4)
    key = model_key(backend, WindowPolicy())[0]
    ref = _vectors(s, key)
    s.close()
    assert len(ref) == N_TRACKS
    return key, ref


def _assert_same(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    assert set(got) == set(ref)
    for tid in ref:
        np.testing.assert_allclose(got[tid], ref[tid], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ray_workers_store_the_local_vectors(ray_cluster, library, local_reference, tmp_path, workers):
    key, ref = local_reference
    s = _fresh_store(tmp_path, library, f"ray{workers}")
    summary = embed_ray(s, BACKEND, workers=workers, batch_size=3)
    assert summary.done == N_TRACKS and summary.n_failed == 0
    assert [m.model_key for m in s.models()] == [key]  # same model key as the local run
    _assert_same(_vectors(s, key), ref)
    again = embed_ray(s, BACKEND, workers=workers, batch_size=3)  # nothing left to do
    assert again.done == 0 and again.cached == N_TRACKS
    s.close()


@pytest.mark.slow
def test_killed_only_worker_keeps_finished_batches_and_rerun_completes(ray_cluster, library, local_reference, tmp_path):
    key, ref = local_reference
    s = _fresh_store(tmp_path, library, "kill1")
    committed: list[int] = []
    with RayEmbedder(BACKEND, workers=1, batch_size=2) as pool:
        def kill_after_first_batch(stage, done, total):
            if done and not committed:
                committed.append(done)
                ray.kill(pool.actors[0])

        with pytest.raises(WorkerLostError, match="rerun"):
            pool.run(s, progress=kill_after_first_batch)
    kept = _vectors(s, key)
    assert committed and len(committed[0:1]) == 1
    assert 2 <= len(kept) < N_TRACKS  # the first batch (at least) is committed, the rest is missing
    _assert_same(kept, {t: ref[t] for t in kept})
    rerun = embed_ray(s, BACKEND, workers=1, batch_size=2)
    assert rerun.cached == len(kept) and rerun.done == N_TRACKS - len(kept)  # only the missing work
    _assert_same(_vectors(s, key), ref)
    s.close()


@pytest.mark.slow
def test_killed_worker_batches_go_to_the_survivor(ray_cluster, library, local_reference, tmp_path):
    key, ref = local_reference
    s = _fresh_store(tmp_path, library, "kill2")
    killed: list[bool] = []
    with RayEmbedder(BACKEND, workers=2, batch_size=2) as pool:
        def kill_one(stage, done, total):
            if done and not killed:
                killed.append(True)
                ray.kill(pool.actors[0])

        summary = pool.run(s, progress=kill_one)
    assert killed and summary.done == N_TRACKS
    _assert_same(_vectors(s, key), ref)
    s.close()


@pytest.mark.parametrize("kw", [{"workers": 0}, {"batch_size": 0}, {"max_in_flight": -1}, {"cpus_per_worker": 0}])
def test_bad_options_are_rejected_before_ray_starts(kw):
    from soundalike.errors import ParameterError

    with pytest.raises(ParameterError, match=next(iter(kw))):
        RayEmbedder(BACKEND, **kw)
