"""Nearest-neighbour search behind one API: exact batched numpy, or Faiss for large collections.

``NeighbourIndex(X, metric="cosine", backend="auto").search(Q, k, exclude=...)`` returns the k
best items of the index for every query, best first. ``backend="auto"`` uses Faiss (the
``[ann]`` extra, HNSW over inner products) when it is installed and the index has at least
:data:`FAISS_MIN_ITEMS` items, else exact search. Exclusions (the query itself, the same artist,
the same album) are applied after the search, so Faiss is asked for more candidates.
``ann="ivf"`` builds IVF-Flat instead of HNSW; a Faiss index can be saved beside the store
(``save``) and reopened over the same vectors (``load``) instead of being rebuilt.
``NeighbourIndex.cached`` does both: it reuses the file when its fingerprint (the item ids, the
vectors and the index options) still matches, else builds, saves and returns a fresh index;
``index_dir`` names the folder beside a store where the service and ``soundalike index`` keep them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_embeddings, check_option, check_positive_int
from .errors import BackendUnavailable, DimensionMismatchError, ParameterError

__all__ = ["NeighbourIndex", "FAISS_MIN_ITEMS", "faiss_available", "index_dir", "vectors_fingerprint"]

#: ``backend="auto"`` switches to Faiss at this many indexed items
FAISS_MIN_ITEMS = 50_000
METRICS = ("cosine", "ip", "l2")
BACKENDS = ("auto", "exact", "faiss")


def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


def index_dir(db_path: str | Path) -> Path:
    """The folder beside a store that holds its saved Faiss indexes (``library.db`` → ``library.db.indexes/``)."""
    p = Path(db_path)
    return p.with_name(p.name + ".indexes")


def vectors_fingerprint(ids: Sequence[str], X: np.ndarray, **options: Any) -> str:
    """sha256 of the item ids, the vectors and the index options: a saved index is reused only on a match."""
    h = hashlib.sha256()
    h.update(json.dumps({"ids": list(map(str, ids)), "shape": list(X.shape), "options": options},
                        sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return h.hexdigest()


class NeighbourIndex:
    """Top-k search over the rows of `X`.

    Parameters
    ----------
    X : np.ndarray [shape=(n_items, d)]
    metric : {"cosine", "ip", "l2"}
        ``cosine`` normalises rows; scores are similarities (``l2`` returns negative
        squared distances so that larger is always better).
    backend : {"auto", "exact", "faiss"}
    batch_size : int   queries per block of the exact search (bounds memory to batch × n)
    hnsw_m, ef_search : int   Faiss HNSW graph degree and search breadth
    ann : {"hnsw", "ivf"}
        Faiss index kind. ``ivf`` (IVF-Flat, ``nlist`` ≈ 4·√n, ``nprobe`` lists searched) gave
        recall@10 1.000 at about 1 ms per query over 1M clustered 768-d vectors on 2 cores
        (benchmarks/RESULTS.md); HNSW builds slower there.
    nprobe : int   IVF lists visited per query

    Examples
    --------
    >>> X = np.eye(4, dtype=np.float32)
    >>> scores, idx = NeighbourIndex(X, backend="exact").search(X[:1], 2, exclude=[[0]])
    >>> idx.shape
    (1, 2)
    """

    def __init__(self, X: Any, *, metric: str = "cosine", backend: str = "auto", batch_size: int = 1024,
                 hnsw_m: int = 32, ef_search: int = 128, ann: str = "hnsw", nprobe: int = 16) -> None:
        check_option("metric", metric, METRICS)
        check_option("backend", backend, BACKENDS)
        X = check_embeddings(X, name="index vectors")
        self.metric = metric
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.n_items, self.dim = X.shape
        if backend == "auto":
            backend = "faiss" if faiss_available() and self.n_items >= FAISS_MIN_ITEMS else "exact"
        if backend == "faiss" and not faiss_available():
            raise BackendUnavailable("backend='faiss' needs the faiss package: pip install 'soundalike[ann]'.")
        check_option("ann", ann, ("hnsw", "ivf"))
        self.backend = backend
        self.ann = ann
        self._X = self._prep(np.asarray(X, dtype=np.float32))
        self._index = None
        self.reused = False  # set by ``cached``: True when the index came from its saved file
        if backend == "faiss":
            if ann == "ivf":
                self._build_ivf(check_positive_int("nprobe", nprobe))
            else:
                self._build_faiss(hnsw_m, ef_search)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            n = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.where(n > 0, n, 1.0)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _build_faiss(self, hnsw_m: int, ef_search: int) -> None:
        import faiss

        mt = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexHNSWFlat(self.dim, int(hnsw_m), mt)
        index.hnsw.efSearch = int(ef_search)
        index.add(self._X)
        self._index = index

    def _build_ivf(self, nprobe: int) -> None:
        import faiss

        mt = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        nlist = max(1, min(int(4 * np.sqrt(self.n_items)), self.n_items // 39 or 1))  # >= 39 training points per list
        quantizer = faiss.IndexFlatL2(self.dim) if mt == faiss.METRIC_L2 else faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, mt)
        rng = np.random.default_rng(0)  # a fixed training sample: the same library builds the same index
        sample = self._X if self.n_items <= 256 * nlist else self._X[rng.choice(self.n_items, 256 * nlist, replace=False)]
        index.train(sample)
        index.add(self._X)
        index.nprobe = min(nprobe, nlist)
        self._index = index

    def save(self, path: str | Path) -> Path:
        """Write a Faiss index to `path` (Faiss's own format, no pickle), e.g. beside the store.

        Load it with :meth:`load` and the same vectors.
        """
        if self._index is None:
            raise ParameterError("only a backend='faiss' index can be saved; the exact index needs no file.")
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(path))
        return path

    @classmethod
    def load(cls, path: str | Path, X: Any, *, metric: str = "cosine", batch_size: int = 1024) -> "NeighbourIndex":
        """Reopen an index written by :meth:`save` over the same vectors `X` (checked by count and dim)."""
        if not faiss_available():
            raise BackendUnavailable("loading a saved index needs the faiss package: pip install 'soundalike[ann]'.")
        import faiss

        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"No saved index at {path}; build one with NeighbourIndex(..., backend='faiss').save().")
        index = faiss.read_index(str(path))
        self = cls(X, metric=metric, backend="exact", batch_size=batch_size)
        if (index.ntotal, index.d) != (self.n_items, self.dim):
            raise DimensionMismatchError(
                f"The index at {path} holds {index.ntotal} x {index.d} vectors, but {self.n_items} x {self.dim} "
                "were given; rebuild it for this library."
            )
        self.backend, self.ann, self._index = "faiss", "ivf" if "IVF" in type(index).__name__ else "hnsw", index
        return self

    @classmethod
    def cached(cls, X: Any, path: str | Path, *, ids: Sequence[str], metric: str = "cosine", ann: str = "ivf",
               nprobe: int = 16, batch_size: int = 1024) -> "NeighbourIndex":
        """A Faiss index over `X`, reused from `path` when it was built from the same ids and vectors.

        Otherwise the index is built, written to `path` (through a temporary file and an atomic
        rename, so a killed run never leaves a half-written index) with a ``.json`` sidecar holding
        its fingerprint, and returned. ``index.reused`` tells which happened.
        """
        X = check_embeddings(X, name="index vectors")
        path = Path(path)
        meta = path.with_name(path.name + ".json")
        fp = vectors_fingerprint(ids, X, metric=metric, ann=ann, nprobe=nprobe)
        if path.is_file() and meta.is_file():
            try:
                saved = json.loads(meta.read_text()).get("fingerprint")
            except (OSError, ValueError):
                saved = None
            if saved == fp:
                index = cls.load(path, X, metric=metric, batch_size=batch_size)
                index.reused = True
                return index
        index = cls(X, metric=metric, backend="faiss", ann=ann, nprobe=nprobe, batch_size=batch_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        index.save(tmp)
        os.replace(tmp, path)
        meta_tmp = meta.with_name(meta.name + f".tmp{os.getpid()}")
        meta_tmp.write_text(json.dumps({"fingerprint": fp, "n_items": index.n_items, "dim": index.dim,
                                        "metric": metric, "ann": ann, "nprobe": nprobe}, indent=1))
        os.replace(meta_tmp, meta)
        index.reused = False
        return index

    def __len__(self) -> int:
        return self.n_items

    def search(self, Q: Any, k: int, *, exclude: Iterable[Iterable[int]] | np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best index items for every query, best first.

        Parameters
        ----------
        Q : np.ndarray [shape=(n_queries, d)]
        k : int > 0
        exclude : per query, index positions to leave out (e.g. the query itself, same
            artist); or a boolean mask [shape=(n_queries, n_items)]

        Returns
        -------
        scores : np.ndarray [shape=(n_queries, k), float32]   NaN where fewer than k remain
        indices : np.ndarray [shape=(n_queries, k), int64]    -1 where fewer than k remain
        """
        k = check_positive_int("k", k)
        Q = check_embeddings(Q, name="queries")
        if Q.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"queries have {Q.shape[1]} dims, but the index holds {self.dim}-dim vectors; "
                "query with vectors of the same backend and layer."
            )
        Q = self._prep(np.asarray(Q, dtype=np.float32))
        ex = self._exclusions(exclude, Q.shape[0])
        if self.backend == "faiss":
            return self._search_faiss(Q, k, ex)
        return self._search_exact(Q, k, ex)

    def _exclusions(self, exclude: Any, m: int) -> list[np.ndarray] | None:
        if exclude is None:
            return None
        if isinstance(exclude, np.ndarray) and exclude.dtype == bool:
            if exclude.shape != (m, self.n_items):
                raise ParameterError(f"exclude mask has shape {exclude.shape}; expected ({m}, {self.n_items}).")
            return [np.flatnonzero(row) for row in exclude]
        ex = [np.asarray(list(e), dtype=int).reshape(-1) for e in exclude]
        if len(ex) != m:
            raise ParameterError(f"exclude has {len(ex)} entries for {m} queries; give one list per query.")
        return ex

    def _scores(self, Qb: np.ndarray) -> np.ndarray:
        if self.metric == "l2":
            return -(np.sum(Qb**2, axis=1)[:, None] - 2.0 * Qb @ self._X.T + np.sum(self._X**2, axis=1)[None, :])
        return Qb @ self._X.T

    def _search_exact(self, Q: np.ndarray, k: int, ex: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        m, n = Q.shape[0], self.n_items
        kk = min(k, n)
        scores = np.full((m, k), np.nan, dtype=np.float32)
        idx = np.full((m, k), -1, dtype=np.int64)
        for s in range(0, m, self.batch_size):
            S = self._scores(Q[s:s + self.batch_size]).astype(np.float32)
            if ex is not None:
                for r in range(S.shape[0]):
                    e = ex[s + r]
                    if e.size:
                        S[r, e[(e >= 0) & (e < n)]] = -np.inf
            part = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (S.shape[0], 1))
            ps = np.take_along_axis(S, part, axis=1)
            order = np.lexsort((part, -ps), axis=1)  # best first; ties by index (deterministic)
            part = np.take_along_axis(part, order, axis=1)
            ps = np.take_along_axis(ps, order, axis=1)
            ok = np.isfinite(ps)
            scores[s:s + S.shape[0], :kk] = np.where(ok, ps, np.nan)
            idx[s:s + S.shape[0], :kk] = np.where(ok, part, -1)
        return scores, idx

    def _search_faiss(self, Q: np.ndarray, k: int, ex: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        m = Q.shape[0]
        extra = 0 if ex is None else max((e.size for e in ex), default=0)
        kk = min(k + extra, self.n_items)
        D, I = self._index.search(Q, kk)
        if self.metric == "l2":
            D = -D
        scores = np.full((m, k), np.nan, dtype=np.float32)
        idx = np.full((m, k), -1, dtype=np.int64)
        for r in range(m):
            keep = I[r] >= 0
            if ex is not None and ex[r].size:
                keep &= ~np.isin(I[r], ex[r])
            i_r, d_r = I[r][keep][:k], D[r][keep][:k]
            scores[r, :len(i_r)] = d_r
            idx[r, :len(i_r)] = i_r
        return scores, idx
