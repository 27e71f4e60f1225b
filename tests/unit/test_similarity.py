"""Artist / track similarity through the query engine's spaces: every calibration and profile gives
[0, 1] scores; percentiles are among all pairs; profiles behave."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.query import CALIBRATIONS, PROFILES
from soundalike.query.vectors import ModelVectors, fit_space
from soundalike.similarity import cosine_matrix, set_similarity
from soundalike.store import ModelInfo


def library(rng, n_art=6, per=4, d=12):
    C = rng.normal(size=(n_art, d)) * 2
    X = np.vstack([c + 0.5 * rng.normal(size=(per, d)) for c in C]) + 5.0  # a cone, as real embeddings
    return X, np.repeat(np.arange(10, 10 + n_art), per)


def vectors(X, y) -> ModelVectors:
    model = ModelInfo("m", "toy", {}, None, "none", X.shape[1], 1)
    return ModelVectors(model, 0, [f"t{i:03d}" for i in range(len(X))], X, np.asarray(y, np.int64), {})


@pytest.mark.parametrize("calibration", CALIBRATIONS)
@pytest.mark.parametrize("profile", PROFILES)
def test_scores_in_unit_interval_and_symmetric(rng, calibration, profile):
    X, y = library(rng)
    space = fit_space(vectors(X, y), level="artists", calibration=calibration, profile=profile)
    score, raw = space.score_matrix()
    assert score.shape == (6, 6)
    assert score.min() >= 0.0 and score.max() <= 1.0
    np.testing.assert_allclose(score, score.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(score), 1.0)
    assert list(space.ids) == list(range(10, 16))
    # one row asked as a query equals the matrix row (the answer does not depend on the path)
    hits = space.top(None if space.V is None else space.V[2], k=5, self_pos=2,
                     raw_q=None if space.R is None else space.R[2])
    np.testing.assert_allclose([h.score for h in hits], [score[2, h.pos] for h in hits], atol=1e-12)
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)


def test_percentile_is_among_all_pairs():
    from soundalike.calibration import percentile_of

    # three pairs: ranks 1, 2, 3 -> mid-rank percentiles 1/6, 3/6, 5/6; ties share their mid rank
    np.testing.assert_allclose(percentile_of(np.array([0.1, 0.5, 0.9]), [0.1, 0.5, 0.9]), [1 / 6, 3 / 6, 5 / 6])
    np.testing.assert_allclose(percentile_of(np.array([0.5, 0.5]), [0.5]), [0.5])


def test_calibrated_score_keeps_raw_cosine_beside_it(rng):
    X, y = library(rng)
    space = fit_space(vectors(X, y), level="artists", calibration="center")
    _, raw = space.score_matrix()
    assert raw[np.triu_indices(6, 1)].min() > 0.5  # the cone
    hits = space.top(space.V[0], k=3, self_pos=0, raw_q=space.R[0])
    assert len(hits) == 3 and all(h.pos != 0 for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
    np.testing.assert_allclose([h.raw_cosine for h in hits], [raw[0, h.pos] for h in hits])


def test_set_profile_matches_a_two_style_artist_to_both_styles():
    # artist 1 has one track of style A and one of style B; artists 2 and 3 are pure A and pure B
    a, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    T_vec = np.vstack([a, b, a + 0.05, a - 0.05 * b, b + 0.05, b - 0.05 * a])
    labels = np.array([1, 1, 2, 2, 3, 3])
    uniq, S = set_similarity(cosine_matrix(T_vec), labels)
    assert S[0, 1] > 0.7 and S[0, 2] > 0.7  # best matches: both styles are close to artist 1
    _, c = fit_space(vectors(T_vec, labels), level="artists", calibration="none").score_matrix()
    assert S[0, 1] > c[0, 1]  # a centroid sits between the styles


def test_track_scores_find_same_artist(rng):
    from soundalike.metrics import same_artist_map

    X, y = library(rng)
    score, _ = fit_space(vectors(X, y), level="tracks", calibration="center").score_matrix()
    assert same_artist_map(score, y)["MAP"] > 0.9
    assert score.min() >= 0 and score.max() <= 1


def test_errors_name_the_problem(rng):
    X, y = library(rng)
    with pytest.raises(ParameterError, match="calibration 'bogus'"):
        fit_space(vectors(X, y), level="artists", calibration="bogus")
    with pytest.raises(ParameterError, match="profile 'gmm'"):
        fit_space(vectors(X, y), level="artists", calibration="center", profile="gmm")
    with pytest.raises(ParameterError, match="no vectors"):
        fit_space(vectors(X, y), level="artists", calibration="center").position(99)
