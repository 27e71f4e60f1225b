"""Scale-out commands: ``soundalike embed-ray`` (decode + embed over a Ray cluster) and ``soundalike index`` (the saved Faiss track index)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..audio import WindowPolicy
from ..neighbours import FAISS_MIN_ITEMS
from ._common import cli_command, open_db, print_json, progress_bar, refresh_defaults, split_list
from .library_cmds import DbOpt, FailOpt, WindowOpt, _exit_for, print_summary

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("embed-ray")
    @cli_command
    def embed_ray_cmd(
        backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend(s); repeat or comma-separate.")] = None,
        db: DbOpt = None,
        ray_address: Annotated[Optional[str], typer.Option(
            "--ray-address", help="Ray cluster address (auto, ray://host:10001); default: a local cluster.")] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Ray workers (one model each).")] = 2,
        cpus_per_worker: Annotated[float, typer.Option("--cpus-per-worker", min=0.01, help="Ray CPUs per worker.")] = 1.0,
        window: WindowOpt = "middle",
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tracks per task and transaction.")] = 8,
        device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda (on the workers).")] = "auto",
        dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = "float32",
        weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights file/folder (one backend; same path on every node).")] = None,
        fail_on_error: FailOpt = False,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Like `embed`, with decoding and embedding spread over Ray workers; this process is the only writer.

        Each finished batch is committed at once, so a worker lost mid-run costs only its batch in
        flight (handed to another worker); a rerun computes only what is missing.
        """
        from ..distributed import RayEmbedder

        names = split_list(backend) or ["musicnn-msd"]
        if weights is not None and len(names) != 1:
            raise typer.BadParameter("--weights needs exactly one --backend.")
        options: dict = {"device": device, "dtype": dtype}
        if weights is not None:
            options["weights"] = str(weights)
        policy = WindowPolicy.parse(window)
        summaries = []
        with open_db(db) as store:
            run_id = store.start_run(sys.argv)
            for name in names:
                with RayEmbedder(name, workers=workers, address=ray_address, backend_options=options, policy=policy,
                                 batch_size=batch_size, cpus_per_worker=cpus_per_worker) as pool:
                    with progress_bar(not json_out) as prog:
                        s = pool.run(store, run_id=run_id, progress=prog)
                print_summary(s)
                summaries.append(s)
            store.finish_run(run_id)
            refresh_defaults(store)
        if json_out:
            print_json([s.as_json() for s in summaries] if len(summaries) > 1 else summaries[0].as_json())
        _exit_for(summaries, fail_on_error)

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
