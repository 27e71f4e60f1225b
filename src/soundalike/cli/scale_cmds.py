"""Scale-out commands: ``soundalike embed-ray`` (decode + embed over a Ray cluster)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..audio import WindowPolicy
from ._common import cli_command, open_db, print_json, progress_bar, split_list
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
        device: Annotated[str, typer.Option("--device", help="cpu or cuda (on the workers).")] = "cpu",
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
        if json_out:
            print_json([s.as_json() for s in summaries] if len(summaries) > 1 else summaries[0].as_json())
        _exit_for(summaries, fail_on_error)
