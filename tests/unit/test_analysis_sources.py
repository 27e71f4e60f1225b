"""analysis.sources and the entry point: a watcher's batch (some files of a folder, files gone),
the stored tracks, executors that give the same vectors, a run without backends (ingest)."""

from __future__ import annotations

import numpy as np

from soundalike.analysis import AnalysisSummary, Folder, InProcess, Stored, analyse, model_key
from soundalike.audio import WindowPolicy
from tests.unit.test_pipeline import SpectrumBackend


def test_a_batch_of_paths_analyses_only_those_files(small_library, store):
    files = sorted(small_library.rglob("*.*"))
    out = analyse(store, Folder(small_library, paths=files[:2]), [SpectrumBackend()])
    assert isinstance(out, AnalysisSummary)
    assert (out.ingest.done, out.embed.done, out.n_failed) == (2, 2, 0)
    assert sorted(t.path for t in store.tracks()) == sorted(str(p) for p in files[:2])
    rest = analyse(store, Folder(small_library, paths=files[2:]), [SpectrumBackend()])
    assert (rest.ingest.done, rest.embed.done, rest.embed.cached) == (len(files) - 2, len(files) - 2, 0)


def test_removed_files_are_forgotten_and_a_copy_keeps_its_track(small_library, store):
    analyse(store, small_library, [SpectrumBackend()])
    files = sorted(small_library.rglob("*.*"))
    gone, kept = files[0], files[1]
    copy = kept.with_name("copy" + kept.suffix)
    copy.write_bytes(kept.read_bytes())
    analyse(store, Folder(small_library, paths=[copy]), [SpectrumBackend()])  # same bytes: one track, two paths
    gone.unlink()
    kept.unlink()
    out = analyse(store, Folder(small_library, paths=[], removed=[gone, kept]), [SpectrumBackend()])
    assert out.removed == 1  # `gone` had no other path; `kept` lives on as its copy
    paths = {t.path for t in store.tracks()}
    assert str(gone) not in paths and str(kept) not in paths and str(copy) in paths
    assert len(paths) == len(files) - 1


def test_stored_source_and_ingest_only(small_library, store):
    only = analyse(store, small_library, ())  # no backend: validate and store the files
    assert only.embed is None and only.ingest.done == 6 and not store.models()
    out = analyse(store, Stored(), [SpectrumBackend()])
    assert out.ingest is None and (out.embed.done, out.embed.cached) == (6, 0)
    again = analyse(store, Stored(), [SpectrumBackend()])
    assert (again.embed.done, again.embed.cached) == (0, 6)


def test_in_process_on_an_accelerator_batches_tracks_and_stores_the_same(small_library, tmp_path):
    """Tracks grouped for an accelerator (several tracks' windows per call) give the vectors of
    one track at a time (CONTRACTS tolerance)."""
    from soundalike.store import Store

    class Accelerated(SpectrumBackend):
        device = "cuda:0"  # only read to choose the grouping; the maths runs on the CPU here

    got = {}
    grouped = Accelerated()
    for name, backend, ex in (("cpu", SpectrumBackend(), InProcess()),
                              ("grouped", grouped, InProcess(jobs=2, batch_size=4))):
        with Store(tmp_path / f"{name}.db") as s:
            out = analyse(s, small_library, [backend], executor=ex)
            assert out.embed.done == 6
            got[name] = s.track_embeddings(model_key(backend, WindowPolicy())[0])
    assert got["cpu"][0] == got["grouped"][0]
    np.testing.assert_allclose(got["cpu"][1], got["grouped"][1], rtol=1e-5, atol=1e-6)
    assert max(grouped.calls) > 1  # windows of several tracks shared a call
