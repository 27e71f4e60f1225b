"""Signals: coverage, NaN for artists without the signal, CSV parsing, PageRank propagation."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.signals import SignalContext, compute_signal
from soundalike.signals.graph import adjacency, personalized_pagerank
from soundalike.signals.refs import parse_rank_or_score
from soundalike.signals.tags import tfidf_cosine

NAMES = {1: "Alpha", 2: "Beta", 3: "Gamma", 4: "Delta", 5: "Loner"}
IDS = np.array(sorted(NAMES))


def ctx(tmp_path, **kw):
    return SignalContext(artist_ids=IDS, names=NAMES, **kw)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tags_tfidf_and_coverage(tmp_path):
    tags = write(tmp_path, "tags.csv", "artist,tag,weight\nalpha,rock,2\nBeta,rock,1\nbeta,jazz,1\nGamma,jazz,1\n")
    s = compute_signal("tags", ctx(tmp_path, csv={"tags": tags}))
    assert s.coverage == pytest.approx(3 / 5)
    assert np.isnan(s.score[3]).all() and np.isnan(s.score[:, 4]).all()  # Delta, Loner: no tags
    assert s.score[0, 1] > 0 and s.score[0, 2] == 0.0  # rock shared, nothing shared
    assert not s.is_label


def test_file_tags_marked_as_labels(tmp_path):
    c = ctx(tmp_path, file_tags={1: {"videogame": 3}, 2: {"videogame": 1}}, file_tags_are_labels=True)
    s = compute_signal("tags", c)
    assert s.is_label and "labels" in s.note
    c.options = {"file_tags": False}
    assert compute_signal("tags", c).coverage == 0.0


def test_tfidf_rare_tags_weigh_more():
    S = tfidf_cosine({1: {"rock": 1, "shoegaze": 1}, 2: {"rock": 1, "shoegaze": 1}, 3: {"rock": 1}, 4: {"rock": 1}},
                     np.array([1, 2, 3, 4]))
    assert S[0, 1] == pytest.approx(1.0)
    assert S[0, 2] < 0.7  # sharing only the common tag counts less


def test_refs_ranks_and_symmetry(tmp_path):
    refs = write(tmp_path, "refs.csv", "artist,similar_artist,rank_or_score\nAlpha,Beta,1\nAlpha,Gamma,2\nNobody,Alpha,1\n")
    s = compute_signal("refs", ctx(tmp_path, csv={"refs": refs}))
    assert s.score[0, 1] == 1.0 and s.score[1, 0] == 1.0  # symmetrised
    assert s.score[0, 2] == pytest.approx(0.5)
    assert s.score[1, 2] == 0.0  # both listed, no link
    assert s.coverage == pytest.approx(3 / 5)
    assert np.isnan(s.score[3, 0])  # Delta: never listed


def test_parse_rank_or_score():
    np.testing.assert_allclose(parse_rank_or_score(["1", "2", "4"]), [1, 0.5, 0.25])
    np.testing.assert_allclose(parse_rank_or_score(["0.9", "0.3"]), [0.9, 0.3])


def test_graph_propagates_to_artists_without_a_list(tmp_path):
    # Delta has no list of its own, but Gamma's collaboration reaches it; Alpha-Delta is two hops
    refs = write(tmp_path, "refs.csv", "artist,similar_artist,rank_or_score\nAlpha,Beta,1\nBeta,Gamma,1\n")
    collab = write(tmp_path, "collab.csv", "artist_a,artist_b,kind,weight\nGamma,Delta,collaboration,1\n")
    s = compute_signal("graph", ctx(tmp_path, csv={"refs": refs, "graph": collab}))
    assert s.coverage == pytest.approx(4 / 5)
    assert s.score[0, 3] > 0  # Alpha reaches Delta by propagation
    assert s.score[0, 1] > s.score[0, 2] > s.score[0, 3]  # nearer = higher
    assert np.isnan(s.score[4]).all()  # Loner has no link at all
    assert np.nanmax(s.score) <= 1.0


def test_pagerank_rows_are_distributions():
    A = adjacency([(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], 5)
    P = personalized_pagerank(A, np.array([0, 4]), alpha=0.2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-4)
    assert P[1, 4] == pytest.approx(1.0, abs=1e-5)  # an isolated node keeps its walk
    with pytest.raises(ParameterError, match="alpha"):
        personalized_pagerank(A, np.array([0]), alpha=1.5)


def test_missing_csv_and_bad_header(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        compute_signal("refs", ctx(tmp_path, csv={"refs": tmp_path / "nope.csv"}))
    bad = write(tmp_path, "bad.csv", "a,b\n1,2\n")
    with pytest.raises(ParameterError, match="lacks column"):
        compute_signal("graph", ctx(tmp_path, csv={"graph": bad}))


def test_no_inputs_means_zero_coverage(tmp_path):
    for name in ("tags", "refs", "graph", "audio"):
        s = compute_signal(name, ctx(tmp_path))
        assert s.coverage == 0.0 and np.isnan(s.score).all()
    with pytest.raises(ParameterError, match="signal='genre'"):
        compute_signal("genre", ctx(tmp_path))
