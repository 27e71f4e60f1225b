"""Hybrid blend: renormalisation over present signals, contributions add up, learned weights, config."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import NotFittedError, ParameterError
from soundalike.hybrid import SEED_WEIGHTS, HybridConfig, HybridScorer, blend
from soundalike.signals import SignalScores

IDS = np.array([1, 2, 3])


def sig(name, M):
    M = np.asarray(M, dtype=float)
    has = np.isfinite(np.where(np.eye(len(M), dtype=bool), np.nan, M)).any(axis=1)
    return SignalScores(name, IDS, M, float(has.mean()))


def test_renormalises_over_present_signals():
    desc = sig("descriptors", [[1, 0.8, 0.2], [0.8, 1, 0.4], [0.2, 0.4, 1]])
    nan = np.nan
    refs = sig("refs", [[1, 1.0, nan], [1.0, 1, nan], [nan, nan, nan]])  # artist 3 has no refs
    res = blend([desc, refs], SEED_WEIGHTS, weights_kind="seeds")
    # pair (1, 2): both present -> (0.4*0.8 + 0.2*1.0) / 0.6
    assert res.score[0, 1] == pytest.approx((0.4 * 0.8 + 0.2 * 1.0) / 0.6)
    # pair (1, 3): only descriptors -> its own score
    assert res.score[0, 2] == pytest.approx(0.2)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        total = sum(c[i, j] for c in res.contributions.values() if np.isfinite(c[i, j]))
        assert total == pytest.approx(res.score[i, j])
    assert res.coverage() == {"descriptors": 1.0, "refs": pytest.approx(2 / 3, abs=1e-4)}
    assert res.signals_used == ["descriptors", "refs"]


def test_pairs_without_any_signal_are_not_ranked():
    nan = np.nan
    s = sig("refs", [[1, 0.5, nan], [0.5, 1, nan], [nan, nan, nan]])
    res = blend([s], {"refs": 1.0})
    assert np.isnan(res.score[0, 2])
    assert res.neighbours(0, k=5) == [1]


def test_blend_rejects_misaligned_signals():
    a = sig("audio", np.eye(3))
    b = SignalScores("tags", np.array([1, 2, 4]), np.eye(3), 1.0)
    with pytest.raises(ParameterError, match="different artists"):
        blend([a, b], {"audio": 1, "tags": 1})


def test_hybrid_scorer_learns_the_informative_signal(rng, tmp_path):
    n = 400
    y = rng.integers(0, 2, n)
    good = np.clip(0.5 * y + 0.25 + 0.1 * rng.normal(size=n), 0, 1)
    noise = rng.uniform(size=n)
    F = np.c_[good, noise]
    F[::7, 0] = np.nan  # missing values are imputed, not fatal
    est = HybridScorer(signals=("audio", "descriptors"))
    with pytest.raises(NotFittedError):
        est.weights()
    w = est.fit(F, y).weights()
    assert w["audio"] > 0.8 and sum(w.values()) == pytest.approx(1.0)
    back = HybridScorer.load(est.save(tmp_path / "w.json"))
    assert back.weights() == pytest.approx(w)
    with pytest.raises(ParameterError, match="both classes"):
        HybridScorer(signals=("audio",)).fit(np.ones((3, 1)), [1, 1, 1])


def _sym(A):
    A = 0.5 * (A + A.T)
    np.fill_diagonal(A, 1.0)
    return A


def _ranking_data(rng, n_groups=8, per_group=5):
    labels = np.repeat(np.arange(n_groups), per_group)
    same = (labels[:, None] == labels[None, :]).astype(float)
    n = labels.size
    good = _sym(0.5 * same + 0.7 * rng.uniform(size=(n, n)))
    weak = _sym(0.2 * same + rng.uniform(size=(n, n)))
    noise = _sym(rng.uniform(size=(n, n)))
    return labels, good, weak, noise


def test_listwise_drops_a_pure_noise_signal_and_shrinks_toward_equal(rng):
    labels, good, weak, noise = _ranking_data(rng)
    names = ("audio", "descriptors", "tags")
    dist = []
    for lam in (0.0, 0.1, 1.0, 10.0):
        w = HybridScorer(signals=names, shrinkage=lam).fit_listwise([good, noise, weak], labels).weights()
        assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) > 0
        assert w["audio"] > w["tags"] > w["descriptors"]  # informative > weak > noise at every strength
        dist.append(np.abs(np.array(list(w.values())) - 1 / 3).sum())
    assert dist[0] > 0.8 and w["audio"] < 0.4  # little shrinkage: noise nearly dropped; strong: near equal
    assert all(a > b for a, b in zip(dist, dist[1:]))  # monotone toward equal weights
    w = HybridScorer(signals=names, shrinkage=float("inf")).fit_listwise([good, noise, weak], labels).weights()
    assert list(w.values()) == pytest.approx([1 / 3] * 3)
    # the inner artist-disjoint CV sees that the data support weak shrinkage
    est = HybridScorer(signals=names).fit_listwise_cv([good, noise, weak], labels)
    assert est.shrinkage <= 0.1 and est.weights()["descriptors"] < 0.1
    assert set(est.cv_scores_) >= {0.0, float("inf")}
    assert est.cv_scores_[est.shrinkage] > est.cv_scores_[float("inf")]


def test_listwise_keeps_equal_weights_for_equal_signals(rng, tmp_path):
    labels, good, _, _ = _ranking_data(rng)
    est = HybridScorer(signals=("audio", "descriptors")).fit_listwise_cv([good, good.copy()], labels)
    assert list(est.weights().values()) == pytest.approx([0.5, 0.5], abs=1e-6)
    for lam in (0.0, 1.0):  # any shrinkage: identical signals get identical weights
        w = HybridScorer(signals=("audio", "descriptors"), shrinkage=lam).fit_listwise([good, good.copy()], labels)
        assert w.weights()["audio"] == pytest.approx(0.5, abs=1e-6)
    est.shrinkage = float("inf")  # JSON has no infinity: saved as a string, loaded back as a float
    back = HybridScorer.load(est.save(tmp_path / "w.json"))
    assert back.shrinkage == float("inf") and back.weights() == pytest.approx(est.weights())
    assert "Infinity" not in (tmp_path / "w.json").read_text()


def test_listwise_rejects_bad_input(rng):
    labels, good, _, _ = _ranking_data(rng)
    with pytest.raises(ParameterError, match="need 2 matrices"):
        HybridScorer(signals=("audio", "tags")).fit_listwise([good], labels)
    with pytest.raises(ParameterError, match="share a label"):
        HybridScorer(signals=("audio",)).fit_listwise([good], np.arange(len(labels)))
    with pytest.raises(ParameterError, match="shrinkage"):
        HybridScorer(signals=("audio", "tags"), shrinkage=-1).fit_listwise([good, good], labels)
    bad = good.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ParameterError, match="finite"):
        HybridScorer(signals=("audio",)).fit_listwise([bad], labels)


def test_config_from_yaml(tmp_path):
    (tmp_path / "refs.csv").write_text("artist,similar_artist,rank_or_score\n")
    p = tmp_path / "h.yaml"
    p.write_text("weights: seeds\ncsv: {refs: refs.csv}\nsignals: {graph: {alpha: 0.3}}\n")
    cfg = HybridConfig.from_yaml(p)
    assert cfg.weights == SEED_WEIGHTS and cfg.weights_kind == "seeds"
    assert cfg.csv["refs"] == tmp_path / "refs.csv"
    assert cfg.signals["graph"]["alpha"] == 0.3
    p.write_text("weights: {audio: -1}\n")
    with pytest.raises(ParameterError, match="weight of audio"):
        HybridConfig.from_yaml(p)
    p.write_text("weights: {genre: 1}\n")
    with pytest.raises(ParameterError, match="signal='genre'"):
        HybridConfig.from_yaml(p)


def test_enrichment_inputs_feed_tags_refs_graph(store, monkeypatch):
    """When soundalike.enrich is installed, its signal_inputs(store) feed the hybrid."""
    import soundalike.enrich as enrich
    from soundalike.hybrid import hybrid_scores

    import hashlib

    with store.transaction() as db:
        for n in ("Alpha", "Beta", "Gamma", "Delta"):
            store.add_track(track_id=hashlib.sha256(n.encode()).hexdigest(), path=f"/x/{n}.ogg", artist=n, db=db)
    ids = [store.find_artist(n).artist_id for n in ("Alpha", "Beta", "Gamma", "Delta")]
    a, b, c, d = ids
    monkeypatch.setattr(enrich, "signal_inputs", lambda s: {
        "tags": {a: {"shoegaze": 1.0}, b: {"shoegaze": 0.5, "dream pop": 1.0}},
        "refs": [(a, b, 1.0)],
        "graph": [(b, c, "member of band", 1.0)],
    }, raising=False)
    res = hybrid_scores(store, signals=["tags", "refs", "graph"],
                        config=HybridConfig(weights={"tags": 0.3, "refs": 0.2, "graph": 0.1}))
    pos = {int(x): i for i, x in enumerate(res.artist_ids)}
    assert res.signals["tags"].score[pos[a], pos[b]] > 0
    assert res.signals["refs"].score[pos[a], pos[b]] == 1.0
    assert res.signals["graph"].score[pos[a], pos[c]] > 0  # reached through Beta
    assert res.coverage()["graph"] == pytest.approx(0.75)
    assert np.isnan(res.score[pos[d], pos[a]])  # Delta has nothing at all
    assert res.signals_used == ["tags", "refs", "graph"]
