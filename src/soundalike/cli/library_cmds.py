"""Library commands: ingest, embed, status, run (the main job), report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..audio import WindowPolicy
from ..backends import load_backend
from ..analysis import (
    Folder, RunSummary, analyse, default_backend_names, embed as embed_library, executor_for, fill_taggrams,
    ingest as ingest_library, start_workers,
)
from ..reports import build_report, write_reports
from ..query import validation_summary
from ._early import default_jobs
from ._common import (ArtistFromOpt, apply_artist_rule, cli_command, err, open_db, out, print_json, progress_bar,
                      refresh_defaults, split_list)

DbOpt = Annotated[Optional[Path], typer.Option("--db", help="Library database (default: $SOUNDALIKE_DB or the user data dir).")]
WindowOpt = Annotated[str, typer.Option("--window", help="Analysis windows: middle[:S], spread:N[:S] or full.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes: whole tracks analysed on the CPU, or decoding ahead of an accelerator.")]
FailOpt = Annotated[bool, typer.Option("--fail-on-error", help="Exit with status 3 when any file failed.")]
DEFAULT_JOBS = default_jobs()


def print_summary(summary: RunSummary) -> None:
    """One line per failed file, then done / cached / failed by kind (on stderr)."""
    for f in summary.failures:
        err.print(f"[red]failed[/] {escape(f'[{f.kind}] {f.path}: {f.message}')}", highlight=False)
    for f in summary.reports:
        err.print(f"[yellow]{f.kind}[/] {escape(f'{f.path}: {f.message}')}", highlight=False)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.failed.items()))
    noted = ", ".join(f"{v} {k}" for k, v in sorted(summary.reported.items()))
    err.print(
        f"{summary.stage}: {summary.done} done" + (f" ({noted})" if noted else "")
        + f", {summary.cached} cached, {summary.n_failed} failed" + (f" ({kinds})" if kinds else ""),
        highlight=False,
    )


def _exit_for(summaries: list[RunSummary], fail_on_error: bool) -> None:
    if fail_on_error and any(s.n_failed for s in summaries):
        raise typer.Exit(3)


def _runtime_options(max_batch: str, compile_model: bool) -> dict:
    """Options that change how fast a torch backend runs, never what it outputs."""
    out: dict = {"compile": True} if compile_model else {}
    if max_batch != "auto":
        try:
            out["max_batch"] = int(max_batch)
        except ValueError:
            raise typer.BadParameter(f"--max-batch takes a positive integer or auto, got {max_batch!r}.") from None
        if out["max_batch"] <= 0:
            raise typer.BadParameter(f"--max-batch takes a positive integer or auto, got {max_batch!r}.")
    return out


def _default_backends() -> list[str]:
    return default_backend_names(note=lambda _name, why: err.print(f"[yellow]note:[/] {why}", highlight=False))


def _choice_json(d: dict) -> dict:
    return {k: d.get(k) for k in ("calibration", "method", "n_tracks", "n_artists", "cap", "results", "decided")}


def _choice_text(d: dict) -> str:
    res = d.get("results") or {}
    if not res:
        return f"{d['calibration']} ({d['method']})"
    figs = ", ".join(f"{c} {v['cv_map']:.3f}" for c, v in sorted(res.items(), key=lambda kv: -kv[1]["cv_map"])[:3])
    return f"{d['calibration']} (5-fold-by-artist mAP: {figs})"


def _fill_taggrams(store, names: list[str], **options) -> None:
    """musicnn-msd also stores its MSD taggram (the tags of musical reasons) where tracks lack it."""
    if "musicnn-msd" in names:
        fill_taggrams(store, **options)


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_command
    def ingest(
        path: Annotated[Path, typer.Argument(help="Music folder (scanned recursively) or one file.")],
        manifest: Annotated[Optional[Path], typer.Option("--manifest", "-m", help="CSV/YAML manifest (path, artist, ...).")] = None,
        db: DbOpt = None,
        window: WindowOpt = "middle",
        jobs: JobsOpt = DEFAULT_JOBS,
        fail_on_error: FailOpt = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        artist_from: ArtistFromOpt = None,
    ) -> None:
        """Scan a library into the database (tags, manifest, hashes) and validate every file."""
        with open_db(db) as store:
            apply_artist_rule(store, artist_from)
            run_id = store.start_run(sys.argv)
            with progress_bar(not json_out) as prog:
                s = ingest_library(store, path, manifest=manifest, policy=WindowPolicy.parse(window), run_id=run_id,
                                   jobs=jobs, progress=prog)
            store.finish_run(run_id)
            refresh_defaults(store, quiet=json_out)  # artists may have changed (rule, compilations, an upgrade)
        print_summary(s)
        if json_out:
            print_json(s.as_json())
        _exit_for([s], fail_on_error)

    app.command("embed")(make_embed_command(ray_default=False))

    @app.command()
    @cli_command
    def status(
        db: DbOpt = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """What the database holds: tracks, artists, models, failures of the last run."""
        with open_db(db, readonly=True) as store:
            counts = store.counts()
            models = store.models()
            per_model = {m.model_key: len(store.embedded_track_ids(m.model_key)) for m in models}
            failures = store.failures()
            artists = store.artists()
            choice = {d["model_key"]: d for d in validation_summary(store)}
            rule, sources = store.artist_rule(), store.artist_sources()
        if json_out:
            print_json({
                "database": str(db) if db else None, "counts": counts,
                "models": [{"backend": m.backend, "model_key": m.model_key, "weights_kind": m.weights_kind, "dim": m.dim,
                            "n_layers": m.n_layers, "tracks": per_model[m.model_key],
                            "calibration": _choice_json(choice[m.model_key])} for m in models],
                "artists": [{"artist": a.name, "artist_id": a.artist_id, "n_tracks": a.n_tracks} for a in artists],
                "artist_rule": rule, "artist_sources": sources,
                "last_run_failures": [{"path": p, "kind": k, "message": msg} for p, k, msg in failures],
            })
            return
        out.print(f"{counts['tracks']} tracks, {counts['artists']} artists, {counts['embeddings']} vectors, "
                  f"{counts['runs']} runs")
        if sources:
            out.print(f"Artists by rule {rule}: " + ", ".join(f"{n} {s}" for s, n in sources.items()), markup=False)
        t = Table("backend", "weights", "dim", "layers", "tracks embedded", "calibration", "model key")
        for m in models:
            t.add_row(m.backend, m.weights_kind, str(m.dim), str(m.n_layers), str(per_model[m.model_key]),
                      choice[m.model_key]["calibration"], m.model_key)
        out.print(t)
        for m in models:
            out.print(f"{m.backend}: default calibration {_choice_text(choice[m.model_key])}", markup=False)
        if failures:
            cut = sum(k == "truncated" for _, k, _ in failures)
            out.print(f"Last run: {len(failures) - cut} failed file(s)"
                      + (f", {cut} truncated file(s) embedded from what decodes" if cut else ""))
            for p, k, msg in failures:
                out.print(f"  [{k}] {p}: {msg}", markup=False)

    @app.command()
    @cli_command
    def report(
        db: DbOpt = None,
        out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.{json,md,html}.")] = Path("out/report"),
        backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b")] = None,
        calibration: Annotated[Optional[str], typer.Option("--calibration", help="Calibration (default: each backend's validated default).")] = None,
    ) -> None:
        """Write the similarity report of a database."""
        with open_db(db, readonly=True) as store:
            rep = build_report(store, backends=split_list(backend) or None, calibration=calibration)
        paths = write_reports(rep, out_dir)
        out.print("\n".join(str(p) for p in paths.values()))

    @app.command()
    @cli_command
    def run(
        path: Annotated[Path, typer.Argument(help="Music folder (or file) to analyse.")],
        manifest: Annotated[Optional[Path], typer.Option("--manifest", "-m")] = None,
        db: DbOpt = None,
        out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.{json,md,html}.")] = Path("out/report"),
        backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend(s); default musicnn-msd + descriptors.")] = None,
        window: WindowOpt = "middle",
        jobs: JobsOpt = DEFAULT_JOBS,
        calibration: Annotated[Optional[str], typer.Option("--calibration", help="Calibration (default: each backend's validated default).")] = None,
        fail_on_error: FailOpt = False,
        artist_from: ArtistFromOpt = None,
    ) -> None:
        """The main job: ingest → embed → similarity → report."""
        names = split_list(backend) or _default_backends()
        policy = WindowPolicy.parse(window)
        workers = start_workers(names, policy, jobs)  # their start-up overlaps the loading below
        models = [load_backend(n) for n in names]
        executor = executor_for(models, jobs, started=workers)
        with open_db(db) as store:
            apply_artist_rule(store, artist_from)
            run_id = store.start_run(sys.argv)
            try:
                with progress_bar() as prog:
                    done = analyse(store, Folder(path, manifest), models, policy=policy, executor=executor,
                                   run_id=run_id, progress=prog)
                    _fill_taggrams(store, names, policy=policy, executor=executor, progress=prog)
            finally:
                executor.close()
            s1, s2 = done.ingest, done.embed
            store.finish_run(run_id)
            refresh_defaults(store)
            print_summary(s1)
            print_summary(s2)
            rep = build_report(store, backends=[m.name for m in models], calibration=calibration, library=str(path),
                               summaries=[s1.as_json(), s2.as_json()])
        paths = write_reports(rep, out_dir)
        out.print("\n".join(str(p) for p in paths.values()))
        _exit_for([s1, s2], fail_on_error)


def make_embed_command(*, ray_default: bool) -> Callable[..., None]:
    """The ``embed`` command; ``embed-ray`` is the same command with ``--ray`` on by default."""

    @cli_command
    def embed(
        backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend(s); repeat or comma-separate (default: those of run).")] = None,
        db: DbOpt = None,
        window: WindowOpt = "middle",
        jobs: JobsOpt = DEFAULT_JOBS,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tracks per batch and transaction (and per Ray task).")] = 16,
        device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
        dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16 (bfloat16 on a GPU).")] = "float32",
        max_batch: Annotated[str, typer.Option("--max-batch", help="Windows per forward pass of torch backends: N or auto (from free GPU memory).")] = "auto",
        compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the network (torch backends).")] = False,
        weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights file/folder (one backend; same path on every Ray node).")] = None,
        ray: Annotated[bool, typer.Option("--ray/--no-ray", help="Decode and embed on a Ray cluster (extra [distributed]).")] = ray_default,
        ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="An existing Ray cluster (implies --ray); default: a local one.")] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Ray workers, each with every backend.")] = 2,
        cpus_per_worker: Annotated[float, typer.Option("--cpus-per-worker", min=0.01, help="Ray CPUs per worker.")] = 1.0,
        fail_on_error: FailOpt = False,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Compute embeddings of every stored track that lacks them (cached per track and model).

        With --ray, decoding and embedding are spread over Ray workers and this process is the only
        writer: each finished batch is committed at once, so a worker lost mid-run costs only its
        batch in flight (handed to another worker); a rerun computes only what is missing.
        """
        names = split_list(backend) or _default_backends()
        if weights is not None and len(names) != 1:
            raise typer.BadParameter("--weights needs exactly one --backend.")
        runtime = _runtime_options(max_batch, compile_model)
        policy = WindowPolicy.parse(window)
        if ray or ray_address:
            from ..analysis.ray import RayCluster

            executor = RayCluster(workers=workers, address=ray_address, batch_size=batch_size,
                                  cpus_per_worker=cpus_per_worker)
        models = [load_backend(n, weights=weights, device=device, dtype=dtype, **runtime) for n in names]
        if not (ray or ray_address):
            executor = executor_for(models, jobs, batch_size=batch_size)
        try:
            with open_db(db) as store:
                run_id = store.start_run(sys.argv)
                with progress_bar(not json_out) as prog:
                    s = embed_library(store, models, policy=policy, run_id=run_id, batch_size=batch_size,
                                      progress=prog, executor=executor)
                    _fill_taggrams(store, names, policy=policy, device=device, executor=executor, run_id=run_id,
                                   progress=prog)
                store.finish_run(run_id)
                refresh_defaults(store)
        finally:
            executor.close()
        print_summary(s)
        if json_out:
            print_json(s.as_json())
        _exit_for([s], fail_on_error)

    embed.__name__ = "embed_ray" if ray_default else "embed"
    return embed
