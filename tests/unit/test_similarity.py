"""Artist / track similarity: every calibration and profile gives [0, 1] scores; profiles behave."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.similarity import (CALIBRATIONS, PROFILES, artist_similarity, percentile_scores, set_similarity,
                                   top_k, track_similarity)


def library(rng, n_art=6, per=4, d=12):
    C = rng.normal(size=(n_art, d)) * 2
    X = np.vstack([c + 0.5 * rng.normal(size=(per, d)) for c in C]) + 5.0  # a cone, as real embeddings
    return X, np.repeat(np.arange(10, 10 + n_art), per)


@pytest.mark.parametrize("calibration", CALIBRATIONS)
@pytest.mark.parametrize("profile", PROFILES)
def test_scores_in_unit_interval_and_symmetric(rng, calibration, profile):
    X, y = library(rng)
    sim = artist_similarity(X, y, calibration=calibration, profile=profile)
    assert sim.score.shape == (6, 6)
    assert sim.score.min() >= 0.0 and sim.score.max() <= 1.0
    np.testing.assert_allclose(sim.score, sim.score.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(sim.score), 1.0)
    assert list(sim.labels) == list(range(10, 16))


def test_percentile_is_among_all_pairs(rng):
    S = np.array([[1, 0.9, 0.1], [0.9, 1, 0.5], [0.1, 0.5, 1.0]])
    P = percentile_scores(S)
    # three pairs: ranks 1, 2, 3 -> mid-rank percentiles 1/6, 3/6, 5/6
    np.testing.assert_allclose(sorted(P[np.triu_indices(3, 1)]), [1 / 6, 3 / 6, 5 / 6])


def test_calibrated_score_keeps_raw_cosine_beside_it(rng):
    X, y = library(rng)
    sim = artist_similarity(X, y, calibration="center")
    assert sim.raw_cosine[np.triu_indices(6, 1)].min() > 0.5  # the cone
    nb = top_k(sim, 10, k=3)
    assert len(nb) == 3 and all(n.index != 0 for n in nb)
    assert nb[0].score >= nb[1].score >= nb[2].score
    assert -1.0 <= nb[0].raw_cosine <= 1.0


def test_set_profile_matches_a_two_style_artist_to_both_styles():
    # artist 1 has one track of style A and one of style B; artists 2 and 3 are pure A and pure B
    a, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    T_vec = np.vstack([a, b, a + 0.05, a - 0.05 * b, b + 0.05, b - 0.05 * a])
    labels = np.array([1, 1, 2, 2, 3, 3])
    from soundalike.similarity import cosine_matrix

    uniq, S = set_similarity(cosine_matrix(T_vec), labels)
    assert S[0, 1] > 0.7 and S[0, 2] > 0.7  # best matches: both styles are close to artist 1
    c = artist_similarity(T_vec, labels, calibration="none", profile="centroid").raw_cosine
    assert S[0, 1] > c[0, 1]  # a centroid sits between the styles


def test_track_similarity_finds_same_artist(rng):
    X, y = library(rng)
    ts = track_similarity(X, calibration="center")
    from soundalike.metrics import same_artist_map

    assert same_artist_map(ts.score, y)["MAP"] > 0.9
    assert ts.score.min() >= 0 and ts.score.max() <= 1


def test_errors_name_the_problem(rng):
    X, y = library(rng)
    with pytest.raises(ParameterError, match="calibration='bogus'"):
        artist_similarity(X, y, calibration="bogus")
    with pytest.raises(ParameterError, match="profile='gmm'"):
        artist_similarity(X, y, profile="gmm")
    with pytest.raises(ParameterError, match="labels has 3 entries"):
        artist_similarity(X, y[:3])
    with pytest.raises(ParameterError, match="no embeddings"):
        top_k(artist_similarity(X, y), 99)
