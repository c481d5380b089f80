"""Selector pieces alone: exact blocked top-k, each queue rule, exploration, catalog growth."""

from __future__ import annotations

import itertools

import numpy as np

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.rules import (
    RuleContext,
    apply_rules,
    exclude_disliked,
    exclude_recent,
    explore,
    push_down_skipped,
    separate_artists,
)
from radio_engine.selector.scoring import top_k_naive, top_k_rows
from radio_engine.selector.selector import ListenerUpdate, Selector
from radio_engine.settings import Settings


def test_blocked_top_k_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(10_000, 16)).astype(np.float32)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    assert np.array_equal(
        top_k_rows(queries, matrix, 50, block=999), top_k_naive(queries, matrix, 50)
    )


def test_top_k_skips_inactive_rows() -> None:
    matrix = np.eye(4, dtype=np.float32)
    active = np.array([True, False, True, True])
    rows = top_k_rows(np.array([[0, 5, 1, 0]], dtype=np.float32), matrix, 3, active)
    assert rows.tolist() == [[2, 0, 3]] or rows.tolist() == [[2, 3, 0]]
    assert 1 not in rows


def test_filters_each_do_one_thing() -> None:
    ctx = RuleContext(recent=frozenset({"a"}), disliked=frozenset({"b"}), skipped=frozenset({"c"}))
    assert exclude_recent(["a", "b", "c", "d"], ctx) == ["b", "c", "d"]
    assert exclude_disliked(["a", "b", "c", "d"], ctx) == ["a", "c", "d"]
    assert push_down_skipped(["c", "d", "e"], ctx) == ["d", "e", "c"]
    assert apply_rules(["a", "b", "c", "d", "d"], ctx) == ["d", "c"]


def test_artist_separation_keeps_one_artist_apart() -> None:
    artist = {"x1": "X", "x2": "X", "x3": "X", "y1": "Y", "z1": "Z"}.__getitem__
    ctx = RuleContext(last_artist="X", artist_of=artist)
    queue = separate_artists(
        ["x1", "x2", "y1", "x3", "z1"], ctx, length=4, window=2, max_per_window=1
    )
    assert queue == ["y1", "x1", "z1", "x2"]
    # never two X in a row, last played artist included
    artists = ["X", *(artist(t) for t in queue)]
    assert all(a != b for a, b in itertools.pairwise(artists))


def test_artist_separation_fills_when_it_cannot_be_met() -> None:
    ctx = RuleContext(artist_of=lambda _: "X")
    assert separate_artists(["x1", "x2", "x3"], ctx, length=3, window=3, max_per_window=1) == [
        "x1",
        "x2",
        "x3",
    ]


def test_exploration_is_seeded_and_leaves_the_head_alone() -> None:
    queue = [f"q{i}" for i in range(10)]
    spare = [f"s{i}" for i in range(20)]
    a, chosen = explore(queue, spare, 0.5, seed=1, listener_id="u", version=3)
    b, _ = explore(queue, spare, 0.5, seed=1, listener_id="u", version=3)
    assert a == b and a[:2] == queue[:2] and chosen and chosen <= set(spare)
    assert explore(queue, spare, 0.0, 1, "u", 3) == (queue, set())


def test_a_track_known_only_by_audio_can_be_queued(tiny_model: ServingModel) -> None:
    catalog = Catalog.from_model(tiny_model)
    epoch = catalog.epoch
    q = np.ones(tiny_model.dims.query, dtype=np.float32)
    # find an audio embedding whose output vector scores highest for q among random candidates
    rng = np.random.default_rng(0)
    best, best_score = None, -np.inf
    for _ in range(200):
        emb = rng.normal(size=tiny_model.dims.audio_embedding).astype(np.float32)
        _, out = tiny_model.encode_tracks(
            np.zeros(1, np.int64), np.zeros(1, np.int64), emb[None], np.ones(1, np.float32)
        )
        if float(out[0] @ q) > best_score:
            best, best_score = emb, float(out[0] @ q)
    assert best_score > float((catalog.track_out @ q).max())
    row = catalog.upsert_audio_track(
        {"track_id": "new-song", "embedding": best.tolist(), "model_version": "m"}, tiny_model
    )
    assert row == 40 and catalog.epoch > epoch and catalog.audio_count == 1 and len(catalog) == 41
    settings = Settings().with_overrides(queue_length=5, exploration=0.0)
    selector = Selector(settings, catalog, tiny_model)
    state = ListenerState.new(tiny_model.h0)
    [result] = selector.update([ListenerUpdate("u", state, q)])
    assert state.queue[0] == "new-song" and result.changed and state.version == 1
    [again] = selector.update([ListenerUpdate("u", state, q)])
    assert not again.changed and state.version == 1  # same queue: no new version


def test_catalog_grows_past_its_capacity(tiny_model: ServingModel) -> None:
    catalog = Catalog(tiny_model.dims.track_in, tiny_model.dims.query, capacity=2)
    for i in range(5):
        emb = np.full(tiny_model.dims.audio_embedding, i, dtype=np.float32).tolist()
        catalog.upsert_audio_track(
            {"track_id": f"n{i}", "embedding": emb, "model_version": "m"}, tiny_model
        )
    assert len(catalog) == 5 and catalog.rows(["n4", "zz"]).tolist() == [4, -1]
    catalog.remove("n4")
    assert len(catalog) == 4 and not catalog.active[4]
