"""The served blend: its formula and its weights' round trip through the manifest."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.selector.blend import (
    GRU_ONLY,
    SCORE_PARTS,
    BlendWeights,
    blend_only,
    blend_parts,
    blend_scores,
    served_weights,
)


def test_weights_round_trip_and_defaults():
    w = BlendWeights(gru=0.7, last_artist=3.0)
    assert BlendWeights.from_dict(w.to_dict()) == w
    assert BlendWeights.from_dict({"gru": 2}) == BlendWeights(gru=2.0)
    assert BlendWeights.from_dict(None) == BlendWeights()
    assert blend_only(w).gru == 0.0 and blend_only(w).last_artist == 3.0
    with pytest.raises(ValueError, match="unknown blend weights"):
        BlendWeights.from_dict({"grue": 1.0})


def test_blend_scores_by_hand():
    w = BlendWeights(
        gru=2.0, rules=1.0, last_artist=0.5, session_artist=0.25, in_session=-1.0, popularity=0.1
    )
    gru = np.array([[1.0, 0.0, -1.0]])
    rules = np.array([[np.e - 1, 0.0, 0.0]])  # log(1 + e - 1) = 1
    same = np.array([[False, True, False]])
    in_artist = np.array([[False, True, True]])
    in_track = np.array([[False, False, True]])
    pop = np.array([0.0, np.e - 1, 0.0])  # popularity broadcasts over rows
    scores = blend_scores(gru, rules, same, in_artist, in_track, pop, w)
    assert scores.dtype == np.float32
    assert scores[0] == pytest.approx([2 + 1, 0.5 + 0.25 + 0.1, -2 + 0.25 - 1], abs=1e-6)
    no_gru = blend_scores(None, rules, same, in_artist, in_track, pop, w)
    assert no_gru == pytest.approx(
        blend_scores(gru, rules, same, in_artist, in_track, pop, blend_only(w))
    )


def test_served_weights_come_from_the_manifest_or_are_the_gru_alone():
    assert served_weights({"blend": {"gru": 0.5}}) == (BlendWeights(gru=0.5), "manifest")
    assert served_weights({}) == (GRU_ONLY, "gru-only")
    assert served_weights(None)[0].rules == 0.0


def test_the_parts_a_queue_shows_add_up_to_the_served_score():
    rng = np.random.default_rng(0)
    shape = (3, 7)
    signals = {
        "gru_scores": rng.normal(size=shape).astype(np.float32),
        "rule_scores": rng.exponential(size=shape).astype(np.float32),
        "last_artist": rng.random(shape) < 0.3,
        "session_artist": rng.random(shape) < 0.3,
        "in_session": rng.random(shape) < 0.3,
        "popularity": rng.integers(0, 500, size=shape).astype(np.float32),
    }
    w = BlendWeights(gru=0.4, rules=1.2, last_artist=0.5, session_artist=0.25, in_session=-0.5)
    parts = blend_parts(weights=w, **signals)
    assert tuple(parts) == SCORE_PARTS
    total = sum(parts.values())
    np.testing.assert_allclose(total, blend_scores(weights=w, **signals), rtol=1e-5, atol=1e-5)
    assert (parts["artist"][signals["last_artist"] & ~signals["session_artist"]] == 0.5).all()
