"""The duplicate-recording rule on generated vectors: cosine bar, title bar, duration gate."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.recordings import DuplicateDetector, normalise_title


@pytest.mark.parametrize("raw, want", [
    ("03 - Song For You (Remastered 2011)", "song for you"),
    ("Song for You - 2011 Remaster", "song for you"),
    ("Sóng for you [2009 Digital Remaster]", "song for you"),
    ("Song for You (Live)", "song for you live"),
    ("Eridani's Rock 0.2", "eridani s rock 0 2"),
    (None, ""),
])
def test_normalise_title(raw, want):
    assert normalise_title(raw) == want


def test_rule_uses_cosine_title_and_duration():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 16))
    a = X[0]
    X[1] = a + 0.05 * rng.standard_normal(16)       # near-identical audio
    X[2] = a + 0.45 * rng.standard_normal(16)       # similar audio only
    X[3] = X[1]                                      # identical audio, but 40 s longer
    ids = [f"t{i}" for i in range(40)]
    dur = [200.0] * 40
    dur[3] = 240.0
    titles = ["Song (Remastered)", "Song", "song", "Song"] + [f"other {i}" for i in range(36)]
    det = DuplicateDetector(ids, X, dur, titles, cosine_min=0.97, title_cosine_min=0.80)
    cos02 = det.pair("t0", "t2")[0]
    assert det.pair("t0", "t1")[0] > 0.97 and 0.80 < cos02 < 0.97
    assert det.is_duplicate("t0", "t1")
    assert det.is_duplicate("t0", "t2")                     # equal normalised titles: the lower bar
    assert not DuplicateDetector(ids, X, dur, ["x", "y", "z"] + titles[3:]).is_duplicate("t0", "t2")
    assert not det.is_duplicate("t0", "t3")                  # another duration: another recording
    assert det.duplicates("t0", ["t5", "t1", "unknown"]) == ["t1"]
    assert det.duplicates("unknown", ["unknown", "t1"]) == ["unknown"]
