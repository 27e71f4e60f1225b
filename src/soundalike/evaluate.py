"""Experiment files (YAML) and their evaluation over a stored library.

An experiment names the database, the backends (with layer), calibrations and artist profiles
to compare, ensembles and hybrid blends, expected artist pairs, reference lists, the metrics'
k values and the output folder. :func:`run_experiment` scores every configuration with the
functions of :mod:`soundalike.metrics`; :func:`experiment_report` puts the results into the
report document that :func:`soundalike.reports.write_reports` renders.

Experiment file::

    name: spike5
    db: /tmp/soundalike/dev.db          # relative paths are relative to the YAML file
    library: ../shared/data/music       # shown in the reports (the data)
    output: out/spike5
    backends: [musicnn-msd, descriptors, {name: mert-v1-95m, layer: 6}]
    calibrations: [none, center, mp-empirical]
    profiles: [centroid, set]
    ensembles: [[musicnn-msd, descriptors]]
    hybrid:
      - {name: seeds, signals: [descriptors, refs, graph], weights: seeds}
    expected_pairs:
      - {a: Obsidian Shell, b: Johann Sebastian Bach, range: [0.0, 0.3], note: metal vs baroque}
    references: {Obsidian Shell: [Muldjord]}
    metrics: {genre_k: [1, 5], ndcg_k: 10, hubness_k: [5, 10], overlap_k: 5}
    bootstrap: {resamples: 1000, seed: 0}
    classification: {estimators: [logreg, svm, mlp], backends: [musicnn-msd, descriptors], ensemble: true}
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M
from .errors import ParameterError, SoundalikeError
from .query.vectors import CALIBRATIONS, PROFILES

__all__ = ["Experiment", "BackendSpec", "ExpectedPair", "load_experiment", "parse_experiment", "run_experiment",
           "experiment_report", "NOT_AVAILABLE"]

log = logging.getLogger(__name__)
NOT_AVAILABLE = "not available in this build"
_KEYS = {"name", "description", "db", "library", "manifest", "output", "backends", "calibrations", "profiles",
         "ensembles", "hybrid", "expected_pairs", "references", "metrics", "bootstrap", "classification", "k"}


@dataclass
class BackendSpec:
    name: str
    layer: int | None = None
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name if self.layer is None else f"{self.name}@{self.layer}"


@dataclass
class ExpectedPair:
    a: str
    b: str
    low: float
    high: float
    note: str = ""


@dataclass
class Experiment:
    """A validated experiment file (see the module docstring for the YAML shape)."""

    name: str
    db: Path | None
    output: Path
    backends: list[BackendSpec]
    calibrations: list[str] = field(default_factory=lambda: ["none", "center"])
    profiles: list[str] = field(default_factory=lambda: ["centroid"])
    ensembles: list[list[str]] = field(default_factory=list)
    hybrid: list[dict] = field(default_factory=list)
    expected_pairs: list[ExpectedPair] = field(default_factory=list)
    references: dict[str, list[str]] = field(default_factory=dict)
    genre_k: list[int] = field(default_factory=lambda: [1, 5])
    ndcg_k: int = 10
    hubness_k: list[int] = field(default_factory=lambda: [5, 10])
    overlap_k: int = 5
    neighbours_k: int = 5
    resamples: int = 1000
    seed: int = 0
    classification: dict | None = None
    description: str = ""
    library: str | None = None
    source: str = "<dict>"


def _err(source: str, key: str, msg: str) -> ParameterError:
    return ParameterError(f"{source}: key '{key}': {msg}")


def _list_of_str(v: Any, source: str, key: str) -> list[str]:
    if isinstance(v, str):
        v = [x.strip() for x in v.split(",") if x.strip()]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _err(source, key, f"expected a list of names, got {v!r}.")
    return v


def _pos_ints(v: Any, source: str, key: str) -> list[int]:
    v = v if isinstance(v, list) else [v]
    if not v or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
        raise _err(source, key, f"expected positive integer(s), got {v!r}.")
    return v


def _range(v: Any, source: str, key: str) -> tuple[float, float]:
    if isinstance(v, str):  # "0.1-0.3" or "0.1–0.3"
        parts = re.split(r"\s*[-–]\s*", v.strip())
        try:
            v = [float(p) for p in parts]
        except ValueError:
            v = None
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)) or v[0] > v[1]:
        raise _err(source, key, f"expected a range [low, high] with low <= high (or 'low–high'), got {v!r}.")
    return float(v[0]), float(v[1])


def parse_experiment(doc: Any, *, source: str = "<dict>", base: Path | None = None) -> Experiment:
    """Validate an experiment mapping; every error names the key and the fix."""
    if not isinstance(doc, dict):
        raise ParameterError(f"{source}: an experiment must be a YAML mapping (name:, db:, backends:, ...).")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise _err(source, unknown[0], f"unknown key; valid keys are {', '.join(sorted(_KEYS))}.")
    base = base or Path(".")

    def path(key: str) -> Path | None:
        v = doc.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise _err(source, key, f"expected a path, got {v!r}.")
        p = Path(os.path.expandvars(v)).expanduser()
        if "$" in str(p):  # an unset environment variable: treat as not given
            return None
        return p if p.is_absolute() else Path(os.path.normpath(base / p))

    raw_backends = doc.get("backends")
    if not raw_backends:
        raise _err(source, "backends", "missing or empty; list the backends to compare, e.g. [musicnn-msd, descriptors].")
    if isinstance(raw_backends, str):
        raw_backends = _list_of_str(raw_backends, source, "backends")
    if not isinstance(raw_backends, list):
        raise _err(source, "backends", f"expected a list, got {raw_backends!r}.")
    backends = []
    for i, b in enumerate(raw_backends):
        if isinstance(b, str):
            backends.append(BackendSpec(b))
        elif isinstance(b, dict) and isinstance(b.get("name"), str):
            layer = b.get("layer")
            if layer is not None and (not isinstance(layer, int) or isinstance(layer, bool) or layer < 0):
                raise _err(source, f"backends[{i}].layer", f"expected an integer >= 0, got {layer!r}.")
            backends.append(BackendSpec(b["name"], layer, {k: v for k, v in b.items() if k not in ("name", "layer")}))
        else:
            raise _err(source, f"backends[{i}]", f"expected a name or {{name:, layer:}}, got {b!r}.")
    cals = _list_of_str(doc.get("calibrations", ["none", "center"]), source, "calibrations")
    for c in cals:
        if c not in CALIBRATIONS:
            raise _err(source, "calibrations", f"{c!r} is not a calibration; choose from {', '.join(CALIBRATIONS)}.")
    profs = _list_of_str(doc.get("profiles", ["centroid"]), source, "profiles")
    for p in profs:
        if p not in PROFILES:
            raise _err(source, "profiles", f"{p!r} is not a profile; choose from {', '.join(PROFILES)}.")
    ensembles = []
    for i, e in enumerate(doc.get("ensembles") or []):
        members = e.split("+") if isinstance(e, str) else e
        members = _list_of_str(members, source, f"ensembles[{i}]")
        if len(members) < 2:
            raise _err(source, f"ensembles[{i}]", "an ensemble needs at least two backends.")
        ensembles.append(members)
    hybrid = []
    for i, h in enumerate(doc.get("hybrid") or []):
        if not isinstance(h, dict) or not h.get("signals"):
            raise _err(source, f"hybrid[{i}]", "expected {name:, signals: [...], weights: seeds | {signal: w}}.")
        hybrid.append({"name": str(h.get("name", f"hybrid{i}")),
                       "signals": _list_of_str(h["signals"], source, f"hybrid[{i}].signals"),
                       "config": {k: v for k, v in h.items() if k not in ("name", "signals", "backend", "calibration")},
                       "backend": h.get("backend"), "calibration": h.get("calibration", "center")})
    pairs = []
    for i, p in enumerate(doc.get("expected_pairs") or []):
        if not isinstance(p, dict) or not isinstance(p.get("a"), str) or not isinstance(p.get("b"), str):
            raise _err(source, f"expected_pairs[{i}]", "expected {a: artist, b: artist, range: [low, high]}.")
        lo, hi = _range(p.get("range"), source, f"expected_pairs[{i}].range")
        pairs.append(ExpectedPair(p["a"], p["b"], lo, hi, str(p.get("note", ""))))
    refs = doc.get("references") or {}
    if not isinstance(refs, dict):
        raise _err(source, "references", "expected a mapping artist -> [similar artists, best first].")
    refs = {str(k): _list_of_str(v, source, f"references.{k}") for k, v in refs.items()}
    met = doc.get("metrics") or {}
    if not isinstance(met, dict):
        raise _err(source, "metrics", "expected a mapping (genre_k, ndcg_k, hubness_k, overlap_k, neighbours_k).")
    bad = sorted(set(met) - {"genre_k", "ndcg_k", "hubness_k", "overlap_k", "neighbours_k"})
    if bad:
        raise _err(source, f"metrics.{bad[0]}", "unknown; valid: genre_k, ndcg_k, hubness_k, overlap_k, neighbours_k.")
    boot = doc.get("bootstrap") or {}
    if not isinstance(boot, dict):
        raise _err(source, "bootstrap", "expected {resamples: 1000, seed: 0}.")
    cls = doc.get("classification")
    if cls is not None:
        if cls is True:
            cls = {}
        if not isinstance(cls, dict):
            raise _err(source, "classification", "expected {estimators: [...], backends: [...], ensemble: true}.")
        from .classify import ESTIMATORS

        ests = _list_of_str(cls.get("estimators", ["logreg"]), source, "classification.estimators")
        for e in ests:
            if e not in ESTIMATORS:
                raise _err(source, "classification.estimators", f"{e!r} is not valid; choose from {', '.join(ESTIMATORS)}.")
        cls = {"estimators": ests, "backends": _list_of_str(cls.get("backends", [b.name for b in backends]), source,
                                                           "classification.backends"),
               "ensemble": bool(cls.get("ensemble", True))}
    name = doc.get("name", "experiment")
    return Experiment(
        name=str(name), db=path("db"), output=path("output") or Path("out") / str(name), backends=backends,
        calibrations=cals, profiles=profs, ensembles=ensembles, hybrid=hybrid, expected_pairs=pairs, references=refs,
        genre_k=_pos_ints(met.get("genre_k", [1, 5]), source, "metrics.genre_k"),
        ndcg_k=_pos_ints(met.get("ndcg_k", 10), source, "metrics.ndcg_k")[0],
        hubness_k=_pos_ints(met.get("hubness_k", [5, 10]), source, "metrics.hubness_k"),
        overlap_k=_pos_ints(met.get("overlap_k", 5), source, "metrics.overlap_k")[0],
        neighbours_k=_pos_ints(met.get("neighbours_k", doc.get("k", 5)), source, "metrics.neighbours_k")[0],
        resamples=_pos_ints(boot.get("resamples", 1000), source, "bootstrap.resamples")[0],
        seed=int(boot.get("seed", 0)), classification=cls, description=str(doc.get("description", "")),
        library=str(path("library")) if doc.get("library") else None, source=source,
    )


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Read and validate an experiment YAML file (relative paths are relative to the file)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"Experiment file {p} does not exist; see experiments/spike5.yaml for an example.")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"{p} is not valid YAML: {exc}") from None
    return parse_experiment(doc, source=str(p), base=p.parent.resolve())


# --------------------------------------------------------------------------- running


def _labels(store) -> tuple[dict[int, str | None], dict[str, str | None], dict[int, str]]:
    from .classify import artist_genres

    tracks = store.tracks()
    track_genre = {t.track_id: (t.genres[0] if t.genres else None) for t in tracks}
    names = {a.artist_id: a.name for a in store.artists()}
    return artist_genres(tracks), track_genre, names


def _artist_block(S: np.ndarray, raw: np.ndarray | None, ids: np.ndarray, exp: Experiment, ctx: dict) -> dict:
    """Artist-level figures of one artist × artist score matrix."""
    genres = [ctx["artist_genre"].get(int(a)) for a in ids]
    names = [ctx["names"][int(a)] for a in ids]
    S = np.where(np.isfinite(S), S, -1.0)  # unscored pairs (hybrid) rank last
    out: dict[str, Any] = {"pairs": M.pairwise_stats(S), "genre_separation": M.group_separation(S, genres)}
    if raw is not None:
        out["raw_cosine_pairs"] = M.pairwise_stats(raw)
        out["raw_genre_separation"] = M.group_separation(raw, genres)
    for k in exp.genre_k:
        r = M.genre_precision_at_k(S, genres, k=k)
        out[f"genre_p_at_{k}"] = {"value": r[f"P@{k}"], "ceiling": r["ceiling"], "chance": r["chance"],
                               "n_queries": r["n_queries"], "n_skipped": r["n_skipped"]}
        out.setdefault("_per_query", {})[f"genre_p_at_{k}"] = (r["query"], r["p_at_k"])
        if k == exp.genre_k[0]:
            out["genre_map"] = {"value": r["MAP"], "ceiling": 1.0, "chance": r["MAP_chance"]}
            out["_per_query"]["genre_map"] = (r["query"], r["ap"])
    r = M.genre_precision_at_k(S, genres, k=exp.ndcg_k)
    out[f"ndcg_at_{exp.ndcg_k}"] = {"value": r[f"nDCG@{exp.ndcg_k}"], "ceiling": 1.0, "chance": r["nDCG_chance"]}
    out["_per_query"][f"ndcg_at_{exp.ndcg_k}"] = (r["query"], r["ndcg"])
    if len(ids) > 2:
        out.update({f"hubness_k{k}": M.hubness(S, k=min(k, len(ids) - 1)) for k in exp.hubness_k})
    pairs = []
    index = {n.casefold(): i for i, n in enumerate(names)}
    for p in exp.expected_pairs:
        ia, ib = index.get(p.a.casefold()), index.get(p.b.casefold())
        if ia is None or ib is None:
            pairs.append({"a": p.a, "b": p.b, "low": p.low, "high": p.high, "note": p.note,
                          "error": f"artist {p.a if ia is None else p.b!r} not in this library"})
            continue
        row = M.expected_pair(float(S[ia, ib]), p.low, p.high)
        row.update({"a": p.a, "b": p.b, "note": p.note})
        if raw is not None:
            row["raw_cosine"] = float(raw[ia, ib])
            row["raw_pass"] = bool(p.low <= raw[ia, ib] <= p.high)
        pairs.append(row)
    out["expected_pairs"] = pairs
    overlaps = {}
    for a, ref in exp.references.items():
        if a.casefold() in index:
            i = index[a.casefold()]
            order = M.rank_candidates(S, i)
            overlaps[a] = M.overlap_at_k([names[j].casefold() for j in order], [x.casefold() for x in ref],
                                         k=exp.overlap_k)
    if overlaps:
        out[f"overlap@{exp.overlap_k}"] = {"per_artist": overlaps, "mean": float(np.mean(list(overlaps.values())))}
    nk = min(exp.neighbours_k, len(ids) - 1)
    out["neighbours"] = {names[i]: [{"artist": names[j], "score": round(float(S[i, j]), 4),
                                     **({"raw_cosine": round(float(raw[i, j]), 4)} if raw is not None else {})}
                                    for j in M.rank_candidates(S, i)[:nk]] for i in range(len(ids))}
    out["_ids"] = ids
    return out


def _track_block(S: np.ndarray, track_ids: list[str], track_artist: np.ndarray, exp: Experiment, ctx: dict) -> dict:
    genres = [ctx["track_genre"].get(t) for t in track_ids]
    sam = M.same_artist_map(S, track_artist)
    k = max(exp.genre_k)
    tg = M.track_genre_precision_at_k(S, genres, track_artist, k=k)
    return {
        "same_artist_map": {"value": sam["MAP"], "ceiling": sam["ceiling"], "chance": sam["chance"],
                            "n_queries": sam["n_queries"]},
        f"track_genre_p_at_{k}": {"value": tg[f"P@{k}"], "ceiling": tg["ceiling"], "chance": tg["chance"],
                               "n_queries": tg["n_queries"]},
        **{f"track_hubness_k{kk}": M.hubness(S, k=kk) for kk in exp.hubness_k},
        "_per_query": {"same_artist_map": (sam["query"], sam["ap"], track_artist[sam["query"]])},
    }


def _view_rows(store, spec: BackendSpec, exp: Experiment, ctx: dict, progress: Callable | None) -> list[dict]:
    from .query import Engine

    engine = ctx.setdefault("engine", Engine(store))
    try:
        vec = engine.vectors(spec.name, spec.layer)
    except SoundalikeError as exc:
        return [{"backend": spec.label, "status": f"skipped: {exc}"}]
    ctx["views"][spec.label] = vec
    info = {"backend": spec.label, "kind": "backend", "weights_kind": vec.model.weights_kind, "dim": vec.model.dim, "layer": vec.layer,
            "model_key": vec.model.model_key, "n_tracks": len(vec.track_ids),
            "cost": store.timing(vec.model.model_key)}
    return _calibration_rows(vec, info, exp, ctx, progress, space=lambda level, cal, prof: engine.space(vec, level, cal, prof))


def _calibration_rows(vec, info: dict, exp: Experiment, ctx: dict, progress: Callable | None, *, space) -> list[dict]:
    """One row per (calibration, profile): artist and track blocks from the query engine's spaces."""
    rows = []
    for cal in exp.calibrations:
        try:
            tscore, _ = space("tracks", cal, "centroid").score_matrix()
            tblock = _track_block(tscore, vec.track_ids, vec.track_artist, exp, ctx)
        except ParameterError as exc:
            tblock = {"status": f"{NOT_AVAILABLE}: {exc}"}
        for prof in exp.profiles:
            row = dict(info, calibration=cal, profile=prof)
            try:
                sp = space("artists", cal, prof)
                score, raw = sp.score_matrix()
            except ParameterError as exc:
                rows.append(dict(row, status=f"{NOT_AVAILABLE}: {exc}"))
                continue
            _merge(row, _artist_block(score, raw, np.asarray(sp.ids), exp, ctx), tblock)
            rows.append(row)
            if progress:
                progress(f"{info['backend']} {cal} {prof}")
    return rows


