"""Evaluation commands: ``evaluate EXPERIMENT.yaml`` and ``classify train|evaluate|predict``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ._common import cli_command, err, open_db, out, print_json, split_list
from .library_cmds import DbOpt

__all__ = ["register"]

BackendsOpt = Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend(s), repeatable or comma-separated.")]


def _features(store, backends: list[str], layer: int | None = None):
    """Track vectors of each backend on the tracks all of them share: (track_ids, {b: X}, artist ids, views)."""
    from ..query import load_vectors

    views = {b: load_vectors(store, backend=b, layer=layer) for b in backends}
    common = sorted(set.intersection(*[set(v.track_ids) for v in views.values()]))
    feats = {}
    for b, v in views.items():
        pos = {t: i for i, t in enumerate(v.track_ids)}
        feats[b] = v.X[[pos[t] for t in common]]
    tracks = {t.track_id: t for t in store.tracks()}
    artists = np.array([tracks[t].artist_id for t in common])
    return common, feats, artists, views, tracks


def _labels(tracks: dict, common: list[str], folders: Path | None) -> list[str | None]:
    if folders is None:
        return [(tracks[t].genres[0] if tracks[t].genres else None) for t in common]
    from ..classify import labels_from_folders

    by_path = labels_from_folders(folders)
    return [by_path.get(str(Path(tracks[t].path).resolve())) for t in common]


def evaluate(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML (see experiments/spike5.yaml).")],
    db: DbOpt = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for report.{json,md,html} (overrides 'output').")] = None,
    backend: BackendsOpt = None,
    calibration: Annotated[Optional[list[str]], typer.Option("--calibration", help="Calibration(s); override the YAML.")] = None,
    profile: Annotated[Optional[list[str]], typer.Option("--profile", help="centroid and/or set; override the YAML.")] = None,
    layer: Annotated[Optional[int], typer.Option("--layer", help="Layer of multi-layer backends (overrides the YAML).")] = None,
    no_classification: Annotated[bool, typer.Option("--no-classification", help="Skip the genre classifiers.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the winners and paths as JSON.")] = False,
) -> None:
    """Run an experiment file over a library database and write the reports."""
    from ..evaluate import BackendSpec, experiment_report, load_experiment, run_experiment
    from ..reports import write_reports
    from ..query import CALIBRATIONS, PROFILES
    from .._validation import check_option

    exp = load_experiment(experiment)
    if backend:
        exp.backends = [BackendSpec(b, layer) for b in split_list(backend)]
    elif layer is not None:
        for s in exp.backends:
            s.layer = layer
    if calibration:
        exp.calibrations = [check_option("calibration", c, CALIBRATIONS) for c in split_list(calibration)]
    if profile:
        exp.profiles = [check_option("profile", p, PROFILES) for p in split_list(profile)]
    if no_classification:
        exp.classification = None
    db_path = db or exp.db
    target = out_dir or exp.output
    with open_db(db_path, readonly=True) as store:
        results = run_experiment(exp, store, progress=lambda s: err.print(f"evaluated {s}", highlight=False))
        report = experiment_report(exp, store, results)
    paths = write_reports(report, target)
    if json_out:
        print_json({"reports": {k: str(v) for k, v in paths.items()}, "winners": report["metrics"]["winners"]})
        return
    for w in report["metrics"]["winners"]:
        d = w.get("difference")
        tail = (f"; vs {w['runner_up']}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "")
        out.print(f"{w['metric']}: {w['best']} = {w['value']:.3f}{tail}", markup=False)
    out.print("\n".join(str(p) for p in paths.values()), markup=False)


def classify_evaluate(
    db: DbOpt = None,
    backend: BackendsOpt = None,
    estimator: Annotated[Optional[list[str]], typer.Option("--estimator", "-e", help="logreg, svm, mlp.")] = None,
    labels_from_folders: Annotated[Optional[Path], typer.Option("--labels-from-folders", help="GTZAN-style root/<genre>/<file>.")] = None,
    layer: Annotated[Optional[int], typer.Option("--layer")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Artist-grouped 5-fold CV (and the leaky stratified split beside it) per backend and their ensemble."""
    from ..classify import ESTIMATORS, evaluate_genres
    from .._validation import check_option

    names = split_list(backend) or ["musicnn-msd"]
    ests = [check_option("estimator", e, ESTIMATORS) for e in split_list(estimator)] or ["logreg"]
    with open_db(db, readonly=True) as store:
        common, feats, artists, views, tracks = _features(store, names, layer)
        y = _labels(tracks, common, labels_from_folders)
    keep = np.array([g is not None for g in y])
    res = evaluate_genres({b: X[keep] for b, X in feats.items()}, [g for g in y if g is not None], artists[keep],
                          estimators=ests)
    res["weights_kind"] = {b: v.model.weights_kind for b, v in views.items()}
    if json_out:
        print_json(res)
        return
    out.print(f"{res['n_tracks']} tracks, {res['n_artists']} artists, genres: {', '.join(res['genres'])}", markup=False)
    for g, v in res["set_aside"].items():
        out.print(f"set apart (fewer than two artists): {g} ({v['support']} tracks)", markup=False)
    for run in res["runs"]:
        for name, sc in run["results"].items():
            out.print(f"{run['estimator']:6s} {run['scheme']:10s} {name}: accuracy {sc['accuracy']:.3f}, "
                      f"macro F1 {sc['macro_f1']:.3f} (chance {sc['chance']:.2f})", markup=False)


