"""pipeline.py: ingest validation per file, embed caching (a second run does no model work),
batching across files equals one by one, failures recorded and the batch goes on."""

from __future__ import annotations

import os

import numpy as np
import pytest

from soundalike.audio import WindowPolicy
from soundalike.backends.base import Backend
from soundalike.pipeline import embed, ingest, model_key
from tests.conftest import SR, noise, tone


class SpectrumBackend(Backend):
    """A tiny deterministic backend (band energies), counting the clips it embeds."""

    name = "test-spectrum"
    sample_rate = 16000

    def __init__(self, *, bands: int = 8) -> None:
        self.bands = bands
        self.embedding_size = bands
        self.n_layers = 2
        self.calls: list[int] = []

    def config(self) -> dict:
        return {"bands": self.bands}

    def embed_layers(self, audio: np.ndarray) -> np.ndarray:
        self.calls.append(audio.shape[0])
        spec = np.abs(np.fft.rfft(audio, axis=1))
        e = np.stack([b.sum(axis=1) for b in np.array_split(spec, self.bands, axis=1)], axis=1)
        e = np.log1p(e).astype(np.float32)
        return np.stack([e, 2 * e], axis=1)


def _bad_files(tmp_path, write_audio):
    (tmp_path / "lib" / "Bad").mkdir(parents=True, exist_ok=True)
    (tmp_path / "lib" / "Bad" / "empty.wav").write_bytes(b"")
    (tmp_path / "lib" / "Bad" / "corrupt.ogg").write_bytes(os.urandom(3000))
    write_audio("lib/Bad/silent.wav", np.zeros(SR * 2, np.float32))
    full = write_audio("lib/Bad/full.flac", noise(3)).read_bytes()
    (tmp_path / "lib" / "Bad" / "full.flac").write_bytes(full[:300])
    y = noise(2)
    y[5] = np.inf
    write_audio("lib/Bad/inf.wav", y, subtype="FLOAT")
    (tmp_path / "lib" / "Bad" / "song.mid").write_bytes(b"MThd")
    write_audio("lib/Bad/short.wav", noise(0.2))


def test_ingest_reports_each_bad_file_and_keeps_the_good(small_library, tmp_path, write_audio, store):
    _bad_files(tmp_path, write_audio)
    s = ingest(store, small_library, run_id=store.start_run(["test"]))
    assert s.done == 6
    kinds = sorted(f.kind for f in s.failures)
    assert kinds == sorted(["empty", "decode", "silent", "decode", "invalid", "unsupported", "too-short"])
    assert all(f.message and f.path for f in s.failures)
    assert store.counts()["tracks"] == 6 and store.counts()["failures"] == 7
    assert {a.name for a in store.artists()} == {"Tone Artist", "Noise Artist", "Chirp Artist"}
    # a second ingest recognises everything by hash
    s2 = ingest(store, small_library)
    assert s2.done == 0 and s2.cached == 6


def test_moved_file_is_not_analysed_again(small_library, store):
    ingest(store, small_library)
    b = SpectrumBackend()
    embed(store, [b])
    src = small_library / "Tone Artist" / "Album" / "00.wav"
    src.rename(small_library / "Tone Artist" / "renamed.wav")
    s = ingest(store, small_library)
    assert s.done == 0 and s.cached == 6
    b2 = SpectrumBackend()
    assert embed(store, [b2]).done == 0 and b2.calls == []
    assert any(t.path.endswith("renamed.wav") for t in store.tracks())


def test_embed_caches_and_batches(small_library, store):
    ingest(store, small_library)
    b = SpectrumBackend()
    b.device = "cuda"  # an accelerator gets the equal-length windows of 6 files in one batch
    s = embed(store, [b], batch_size=16)
    assert s.done == 6 and s.cached == 0
    assert sum(b.calls) == 6 and len(b.calls) == 1
    again = SpectrumBackend()
    s2 = embed(store, [again])
    assert s2.done == 0 and s2.cached == 6 and again.calls == []  # no model work at all
    key, _ = model_key(b, WindowPolicy())
    cost = store.timing(key)  # what the run cost is recorded for reports (6 clips of 4 s)
    assert cost["n_clips"] == 6 and cost["seconds_per_30s_clip"] > 0 and cost["peak_rss_mb"] > 10
    tids, X = store.track_embeddings(key, layer=1)
    assert X.shape == (6, 8)
    # batched vectors equal one-by-one vectors
    one = SpectrumBackend()
    for tid, x in zip(tids, X):
        from soundalike.audio import load_windows

        w = load_windows(store.track(tid).path, policy=WindowPolicy(), sr=16000)
        np.testing.assert_allclose(one.embed_layers(np.stack(w.clips))[0, 1], x, rtol=1e-5, atol=1e-6)