def _ensemble_rows(members: list[str], exp: Experiment, ctx: dict) -> list[dict]:
    from .backends.ensemble import combine_blocks
    from .query.vectors import ModelVectors, fit_space
    from .store import ModelInfo

    views = [ctx["views"].get(m) for m in members]
    name = "+".join(members)
    if any(v is None for v in views):
        return [{"backend": name, "kind": "ensemble", "status": "skipped: a member backend has no stored vectors"}]
    common = sorted(set.intersection(*[set(v.track_ids) for v in views]))
    pos = [{t: i for i, t in enumerate(v.track_ids)} for v in views]
    X = combine_blocks([v.X[[p[t] for t in common]] for v, p in zip(views, pos)])
    artist = np.array([views[0].track_artist[pos[0][t]] for t in common])
    kinds = sorted({v.model.weights_kind for v in views})
    key = "+".join(v.model.model_key for v in views)
    model = ModelInfo(key, name, {}, None, "+".join(kinds), int(X.shape[1]), 1)
    vec = ModelVectors(model, 0, common, X, artist, views[0].artist_names)
    info = {"backend": name, "kind": "ensemble", "weights_kind": "+".join(kinds), "dim": int(X.shape[1]),
            "layer": None, "n_tracks": len(common), "model_key": key}
    return _calibration_rows(vec, info, exp, ctx, None,
                             space=lambda level, cal, prof: fit_space(vec, level=level, calibration=cal, profile=prof))


