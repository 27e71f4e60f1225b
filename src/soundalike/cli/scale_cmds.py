"""Scale-out commands: ``soundalike embed-ray`` (an alias of ``embed --ray``) and ``soundalike index`` (the saved Faiss track index)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..neighbours import FAISS_MIN_ITEMS
from ._common import cli_command, open_db, print_json
from .library_cmds import DbOpt, make_embed_command

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    # one command written once: `embed-ray` is `embed` with --ray on, the same options and defaults
    app.command("embed-ray", help="Alias of `soundalike embed --ray`: the same options and defaults.")(
        make_embed_command(ray_default=True))

    @app.command("index")
    @cli_command
    def index_cmd(
        db: DbOpt = None,
        backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="Backend (default: the best stored one).")] = None,
        layer: Annotated[Optional[int], typer.Option("--layer", help="Layer (default: the backend's default).")] = None,
        min_items: Annotated[int, typer.Option("--min-items", min=0, help="Build only for libraries at least this large.")] = FAISS_MIN_ITEMS,
        check: Annotated[int, typer.Option("--check", min=0, help="Queries used to measure recall@10 against exact search.")] = 200,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Build (or reuse) the Faiss track index saved beside the store, which `soundalike serve` loads.

        Below --min-items tracks exact search is as fast, so nothing is built. The index is reused
        while the stored vectors stay the same; recall@10 against exact search is measured on
        --check tracks taken as queries.
        """
        import time

        import numpy as np

        from ..errors import BackendUnavailable
        from ..neighbours import faiss_available
        from ..query import Engine

        if not faiss_available():
            raise BackendUnavailable("soundalike index needs Faiss: pip install 'soundalike[ann]' -c constraints.txt")
        with open_db(db, readonly=True) as store:
            engine = Engine(store, index="faiss")
            v = engine.vectors(backend, layer)
            cal = engine.default_calibration(v)[0]
            doc: dict = {"backend": v.model.backend, "model_key": v.model.model_key, "layer": v.layer, "calibration": cal,
                         "n_tracks": len(v.track_ids), "path": None, "built": False, "reused": False}
            if len(v.track_ids) < max(min_items, 1):
                doc["message"] = (f"{len(v.track_ids)} tracks: exact search is used below {min_items}; no index built "
                                  "(lower --min-items to build one anyway).")
            else:
                t0 = time.perf_counter()
                space = engine.space(v, "tracks", cal)
                engine.attach_index(v, space, "tracks", "faiss")
                idx = space.index
                doc.update(path=str(engine.index_path(v, "tracks", cal)), built=not idx.reused, reused=idx.reused,
                           seconds=round(time.perf_counter() - t0, 3))
                if check:
                    rng = np.random.default_rng(0)
                    q = space.V[rng.choice(len(space), size=min(check, len(space)), replace=False)].astype(np.float32)
                    kk = min(10, len(space))
                    exact = np.argsort(-(q @ space.V.T), axis=1, kind="stable")[:, :kk]
                    _, approx = idx.search(q, kk)
                    doc["recall_at_10"] = float(np.mean([len(set(a) & set(e)) / kk for a, e in zip(approx, exact)]))
                    doc["check_queries"] = int(q.shape[0])
        if json_out:
            print_json(doc)
        else:
            from rich.console import Console

            msg = doc.get("message") or (
                f"{'reused' if doc['reused'] else 'built'} {doc['path']} ({doc['n_tracks']} tracks, "
                f"{doc['seconds']} s" + (f", recall@10 {doc['recall_at_10']:.3f} vs exact)" if "recall_at_10" in doc else ")"))
            Console(stderr=True).print(msg)