def test_new_options_make_a_new_model_key(small_library, store):
    ingest(store, small_library)
    embed(store, [SpectrumBackend(bands=8)])
    s = embed(store, [SpectrumBackend(bands=4)])
    assert s.done == 6
    assert len(store.models()) == 2
    s3 = embed(store, [SpectrumBackend(bands=8)], policy=WindowPolicy.parse("spread:2:1"))
    assert s3.done == 6  # another window policy is another model
    key, _ = model_key(SpectrumBackend(bands=8), WindowPolicy.parse("spread:2:1"))
    _, win, _ = store.window_embeddings(key)
    assert sorted(set(win.tolist())) == [0, 1]


def test_file_deleted_after_ingest_is_a_failure_not_a_crash(small_library, store):
    ingest(store, small_library)
    (small_library / "Noise Artist" / "Album" / "01.flac").unlink()
    s = embed(store, [SpectrumBackend()], run_id=store.start_run(["t"]))
    assert s.done == 5 and s.failed == {"unreadable": 1}


@pytest.mark.parametrize("jobs", [2])
def test_worker_pool_gives_the_same_vectors(small_library, tmp_path, jobs):
    from soundalike.store import Store

    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    for st, j in ((a, 1), (b, jobs)):
        ingest(st, small_library, jobs=j)
        embed(st, [SpectrumBackend()], jobs=j, batch_size=2)
    key, _ = model_key(SpectrumBackend(), WindowPolicy())
    ta, Xa = a.track_embeddings(key)
    tb, Xb = b.track_embeddings(key)
    assert ta == tb
    np.testing.assert_allclose(Xa, Xb, rtol=1e-5, atol=1e-6)


def test_next_batch_decodes_while_the_model_runs(small_library, store, monkeypatch):
    """Decoding (and resampling) of the next tracks overlaps the model work on this one."""
    import threading
    import time

    from soundalike.analysis import executors as pipeline

    events: list[tuple[str, float]] = []
    lock = threading.Lock()
    real_decode = pipeline._decode_item

    def decode(args):
        out = real_decode(args)
        with lock:
            events.append(("decoded", time.perf_counter()))
        return out

    class SlowBackend(SpectrumBackend):
        def embed_layers(self, audio):
            start = time.perf_counter()
            time.sleep(0.3)
            with lock:
                events.append(("model", start))
            return super().embed_layers(audio)

    monkeypatch.setattr(pipeline, "_decode_item", decode)
    ingest(store, small_library)
    s = embed(store, [SlowBackend()], batch_size=2, jobs=1)
    assert s.done == 6 and s.n_failed == 0
    model_starts = [t for e, t in events if e == "model"]
    decoded = sorted(t for e, t in events if e == "decoded")
    # the next files were decoded before the model finished the first one (0.3 s)
    assert decoded[2] < model_starts[0] + 0.3
    # and the stored vectors are those of a plain run
    tids, X = store.track_embeddings(model_key(SlowBackend(), WindowPolicy())[0])
    assert X.shape == (6, 8) and np.isfinite(X).all()


@pytest.mark.requires_import("torch")
def test_default_musicnn_pass_also_stores_its_taggram(small_library, store):
    """One forward pass, two model rows: the penultimate vectors and the 50 tag probabilities,
    same windows; a second run does nothing; an old library gets only what it lacks."""
    from soundalike.backends import load_backend

    ingest(store, small_library)
    m = load_backend("musicnn-msd", tiny=True)
    s = embed(store, [m])
    assert s.done == 6
    pen_key, tag_key = model_key(m, WindowPolicy())[0], model_key(m.with_output("taggram"), WindowPolicy())[0]
    models = {x.model_key: x for x in store.models()}
    assert models[tag_key].backend == "musicnn-msd" and models[tag_key].dim == 50
    assert models[tag_key].weights_kind == "random" and models[pen_key].dim == 200
    tids, tags = store.track_embeddings(tag_key, layer=0)
    assert tags.shape == (6, 50) and ((tags >= 0) & (tags <= 1)).all()
    from soundalike.audio import load_windows

    w = load_windows(store.track(tids[0]).path, policy=WindowPolicy(), sr=16000)
    np.testing.assert_allclose(tags[0], m.tag_probabilities(w.clips[0][None])[0][0], rtol=1e-5, atol=1e-6)
    assert embed(store, [m]).cached == 6
    # a library analysed before the taggram existed: only the taggram rows are added
    with store.transaction() as db:
        db.execute("DELETE FROM embeddings WHERE model_key=?", (tag_key,))
    before = store.track_embeddings(pen_key, layer=0)[1]
    assert embed(store, [m]).done == 6
    assert store.track_embeddings(tag_key, layer=0)[1].shape == (6, 50)
    np.testing.assert_array_equal(store.track_embeddings(pen_key, layer=0)[1], before)
    # queries by backend name read the penultimate vectors, never the companion taggram
    assert store.models_for_backend("musicnn-msd")[0].model_key == pen_key
    assert models[tag_key].config["companion_of"] == pen_key and models[tag_key].config["output"] == "taggram"
    assert [x.model_key for x in store.models()] == [pen_key, tag_key]
