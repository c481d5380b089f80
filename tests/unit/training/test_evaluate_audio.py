"""Leave-one-out neighbour precision on hand-made vectors whose answer is known."""

from __future__ import annotations

import numpy as np

from radio_engine.training.evaluate_audio import (
    chance,
    evaluate_embeddings,
    nearest_neighbour_precision,
)


def test_precision_at_one_on_a_known_layout() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=float)
    games = ["a", "a", "b", "b", "b"]
    # item 4 (b) is nearest to item 1 (a, cosine .78 vs .78 for item 3): ties go to the first
    assert nearest_neighbour_precision(vectors, games) == 0.8
    artists = ["x", "", "y", "y", ""]
    # unlabelled items are neither scored nor used as neighbours
    assert nearest_neighbour_precision(vectors, artists) == 2 / 3
    assert evaluate_embeddings(vectors, games, artists) == {
        "same_game_p@1": 0.8,
        "same_artist_p@1": 2 / 3,
    }


def test_chance_is_the_share_of_same_label_pairs() -> None:
    assert chance(["a", "a", "b", "b"]) == 4 / 12
    assert chance(["a", "", "a"]) == 1.0