def _merge(row: dict, artist: dict, track: dict) -> None:
    per = {**artist.get("_per_query", {}), **track.get("_per_query", {})}
    row.update(artist)
    row.update({k: v for k, v in track.items() if k != "status"})
    if "status" in track:
        row["track_status"] = track["status"]
    row["_per_query"] = per
    row["status"] = "ok"


def _hybrid_rows(store, exp: Experiment, ctx: dict) -> list[dict]:
    rows = []
    for h in exp.hybrid:
        row = {"backend": f"hybrid:{h['name']}", "kind": "hybrid", "calibration": h["calibration"], "profile": "centroid",
               "weights_kind": "hand", "signals": h["signals"]}
        from .hybrid import HybridConfig, hybrid_scores

        try:
            cfg = HybridConfig.from_dict(h["config"])
            res = hybrid_scores(store, signals=h["signals"], config=cfg, backend=h["backend"], calibration=h["calibration"])
        except SoundalikeError as exc:
            rows.append(dict(row, status=f"skipped: {exc}"))
            continue
        labelled = [s for s, v in res.signals.items() if getattr(v, "is_label", False)]
        row.update({"signals_used": res.signals_used, "coverage": res.coverage(), "weights": res.weights,
                    "weights_kind": res.weights_kind,
                    "notes": {s: v.note for s, v in res.signals.items() if getattr(v, "note", "")}})
        if labelled:  # no label leaks (CONTRACTS.md): a signal built from the labels is not evaluated
            rows.append(dict(row, status=f"skipped: signal(s) {', '.join(labelled)} are built from the genre labels"))
            continue
        keep = np.array([int(a) in ctx["names"] for a in res.artist_ids])
        row.update(_artist_block(res.score[np.ix_(keep, keep)], None, res.artist_ids[keep], exp, ctx))
        row["status"] = "ok"
        rows.append(row)
    return rows


