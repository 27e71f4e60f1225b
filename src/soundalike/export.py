"""Export one model's track vectors for data scientists: NumPy ``.npz`` or Apache Parquet.

Both hold, per track, ``track_id``, ``path``, ``artist``, ``artist_id``, ``title`` and the
vector (float32, the mean over the track's analysis windows, as every query uses it), plus the
model's ``backend``, ``model_key``, ``weights_kind``, ``layer`` and ``dim``. ``.npz`` needs only
NumPy (strings as unicode arrays, readable with ``allow_pickle=False``); Parquet needs the
``parquet`` extra (pyarrow) and stores the vector as a fixed-size list column, the model fields
as schema metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import atomic_files
from ._validation import check_option
from .query import load_vectors
from .errors import ParameterError, SoundalikeError
from .store import Store

__all__ = ["FORMATS", "VectorTable", "export_vectors", "read_export", "vector_table"]

FORMATS = ("npz", "parquet")
_TEXT = ("track_id", "path", "artist", "title")


@dataclass
class VectorTable:
    """Track vectors of one model with their identities, as written by `export_vectors`."""

    track_id: np.ndarray   # str [n]
    path: np.ndarray       # str [n]
    artist: np.ndarray     # str [n]
    artist_id: np.ndarray  # int64 [n]
    title: np.ndarray      # str [n] ("" when unknown)
    vectors: np.ndarray    # float32 [n, dim]
    meta: dict             # backend, model_key, weights_kind, layer, dim

    def __len__(self) -> int:
        return len(self.track_id)


def vector_table(store: Store, *, backend: str | None = None, layer: int | None = None) -> VectorTable:
    """Read one model's track vectors (default: the library's default model) with identities."""
    view = load_vectors(store, backend=backend, layer=layer)
    tracks = {t.track_id: t for t in store.tracks()}
    ts = [tracks[t] for t in view.track_ids]
    m = view.model
    return VectorTable(
        track_id=np.array([t.track_id for t in ts], dtype=str), path=np.array([t.path for t in ts], dtype=str),
        artist=np.array([t.artist for t in ts], dtype=str), artist_id=np.array([t.artist_id for t in ts], np.int64),
        title=np.array([t.title or "" for t in ts], dtype=str), vectors=np.ascontiguousarray(view.X, np.float32),
        meta={"backend": m.backend, "model_key": m.model_key, "weights_kind": m.weights_kind,
              "layer": int(view.layer), "dim": int(view.X.shape[1])},
    )


def _check_target(out: Path) -> None:
    parent = out.expanduser().resolve().parent
    if not parent.is_dir():
        raise ParameterError(f"Cannot write {out}: folder {parent} does not exist; create it or choose another --out.")
    if not os.access(parent, os.W_OK):
        raise ParameterError(f"Cannot write {out}: folder {parent} is not writable; choose another --out.")


def export_vectors(store: Store, out: str | os.PathLike, *, format: str = "npz", backend: str | None = None,
                   layer: int | None = None) -> VectorTable:
    """Write one model's track vectors to `out` as ``npz`` or ``parquet``; returns what was written.

    Parameters
    ----------
    store : Store
    out : path-like    the file to write (replaced atomically)
    format : {"npz", "parquet"}
    backend : str, optional    default: the library's default model
    layer : int, optional      default: the model's default layer

    Raises
    ------
    ParameterError
        Unknown format, no vectors for `backend`, or an unwritable target.
    SoundalikeError
        ``parquet`` without pyarrow (``pip install 'soundalike[parquet]'``).
    """
    check_option("format", format, FORMATS)
    out = Path(out)
    _check_target(out)
    if format == "parquet":
        pa, pq = _pyarrow()
    table = vector_table(store, backend=backend, layer=layer)
    with atomic_files({"out": out}) as tmps:  # a full disk: one line, the old file kept
        tmp = tmps["out"]
        if format == "npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, track_id=table.track_id, path=table.path, artist=table.artist, artist_id=table.artist_id,
                         title=table.title, vectors=table.vectors,
                         **{k: np.array(v) for k, v in table.meta.items()})
        else:
            flat = pa.array(table.vectors.reshape(-1), type=pa.float32())
            cols = {k: pa.array(getattr(table, k).tolist(), type=pa.string()) for k in _TEXT}
            cols["artist_id"] = pa.array(table.artist_id, type=pa.int64())
            cols["vector"] = pa.FixedSizeListArray.from_arrays(flat, table.meta["dim"])
            schema_meta = {f"soundalike.{k}": str(v) for k, v in table.meta.items()}
            pq.write_table(pa.table(cols).replace_schema_metadata(schema_meta), tmp)
    return table


def read_export(path: str | os.PathLike) -> VectorTable:
    """Read a file written by `export_vectors` (format from its suffix: ``.parquet`` or else npz)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        _, pq = _pyarrow()
        t = pq.read_table(path)
        raw = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items() if k.startswith(b"soundalike.")}
        meta = {k.removeprefix("soundalike."): v for k, v in raw.items()}
        for k in ("layer", "dim"):
            meta[k] = int(meta[k])
        vec = t.column("vector").combine_chunks()
        X = vec.values.to_numpy().reshape(len(t), meta["dim"]).astype(np.float32)
        return VectorTable(*(np.array(t.column(k).to_pylist(), dtype=str) for k in ("track_id", "path", "artist")),
                           artist_id=t.column("artist_id").to_numpy().astype(np.int64),
                           title=np.array(t.column("title").to_pylist(), dtype=str), vectors=X, meta=meta)
    with np.load(path, allow_pickle=False) as z:
        meta = {k: z[k].item() for k in ("backend", "model_key", "weights_kind", "layer", "dim")}
        return VectorTable(z["track_id"], z["path"], z["artist"], z["artist_id"], z["title"], z["vectors"], meta)


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SoundalikeError("--format parquet needs pyarrow; install it with "
                                 "`pip install 'soundalike[parquet]'`, or use --format npz.") from None
    return pa, pq
