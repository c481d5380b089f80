"""The paired session bootstrap: exact differences, intervals that cover them, sessions as units."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.training import bootstrap
from radio_engine.training.bootstrap import SessionBootstrap


def test_equal_methods_differ_by_exactly_zero() -> None:
    hits = np.array([1.0, 0.0, 1.0, 1.0])
    d = SessionBootstrap(np.array([0, 0, 1, 2])).difference(hits, hits)
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.clear


def test_a_method_better_in_every_session_is_clearly_better() -> None:
    groups = np.repeat(np.arange(50), 4)
    a = np.ones(200)
    b = np.where(np.arange(200) % 4 == 0, 1.0, 0.0)  # b hits one pair of four in every session
    d = SessionBootstrap(groups).difference(a, b)
    assert d.value == pytest.approx(0.75)
    assert d.low == pytest.approx(0.75) and d.high == pytest.approx(0.75)
    assert d.clear and d.to_dict() == {"diff": d.value, "low": d.low, "high": d.high}


def test_a_gain_from_one_session_is_not_clear() -> None:
    # 40 sessions of 5 pairs; a beats b on every pair of session 0 only, and loses one pair in
    # session 1: the mean difference is positive, but it rests on one session
    groups = np.repeat(np.arange(40), 5)
    a = np.zeros(200)
    b = np.zeros(200)
    a[:5] = 1.0
    b[5] = 1.0
    d = SessionBootstrap(groups, seed=1).difference(a, b)
    assert d.value == pytest.approx(4 / 200)
    assert d.low <= 0.0 < d.value < d.high
    assert not d.clear


def test_resamples_are_seeded_and_shared() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, size=300)
    a, b, c = (rng.random(300) for _ in range(3))
    one, two = SessionBootstrap(groups, seed=5), SessionBootstrap(groups, seed=5)
    assert one.difference(a, b) == two.difference(a, b)
    # differences are additive: (a - c) = (a - b) + (b - c)
    assert one.difference(a, c).value == pytest.approx(
        one.difference(a, b).value + one.difference(b, c).value
    )


def test_many_comparisons_in_one_pass_equal_one_at_a_time_in_any_chunking(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 40, size=400)
    a, b, c = (rng.random(400) for _ in range(3))
    resample = SessionBootstrap(groups, draws=300, seed=9)
    together = resample.differences([(a, b), (c, b)])
    alone = [resample.difference(a, b), resample.difference(c, b)]
    monkeypatch.setattr(bootstrap, "CHUNK_CELLS", 7 * 40)  # 7 resamples at a time
    chunked = resample.differences([(a, b), (c, b)])
    for x, y, z in zip(together, alone, chunked, strict=True):
        assert x.low < x.value < x.high
        for other in (y, z):  # the same draws: equal up to float summation order
            assert (x.value, x.low, x.high) == pytest.approx(
                (other.value, other.low, other.high), abs=1e-12
            )


def test_values_must_match_the_pairs() -> None:
    with pytest.raises(ValueError, match="one value per pair"):
        SessionBootstrap(np.array([0, 1])).difference(np.zeros(2), np.zeros(3))