def _winners(rows: list[dict], exp: Experiment) -> list[dict]:
    """Best configuration per headline metric, with a paired bootstrap against the runner-up."""
    out = []
    ok = [r for r in rows if r.get("status") == "ok" and "random" not in str(r.get("weights_kind"))]
    metrics = [f"ndcg_at_{exp.ndcg_k}", f"genre_P@{max(exp.genre_k)}", "genre_map", "same_artist_map"]
    for m in metrics:
        cands = [r for r in ok if m in r and np.isfinite(r[m]["value"])]
        if m == "same_artist_map":  # track-level: the artist profile plays no part, keep one row each
            cands = [r for r in cands if r.get("profile") == exp.profiles[0]]
        if len(cands) < 2:
            continue
        cands.sort(key=lambda r: -r[m]["value"])
        best, second = cands[0], cands[1]
        entry = {"metric": m, "best": _cfg_name(best), "value": best[m]["value"], "runner_up": _cfg_name(second),
                 "runner_up_value": second[m]["value"], "ceiling": best[m].get("ceiling"), "chance": best[m].get("chance")}
        qa, qb = best["_per_query"].get(m), second["_per_query"].get(m)
        if qa is not None and qb is not None and len(qa[0]) == len(qb[0]) and np.array_equal(qa[0], qb[0]):
            groups = qa[2] if len(qa) > 2 else None
            diff = M.paired_bootstrap(qa[1], qb[1], groups=groups, n_resamples=exp.resamples, seed=exp.seed)
            entry["difference"] = {k: diff[k] for k in ("mean", "low", "high", "excludes_zero")}
            ci = M.bootstrap_ci(qa[1], groups=groups, n_resamples=exp.resamples, seed=exp.seed)
            entry["interval"] = {"low": ci["low"], "high": ci["high"]}
        raw = next((r for r in ok if r["backend"] == best["backend"] and r.get("profile") == best.get("profile")
                    and r.get("calibration") == "none" and m in r), None)
        if raw is not None and raw is not best:
            entry["vs_raw"] = _paired(best, raw, m, exp)
        out.append(entry)
    return out


