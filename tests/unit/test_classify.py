"""Genre classifiers: estimators, the artist leak, set-aside genres, scores, safe persistence."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.classify import (
    ESTIMATORS, GenreClassifier, GenreModel, _splits, classification_scores, cross_validate, evaluate_genres,
    labels_from_folders, load_model, majority_genre, save_model, split_eligible,
)
from soundalike.errors import NotFittedError, ParameterError


def blobs(rng, n_per=20, d=6, sep=3.0):
    X = np.r_[rng.normal(0, 1, (n_per, d)), rng.normal(sep, 1, (n_per, d)), rng.normal(-sep, 1, (n_per, d))]
    y = np.array(["a"] * n_per + ["b"] * n_per + ["c"] * n_per)
    return X, y


@pytest.mark.parametrize("est", ESTIMATORS)
def test_estimators_fit_predict_proba(est, rng):
    X, y = blobs(rng)
    clf = GenreClassifier(estimator=est).fit(X, y)
    assert clf.score(X, y) > 0.9
    P = clf.predict_proba(X)
    assert P.shape == (60, 3) and np.allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.n_features_in_ == 6


def test_errors(rng):
    X, y = blobs(rng)
    with pytest.raises(NotFittedError, match="fit"):
        GenreClassifier().predict(X)
    with pytest.raises(ParameterError, match="estimator='forest'"):
        GenreClassifier(estimator="forest").fit(X, y)
    with pytest.raises(ParameterError, match="two genres"):
        GenreClassifier().fit(X[:5], y[:5])
    with pytest.raises(ValueError, match="features"):
        GenreClassifier().fit(X, y).predict(X[:, :3])


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # The sklearn contract (clone, fit/predict, errors before fit ...) for the default estimator.
    check_estimator(GenreClassifier(max_iter=200))


def test_majority_genre_ties_alphabetical():
    assert majority_genre([("rock",), ("pop",), ("rock", "jazz")]) == "rock"
    assert majority_genre([("rock",), ("jazz",)]) == "jazz"
    assert majority_genre([(), ()]) is None


def test_split_eligible_sets_apart_single_artist_genres():
    y = ["rock", "rock", "rock", "jazz", "jazz", "folk"]
    g = [1, 1, 2, 3, 3, 4]
    keep, aside = split_eligible(y, g)
    np.testing.assert_array_equal(keep, [True, True, True, False, False, False])
    assert aside == {"folk": {"support": 1, "n_artists": 1, "artists": ["4"]},
                     "jazz": {"support": 2, "n_artists": 1, "artists": ["3"]}}


def test_classification_scores_by_hand():
    s = classification_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert s["accuracy"] == 0.75
    # a: P=1, R=.5, F1=2/3; b: P=2/3, R=1, F1=.8
    assert s["macro_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["macro_recall"] == pytest.approx(0.75)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert s["confusion"] == [[1, 1], [0, 2]]
    assert s["per_class"]["a"]["support"] == 2 and s["chance"] == 0.5


def test_grouped_splits_keep_artists_on_one_side(rng):
    y = np.repeat(["a", "b"], 30)
    groups = np.repeat(np.arange(12), 5)
    for tr, te in _splits(y, groups, "grouped", 5, 0):
        assert not set(groups[tr]) & set(groups[te])
    leaky = _splits(y, groups, "stratified", 5, 0)
    assert any(set(groups[tr]) & set(groups[te]) for tr, te in leaky)


def test_artist_leak_shows_in_stratified_split(rng):
    # Genre carries no signal; each artist has its own strong fingerprint. A stratified split
    # lets the classifier recognise artists (high accuracy); grouped CV reveals chance level.
    n_art, per = 12, 8
    groups = np.repeat(np.arange(n_art), per)
    y = np.array(["a", "b"] * (n_art // 2))[groups]
    finger = rng.normal(0, 3, (n_art, 30))  # d > n_artists: any artist->genre map is linear
    X = finger[groups] + rng.normal(0, 0.5, (n_art * per, 30))
    g = cross_validate({"x": X}, y, groups, scheme="grouped")["results"]["x"]["accuracy"]
    s = cross_validate({"x": X}, y, groups, scheme="stratified")["results"]["x"]["accuracy"]
    assert s > 0.9 and g < 0.75


def test_evaluate_genres_with_ensemble(rng):
    X, y = blobs(rng, n_per=24)
    groups = np.repeat(np.arange(12), 6)  # 4 artists per genre
    y = y.copy()
    res = evaluate_genres({"p": X, "q": X + rng.normal(0, 1, X.shape)}, list(y) + [], groups,
                          estimators=["logreg", "svm"])
    assert {(r["estimator"], r["scheme"]) for r in res["runs"]} == {
        ("logreg", "grouped"), ("logreg", "stratified"), ("svm", "grouped"), ("svm", "stratified")}
    r = res["runs"][0]["results"]
    assert set(r) == {"p", "q", "p+q"} and r["p+q"]["accuracy"] > 0.8
    assert len(r["p"]["fold_accuracy"]) == 5


def test_evaluate_genres_needs_two_eligible_genres():
    with pytest.raises(ParameterError, match="two or more artists"):
        evaluate_genres({"x": np.zeros((4, 2))}, ["a", "a", "b", "b"], [1, 1, 2, 2])


def test_save_and_load_round_trip(tmp_path, rng):
    X, y = blobs(rng)
    m = GenreModel({"p": GenreClassifier(estimator="mlp").fit(X, y), "q": GenreClassifier(estimator="svm").fit(X, y)},
                   {"p": "key-p", "q": "key-q"}, {"estimator": "mixed"})
    path = save_model(m, tmp_path / "m.skops")
    m2 = load_model(path)
    assert m2.name == "p+q" and m2.model_keys == {"p": "key-p", "q": "key-q"} and m2.meta["estimator"] == "mixed"
    np.testing.assert_allclose(m2.predict_proba({"p": X, "q": X}), m.predict_proba({"p": X, "q": X}))
    with pytest.raises(ParameterError, match="backend"):
        m2.predict({"p": X})


def test_load_refuses_other_files(tmp_path):
    bad = tmp_path / "x.skops"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a soundalike genre model"):
        load_model(bad)
    with pytest.raises(ParameterError, match="does not exist"):
        load_model(tmp_path / "none.skops")


def test_load_refuses_untrusted_types(tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    p = tmp_path / "evil.skops"
    sio.dump({"format": "soundalike-genre-model", "f": FunctionTransformer(func=eval)}, p)
    with pytest.raises(ParameterError, match="allow-list"):
        load_model(p)


def test_labels_from_folders(tmp_path):
    for g, f in [("rock", "a.wav"), ("jazz", "b.ogg"), ("jazz", "sub/c.flac")]:
        (tmp_path / g / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / g / f).write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("x")
    labels = labels_from_folders(tmp_path)
    assert sorted(labels.values()) == ["jazz", "jazz", "rock"]
    assert labels[str((tmp_path / "rock" / "a.wav").resolve())] == "rock"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="GTZAN"):
        labels_from_folders(tmp_path / "empty")
    with pytest.raises(ParameterError, match="does not exist"):
        labels_from_folders(tmp_path / "missing")