def classify_train(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.skops).")],
    db: DbOpt = None,
    backend: BackendsOpt = None,
    estimator: Annotated[str, typer.Option("--estimator", "-e", help="logreg, svm or mlp.")] = "logreg",
    labels_from_folders: Annotated[Optional[Path], typer.Option("--labels-from-folders", help="GTZAN-style root/<genre>/<file>.")] = None,
    layer: Annotated[Optional[int], typer.Option("--layer")] = None,
) -> None:
    """Train on every labelled track; several backends make an ensemble (probabilities averaged)."""
    from ..classify import GenreClassifier, GenreModel, save_model, split_eligible

    names = split_list(backend) or ["musicnn-msd"]
    with open_db(db, readonly=True) as store:
        common, feats, artists, views, tracks = _features(store, names, layer)
        y = _labels(tracks, common, labels_from_folders)
    keep = np.array([g is not None for g in y])
    yk = np.array([g for g in y if g is not None], dtype=object).astype(str)
    members = {b: GenreClassifier(estimator=estimator).fit(X[keep], yk) for b, X in feats.items()}
    _, aside = split_eligible(yk, artists[keep])
    meta = {"estimator": estimator, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "n_tracks": int(keep.sum()), "labels": str(labels_from_folders or "track genres in the database"),
            "weights_kind": {b: v.model.weights_kind for b, v in views.items()},
            "genres_with_one_artist": sorted(aside), "layer": layer}
    path = save_model(GenreModel(members, {b: v.model.model_key for b, v in views.items()}, meta), out_path)
    out.print(f"{path}: {'+'.join(names)} {estimator}, {int(keep.sum())} tracks, "
              f"genres {', '.join(members[names[0]].classes_)}", markup=False)


def classify_predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file written by `classify train`.")],
    db: DbOpt = None,
    artist: Annotated[Optional[str], typer.Option("--artist", help="Only this artist's tracks.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Predict the genre of stored tracks with a trained model."""
    from ..classify import load_model
    from ..errors import ParameterError

    gm = load_model(model)
    with open_db(db, readonly=True) as store:
        common, feats, artists, views, tracks = _features(store, list(gm.members), gm.meta.get("layer"))
        for b, v in views.items():
            if gm.model_keys.get(b) and gm.model_keys[b] != v.model.model_key:
                raise ParameterError(f"{model} was trained on {b} model {gm.model_keys[b]}, but {store.path} holds "
                                     f"{v.model.model_key}; embed with the same options or retrain.")
        if artist is not None:
            aid = store.find_artist(artist).artist_id
            sel = np.flatnonzero(artists == aid)
            common = [common[i] for i in sel]
            feats = {b: X[sel] for b, X in feats.items()}
    if not common:
        raise ParameterError("No stored tracks to predict; embed them first.")
    P = gm.predict_proba(feats)
    classes = gm.classes_
    rows = [{"track_id": t, "artist": tracks[t].artist, "title": tracks[t].title,
             "genre": str(classes[P[i].argmax()]), "probability": round(float(P[i].max()), 4)}
            for i, t in enumerate(common)]
    if json_out:
        print_json({"model": str(model), "features": gm.name, "estimator": gm.meta.get("estimator"), "predictions": rows})
        return
    for r in rows:
        out.print(f"{r['genre']:12s} {r['probability']:.2f}  {r['artist']} — {r['title'] or r['track_id'][:12]}", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(cli_command(evaluate))
    classify_app = typer.Typer(help="Genre classifiers on stored embeddings (train, evaluate, predict).", no_args_is_help=True)
    app.add_typer(classify_app, name="classify")
    classify_app.command("evaluate")(cli_command(classify_evaluate))
    classify_app.command("train")(cli_command(classify_train))
    classify_app.command("predict")(cli_command(classify_predict))
