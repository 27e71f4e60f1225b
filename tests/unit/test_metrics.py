"""Each metric against values computed by hand on small constructed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from soundalike import metrics as M
from soundalike.errors import ParameterError


def test_pairwise_stats_hand_values():
    S = np.array([[1, .2, .4], [.2, 1, .9], [.4, .9, 1]])
    st = M.pairwise_stats(S)
    assert st["min"] == pytest.approx(.2) and st["max"] == pytest.approx(.9)
    assert st["range"] == pytest.approx(.7) and st["mean"] == pytest.approx(.5)
    assert st["std"] == pytest.approx(np.std([.2, .4, .9])) and st["n_pairs"] == 3


def test_pairwise_stats_rejects_non_square():
    with pytest.raises(ParameterError, match=r"\(2, 3\)"):
        M.pairwise_stats(np.zeros((2, 3)))


def test_expected_pair_pass_and_fail():
    assert M.expected_pair(0.25, 0.1, 0.3)["pass"]
    r = M.expected_pair(0.711, 0.1, 0.3)
    assert not r["pass"] and r["off_by"] == pytest.approx(0.411)
    assert M.expected_pair(0.1, 0.1, 0.3)["pass"]  # inclusive
    with pytest.raises(ParameterError, match="0.5–0.2"):
        M.expected_pair(0.3, 0.5, 0.2)


def test_group_separation():
    S = np.array([[1, .8, .1], [.8, 1, .3], [.1, .3, 1]])
    # same-group pair (0,1)=.8; different (0,2)=.1, (1,2)=.3 -> .8 - .2
    assert M.group_separation(S, ["a", "a", "b"]) == pytest.approx(.6)
    assert np.isnan(M.group_separation(S, ["a", "b", "c"]))


def test_overlap_at_k():
    assert M.overlap_at_k(["a", "b", "c", "d"], ["c", "x", "a"], k=3) == pytest.approx(2 / 3)
    assert M.overlap_at_k(["a"], ["z"], k=5) == 0.0
    assert M.overlap_at_k(["a", "b"], ["b"], k=5) == 1.0  # reference shorter than k
    assert np.isnan(M.overlap_at_k(["a"], [], k=3))


def test_precision_and_average_precision_by_hand():
    rel = [1, 0, 1, 0, 0]
    assert M.precision_at_k(rel, k=1) == 1.0
    assert M.precision_at_k(rel, k=3) == pytest.approx(2 / 3)
    assert M.precision_at_k(rel, k=10) == pytest.approx(0.2)  # missing ranks count as misses
    # AP = (1/1 + 2/3) / 2
    assert M.average_precision(rel) == pytest.approx((1 + 2 / 3) / 2)
    # truncated list with 4 relevant in total
    assert M.average_precision(rel, n_relevant=4) == pytest.approx((1 + 2 / 3) / 4)
    assert np.isnan(M.average_precision([0, 0]))
    assert M.mean_average_precision([[1, 0], [0, 1], [0, 0]]) == pytest.approx((1 + .5) / 2)


def test_ndcg_by_hand():
    gains = [0, 1, 1]
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    ideal = 1 + 1 / np.log2(3)
    assert M.dcg_at_k(gains, k=3) == pytest.approx(dcg)
    assert M.ndcg_at_k(gains, k=3) == pytest.approx(dcg / ideal)
    assert M.ndcg_at_k([1, 1, 0], k=3) == pytest.approx(1.0)
    # graded gains, ideal taken over all candidates (beyond k)
    assert M.ndcg_at_k([0, 2], k=1, all_gains=[0, 2]) == 0.0
    assert np.isnan(M.ndcg_at_k([0, 0], k=2))


def test_expected_ap_matches_enumeration():
    for R, N in [(1, 3), (2, 4), (3, 5)]:
        aps = []
        for pos in itertools.combinations(range(N), R):
            rel = np.zeros(N)
            rel[list(pos)] = 1
            aps.append(M.average_precision(rel))
        assert M.expected_average_precision(R, N) == pytest.approx(np.mean(aps))


def test_expected_ndcg_matches_enumeration():
    gains = np.array([1.0, 0.0, 0.0, 1.0])
    vals = [M.ndcg_at_k(gains[list(p)], k=2) for p in itertools.permutations(range(4))]
    assert M.expected_ndcg_at_k(gains, k=2) == pytest.approx(np.mean(vals))


# Four artists: A and B are "rock", C and D "jazz"; the matrix puts A next to C (a miss).
S4 = np.array([
    [1.0, 0.2, 0.9, 0.1],
    [0.2, 1.0, 0.3, 0.4],
    [0.9, 0.3, 1.0, 0.8],
    [0.1, 0.4, 0.8, 1.0],
])
G4 = ["rock", "rock", "jazz", "jazz"]


def test_genre_precision_at_1_with_ceiling_and_chance():
    r = M.genre_precision_at_k(S4, G4, k=1)
    # A -> C (miss); B -> D (miss); C -> A (miss); D -> C (hit)
    assert r["P@1"] == pytest.approx(0.25)
    assert r["ceiling"] == 1.0
    assert r["chance"] == pytest.approx(1 / 3)  # one same-genre artist among 3 others
    # AP: A ranks C,B,D -> relevant at 2 -> .5; B ranks D,C,A -> 1/3; C ranks A,D,B -> .5; D ranks C -> 1
    assert r["MAP"] == pytest.approx((0.5 + 1 / 3 + 0.5 + 1) / 4)
    assert r["n_queries"] == 4 and r["n_skipped"] == 0


def test_genre_precision_ceiling_below_one_and_skips():
    labels = ["rock", "rock", "jazz", "folk"]  # jazz and folk have no other artist
    r = M.genre_precision_at_k(S4, labels, k=2)
    assert r["n_queries"] == 2 and r["n_skipped"] == 2
    assert r["ceiling"] == pytest.approx(0.5)  # one relevant artist, two slots
    # A ranks C, B -> B at rank 2: P@2 = .5; B ranks D, C, A -> 0
    assert r["P@2"] == pytest.approx(0.25)


def test_track_level_artist_filter_excludes_own_tracks():
    # tracks 0,1 by artist x (rock); 2 by y (rock); 3 by z (jazz)
    S = np.array([
        [1.0, 0.99, 0.5, 0.6],
        [0.99, 1.0, 0.4, 0.3],
        [0.5, 0.4, 1.0, 0.2],
        [0.6, 0.3, 0.2, 1.0],
    ])
    r = M.track_genre_precision_at_k(S, ["rock", "rock", "rock", "jazz"], ["x", "x", "y", "z"], k=1)
    # track 0: candidates 2,3 -> 3 (0.6) first: miss. track 1: 2 (0.4) first: hit.
    # track 2: candidates 0,1,3 -> 0: hit. track 3: no other jazz -> skipped
    assert r["P@1"] == pytest.approx(2 / 3)
    assert r["n_skipped"] == 1


def test_same_artist_map_by_hand():
    S = np.array([
        [1.0, 0.9, 0.1, 0.2],
        [0.9, 1.0, 0.8, 0.1],
        [0.1, 0.8, 1.0, 0.3],
        [0.2, 0.1, 0.3, 1.0],
    ])
    r = M.same_artist_map(S, ["a", "a", "b", "b"])
    # q0: 1 first -> 1; q1: 0 first -> 1; q2: ranks 1, 3, 0 -> 3 at rank 2 -> .5; q3: ranks 2 first -> 1
    assert r["MAP"] == pytest.approx((1 + 1 + .5 + 1) / 4)
    assert r["chance"] == pytest.approx(M.expected_average_precision(1, 3))
    assert r["ceiling"] == 1.0


def test_k_occurrence_and_hubness_by_hand():
    # Item 0 is everyone's nearest neighbour: a hub.
    S = np.array([
        [1.0, 0.9, 0.8, 0.7],
        [0.9, 1.0, 0.1, 0.2],
        [0.8, 0.1, 1.0, 0.3],
        [0.7, 0.2, 0.3, 1.0],
    ])
    Nk = M.k_occurrence(S, k=1)
    # 0 -> 1; 1 -> 0; 2 -> 0; 3 -> 0
    np.testing.assert_array_equal(Nk, [3, 1, 0, 0])
    h = M.hubness(S, k=1)
    d = Nk - Nk.mean()
    assert h["skewness"] == pytest.approx((d**3).mean() / (d**2).mean() ** 1.5)
    assert h["max_k_occurrence"] == 3 and h["max_share"] == pytest.approx(3 / 4)
    assert h["anti_hub_share"] == pytest.approx(0.5)
    assert M.k_occurrence(S, k=2).sum() == 8


def test_hubness_of_uniform_neighbourhoods_is_zero():
    # A ring: each item's nearest neighbour is the next one; every k-occurrence equals 1.
    n = 5
    S = np.eye(n)
    for i in range(n):
        S[i, (i + 1) % n] = S[(i + 1) % n, i] = 0.5
        S[i, (i + 2) % n] = S[(i + 2) % n, i] = 0.1
    S[0, 1] = 0.6  # asymmetry-free tie breaking
    h = M.hubness(S, k=2)
    assert h["skewness"] == pytest.approx(0.0)
    assert h["anti_hub_share"] == 0.0


def test_bootstrap_ci_and_groups():
    v = np.array([0.0, 1.0] * 10)
    ci = M.bootstrap_ci(v)
    assert ci["mean"] == pytest.approx(0.5)
    assert 0.2 <= ci["low"] < 0.5 < ci["high"] <= 0.8
    assert ci["n_resamples"] == 1000
    # constant per-group values with identical groups: no spread
    ci2 = M.bootstrap_ci([1.0, 1.0, 1.0], groups=["a", "a", "b"])
    assert ci2["low"] == ci2["high"] == 1.0
    # deterministic with the seed
    assert M.bootstrap_ci(v, seed=3) == M.bootstrap_ci(v, seed=3)
    with pytest.raises(ParameterError, match="one group per value"):
        M.bootstrap_ci([1.0, 2.0], groups=["a"])


def test_grouped_bootstrap_resamples_whole_groups():
    # Two groups of very different size and value: group means decide the spread.
    v = np.r_[np.ones(9), 0.0]
    g = ["a"] * 9 + ["b"]
    ci = M.bootstrap_ci(v, groups=g, n_resamples=2000)
    # Possible resamples: {a,a} -> 1, {b,b} -> 0, {a,b} -> 0.9. The 2.5% quantile is 0.
    assert ci["low"] == 0.0 and ci["high"] == 1.0


def test_paired_bootstrap_detects_a_clear_win():
    a = np.linspace(0.5, 1.0, 16)
    d = M.paired_bootstrap(a, a - 0.2)
    assert d["mean"] == pytest.approx(0.2) and d["excludes_zero"]
    assert not M.paired_bootstrap(a, a)["excludes_zero"]
