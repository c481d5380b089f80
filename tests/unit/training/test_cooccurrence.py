"""Artist start vectors from within-session co-occurrence: counted where they should be, and
artists that share sessions start close together."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from radio_engine.training.config import TrainConfig
from radio_engine.training.cooccurrence import artist_pair_counts, artist_start_vectors, ppmi
from radio_engine.training.data import Events
from radio_engine.training.encoding import Vocab
from radio_engine.training.loop import ARTIST_START_SPREAD, new_model


def _events(
    sessions: list[tuple[str, str, list[str]]], kinds: dict[int, str] | None = None
) -> Events:
    """Events of (user, session, artists in order); track i of a session is '<artist>-<i>'."""
    rows = [
        (user, session, artist, i)
        for user, session, artists in sessions
        for i, artist in enumerate(artists)
    ]
    kinds = kinds or {}
    return Events(
        fold=np.zeros(len(rows), np.int64),
        user_id=np.array([u for u, _, _, _ in rows]),
        session_id=np.array([s for _, s, _, _ in rows]),
        track_id=np.array([f"{a}-{i}" for _, _, a, i in rows]),
        artist_id=np.array([a for _, _, a, _ in rows]),
        ts=np.array([1000.0 + 60 * i for _, _, _, i in rows]),
        event=np.array([kinds.get(n, "play") for n in range(len(rows))]),
    )


def test_pairs_count_within_a_session_and_window_only() -> None:
    events = _events([("u1", "s1", ["a", "b", "c", "d"]), ("u1", "s2", ["e"])])
    vocab = Vocab.build(events)
    index = vocab.artist_index
    counts = artist_pair_counts(events, vocab, window=2).toarray()

    def count(x: str, y: str) -> float:
        return counts[index[x], index[y]]

    assert count("a", "b") == count("b", "a") == 1  # neighbours, both directions
    assert count("a", "c") == 1  # two apart: inside the window
    assert count("a", "d") == 0  # three apart: outside it
    assert count("d", "e") == 0  # another session
    assert counts[0].sum() == 0 and counts.diagonal().sum() == 0


def test_a_skipped_event_joins_no_pair() -> None:
    events = _events([("u1", "s1", ["a", "b", "c"])], kinds={1: "skip"})
    vocab = Vocab.build(events)
    index = vocab.artist_index
    counts = artist_pair_counts(events, vocab, window=1).toarray()
    assert counts[index["a"], index["b"]] == 0
    assert counts[index["a"], index["c"]] == 1  # neighbours once the skip is left out


def test_ppmi_keeps_only_pairs_seen_more_often_than_chance() -> None:
    # a-b and c-d meet often, a-c once: less than their popularity predicts
    counts = np.zeros((4, 4))
    counts[0, 1] = counts[1, 0] = counts[2, 3] = counts[3, 2] = 9
    counts[0, 2] = counts[2, 0] = 1
    values = ppmi(sp.csr_matrix(counts)).toarray()
    total, rows = counts.sum(), counts.sum(1)
    assert np.isclose(values[0, 1], np.log(9 * total / (rows[0] * rows[1])))
    assert values[0, 1] > 0 and values[0, 2] == 0 and values[0, 3] == 0


def test_artists_sharing_sessions_start_closer_than_strangers() -> None:
    # two scenes: rock artists only ever meet each other, jazz artists likewise
    rng = np.random.default_rng(0)
    rock, jazz = ["r1", "r2", "r3", "r4"], ["j1", "j2", "j3", "j4"]
    sessions = [(f"u{n}", f"s{n}", list(rng.choice(rock if n % 2 else jazz, 6))) for n in range(80)]
    events = _events(sessions)
    vocab = Vocab.build(events)
    vectors = artist_start_vectors(events, vocab, dims=4, window=2, scale=0.05)
    assert vectors is not None and vectors.shape == (len(vocab.artists) + 1, 4)
    assert np.isclose(vectors[1:].std(), 0.05, rtol=1e-4) and not vectors[0].any()
    index = vocab.artist_index
    unit = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)

    def cos(x: str, y: str) -> float:
        return float(unit[index[x]] @ unit[index[y]])

    within = np.mean([cos(a, b) for g in (rock, jazz) for a in g for b in g if a < b])
    across = np.mean([cos(a, b) for a in rock for b in jazz])
    assert within > across + 0.5


def test_a_new_model_starts_its_artists_from_their_sessions_unless_asked_not_to() -> None:
    sessions = [(f"u{n}", f"s{n}", ["a", "b", "c", "d", "e"][n % 3 : n % 3 + 3]) for n in range(30)]
    events = _events(sessions)
    vocab = Vocab.build(events)
    config = TrainConfig(seed=1)
    model, _ = new_model(vocab, config, events)
    expected = artist_start_vectors(
        events, vocab, 64, config.cooccurrence_window, ARTIST_START_SPREAD
    )
    assert expected is not None
    table = model.tracks.artist_in.weight.detach()
    assert torch.allclose(table[1:], torch.from_numpy(expected[1:]))
    random_start, _ = new_model(vocab, config.replace(artist_init="random"), events)
    assert not torch.allclose(random_start.tracks.artist_in.weight.detach()[1:], table[1:])
    # the unknown artist keeps the seeded random start either way
    assert torch.equal(random_start.tracks.artist_in.weight[0], model.tracks.artist_in.weight[0])