def _paired(a: dict, b: dict, m: str, exp: Experiment) -> dict | None:
    qa, qb = a["_per_query"].get(m), b["_per_query"].get(m)
    if qa is None or qb is None or len(qa[0]) != len(qb[0]) or not np.array_equal(qa[0], qb[0]):
        return None
    d = M.paired_bootstrap(qa[1], qb[1], groups=qa[2] if len(qa) > 2 else None, n_resamples=exp.resamples, seed=exp.seed)
    return {"other": _cfg_name(b), "other_value": b[m]["value"], **{k: d[k] for k in ("mean", "low", "high", "excludes_zero")}}


def _cfg_name(r: dict) -> str:
    return f"{r['backend']} / {r.get('calibration')} / {r.get('profile')}"


def _classification(exp: Experiment, ctx: dict) -> dict | None:
    if not exp.classification:
        return None
    from .classify import evaluate_genres

    views = {b: ctx["views"][b] for b in exp.classification["backends"] if b in ctx["views"]}
    missing = [b for b in exp.classification["backends"] if b not in ctx["views"]]
    if not views:
        return {"status": "skipped: none of the classification backends has stored vectors"}
    common = sorted(set.intersection(*[set(v.track_ids) for v in views.values()]))
    common = [t for t in common if ctx["track_genre"].get(t)]
    feats = {}
    for b, v in views.items():
        pos = {t: i for i, t in enumerate(v.track_ids)}
        feats[b] = v.X[[pos[t] for t in common]]
    v0 = next(iter(views.values()))
    pos0 = {t: i for i, t in enumerate(v0.track_ids)}
    groups = np.array([v0.track_artist[pos0[t]] for t in common])
    y = [ctx["track_genre"][t] for t in common]
    try:
        res = evaluate_genres(feats, y, groups, estimators=exp.classification["estimators"], seed=exp.seed,
                              ensemble=exp.classification["ensemble"])
    except ParameterError as exc:
        return {"status": f"skipped: {exc}"}
    for aside in res["set_aside"].values():
        aside["artists"] = [ctx["names"].get(int(a), a) for a in aside["artists"]]
    res["weights_kind"] = {b: v.model.weights_kind for b, v in views.items()}
    res["missing_backends"] = missing
    res["status"] = "ok"
    return res


