"""One contract for every registered backend (small random instances via ``tiny=True``).

Each backend in the registry, each built-in name of CONTRACTS.md (skipped with a reason while
its module is not importable yet) and an ensemble go through the same checks: shapes, float32,
finite, batch == one by one, deterministic, regular timestamps inside the clip, clear errors on
bad audio, model_key tracks options, status() shape, and cheap module import.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
from ci_support import skip_or_fail

from soundalike.backends.base import Backend, get_scene_embeddings, get_timestamp_embeddings
from soundalike.backends.ensemble import Ensemble
from soundalike.backends.registry import available_backends, backend_class, load_backend
from soundalike.errors import InvalidAudioError

pytestmark = pytest.mark.usefixtures("isolated_weights")

BUILT_IN = (
    "descriptors", "musicnn-msd", "musicnn-mtt", "musicnn-msd-vgg", "musicnn-mtt-vgg",
    "vggish", "mert-v1-95m", "mert-v1-330m",
)
ENSEMBLES = ("vggish+mert-v1-95m",)
NAMES = tuple(sorted(set(available_backends()) | set(BUILT_IN))) + ENSEMBLES

#: options that change outputs, tried in order; the first one a backend accepts is used
OPTION_VARIANTS = (
    ("pooling", "meanstd"),
    ("final_relu", True),
    ("key_profile", "krumhansl-kessler"),
    ("seed", 1),
    ("dtype", "bfloat16"),
)


def _accepts(cls: type, option: str) -> bool:
    params = inspect.signature(cls.__init__).parameters
    return option in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _check_available(name: str) -> list[type[Backend]]:
    classes = []
    for member in name.split("+"):
        if member not in available_backends():
            skip_or_fail(f"backend {member!r} is not registered: its module cannot be imported")
        cls = backend_class(member)
        missing = cls.missing_requirements()
        if missing:
            skip_or_fail(f"backend {member!r} needs {', '.join(missing)} (extra {cls.extra!r})")
        classes.append(cls)
    return classes


def build(name: str, **options) -> Backend:
    """A small random instance (``tiny=True`` where the backend has weights)."""
    classes = _check_available(name)
    if "+" in name:
        return Ensemble(name.split("+"), tiny=True, **options)
    if _accepts(classes[0], "tiny"):
        options = {"tiny": True, **options}
    return load_backend(name, **options)


_CACHE: dict[str, Backend] = {}


@pytest.fixture(params=NAMES)
def backend(request) -> Backend:
    name = request.param
    if name not in _CACHE:
        _CACHE[name] = build(name)
    return _CACHE[name]


def _audio(b: Backend, gen, n: int = 3) -> np.ndarray:
    dur = max(3.0, 2 * float(b.min_duration_s))
    return gen.clips(int(b.sample_rate), dur, n=n)


def test_shapes_dtype_finite(backend, gen):
    x = _audio(backend, gen)
    e = backend.embed_layers(x)
    assert e.shape == (3, backend.n_layers, backend.embedding_size)
    assert e.dtype == np.float32 and np.isfinite(e).all()
    assert 0 <= backend.default_layer < backend.n_layers
    assert np.abs(e).max() > 0, "all-zero embeddings"
    scene = get_scene_embeddings(x, backend)
    assert scene.shape == (3, backend.embedding_size) and scene.dtype == np.float32
    np.testing.assert_allclose(scene, e[:, backend.default_layer], rtol=1e-5, atol=1e-6)
    assert backend.weights_kind in ("real", "random", "none")


def test_batch_equals_one_by_one(backend, gen):
    x = _audio(backend, gen)
    batch = backend.embed_layers(x)
    single = np.concatenate([backend.embed_layers(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)


def test_deterministic(backend, gen):
    x = _audio(backend, gen, n=2)
    np.testing.assert_array_equal(backend.embed_layers(x), backend.embed_layers(x))
    again = build(backend.name)
    assert again.model_key == backend.model_key
    np.testing.assert_allclose(again.embed_layers(x), backend.embed_layers(x), rtol=1e-5, atol=1e-6)


def test_timestamps_regular_inside_the_clip(backend, gen):
    x = _audio(backend, gen, n=2)
    dur_ms = 1000.0 * x.shape[1] / backend.sample_rate
    emb, times = get_timestamp_embeddings(x, backend)
    assert emb.ndim == 3 and emb.shape[:2] == times.shape and emb.shape[0] == 2 and emb.shape[1] >= 1
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
    assert (times >= 0).all() and (times <= dur_ms).all()
    np.testing.assert_array_equal(times[0], times[1])
    if times.shape[1] >= 3:
        step = np.diff(times[0])
        assert (step > 0).all()
        np.testing.assert_allclose(step, step.mean(), rtol=1e-3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda x: (x * 32767).astype(np.int16), "dtype"),
        (lambda x: np.where(np.arange(x.shape[1]) == 5, np.nan, x).astype(np.float32), "NaN"),
        (lambda x: x[:, None, :], "dimensions"),
    ],
    ids=["int16", "nan", "3d"],
)
def test_bad_audio_is_refused_clearly(backend, gen, bad, match):
    x = bad(_audio(backend, gen, n=1))
    with pytest.raises(InvalidAudioError, match=match):
        get_scene_embeddings(x, backend)
    with pytest.raises(InvalidAudioError, match=match):
        get_timestamp_embeddings(x, backend)


def test_model_key_follows_options(backend):
    classes = _check_available(backend.name)
    for option, value in OPTION_VARIANTS:
        if all(_accepts(c, option) for c in classes[:1]) or ("+" in backend.name and any(_accepts(c, option) for c in classes)):
            other = build(backend.name, **{option: value})
            assert other.model_key != backend.model_key, f"{option}={value!r} does not change the model key"
            assert other.config() != backend.config()
            return
    pytest.skip(f"{backend.name} takes none of the known output-changing options")


@pytest.mark.parametrize("name", sorted(set(available_backends())))
def test_status_is_cheap_and_well_formed(name):
    st = backend_class(name).status()
    assert st.name == name and st.status in ("ready", "needs-extra", "weights-missing")
    assert st.sample_rate > 0 and st.embedding_size > 0
    if st.status != "ready":
        assert st.install_hint, "a backend that is not ready must say how to fix it"
    assert set(st.as_json()) >= {"name", "status", "weights_kind", "embedding_size", "sample_rate", "install_hint"}


def test_listing_backends_imports_no_torch():
    code = (
        "import sys; from soundalike.backends import available_backends, backend_statuses; "
        "available_backends(); backend_statuses(); "
        "heavy = [m for m in ('torch', 'transformers', 'tensorflow') if m in sys.modules]; "
        "print(','.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"listing backends imported {proc.stdout.strip()}: {proc.stderr[-2000:]}"