def run_experiment(exp: Experiment, store, *, progress: Callable[[str], None] | None = None) -> dict:
    """Score every configuration of `exp` over `store`.

    Returns
    -------
    dict: ``configurations`` (one row per backend/ensemble/hybrid × calibration × profile,
    each with pair statistics, genre P@k / MAP / nDCG with ceiling and chance, same-artist mAP,
    hubness, expected pairs, neighbours), ``winners``, ``classification``. Rows whose
    calibration is missing from this build say so in ``status``.
    """
    artist_genre, track_genre, names = _labels(store)
    ctx = {"artist_genre": artist_genre, "track_genre": track_genre, "names": names, "views": {}}
    rows: list[dict] = []
    for spec in exp.backends:
        rows += _view_rows(store, spec, exp, ctx, progress)
    for members in exp.ensembles:
        rows += _ensemble_rows(members, exp, ctx)
    rows += _hybrid_rows(store, exp, ctx)
    rows = [M.with_aliases(r) for r in rows]
    winners = _winners(rows, exp)
    cls = _classification(exp, ctx)
    return {"configurations": rows, "winners": winners, "classification": cls,
            "labels": {"artist_genre": {names[a]: g for a, g in artist_genre.items() if a in names},
                       "source": "manifest/file genre column (artist genre = most frequent track genre)"}}


def _public(obj):
    """Drop private keys (``_matrix`` ...) and make NumPy values JSON-friendly."""
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_public(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, np.ndarray):
        return _public(obj.tolist())
    return obj


def experiment_report(exp: Experiment, store, results: dict) -> dict:
    """The report document: :func:`build_report`'s shape with the experiment's metrics filled in."""
    from .reports import build_report

    backends = [s.name for s in exp.backends if s.label in {r["backend"] for r in results["configurations"]
                                                            if r.get("status") == "ok"}]
    cal = next((c for c in exp.calibrations if c != "none"), exp.calibrations[0])
    report = build_report(store, backends=backends or None, calibration=cal, k=exp.neighbours_k,
                          library=exp.library or str(store.path))
    from .query import Engine, layout_method

    engine, maps = Engine(store), {}
    for spec in exp.backends:
        if spec.name in backends:
            ids, xy, c = engine.layout(backend=spec.name, layer=spec.layer, calibration=cal)
            maps[spec.label] = {"method": layout_method(len(ids)), "calibration": c,
                                "artists": [engine.artist_by_id[int(a)].name for a in ids], "xy": np.round(xy, 5).tolist()}
    report["artist_maps"] = maps
    report["experiment"] = {"name": exp.name, "source": exp.source, "description": exp.description,
                            "calibrations": exp.calibrations, "profiles": exp.profiles,
                            "ensembles": ["+".join(e) for e in exp.ensembles], "hybrid": [h["name"] for h in exp.hybrid],
                            "genre_k": exp.genre_k, "ndcg_k": exp.ndcg_k, "hubness_k": exp.hubness_k,
                            "bootstrap": {"resamples": exp.resamples, "seed": exp.seed,
                                          "unit": "query artists"},
                            "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    report["metrics"] = _public(results)
    return report
