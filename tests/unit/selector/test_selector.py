"""The selector: pool re-rank vs batched rescore vs top-up, versions, rules, new audio tracks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.model.transitions import save_transitions
from radio_engine.selector import selector as selector_module
from radio_engine.selector.blend import BlendWeights
from radio_engine.selector.scoring import top_k_naive
from radio_engine.selector.selector import ListenerUpdate, Selector
from radio_engine.settings import Settings

N, D = 2000, 8


def catalog(artists: list[str] | None = None, seed: int = 0) -> Catalog:
    rng = np.random.default_rng(seed)
    out = rng.normal(size=(N, D)).astype(np.float32)
    ids = [f"r{i}" for i in range(N)]
    return Catalog.from_arrays(
        ids, artists or [f"art{i}" for i in range(N)], out[:, :4].copy(), out, np.ones(N)
    )


def settings(**kw: object) -> Settings:
    # most tests rescore new listeners on the event path; the default defers it (refine)
    base = {
        "queue_length": 5,
        "pool_size": 30,
        "exploration": 0.0,
        "history_length": 50,
        "rescores_per_batch": 16,
    }
    return Settings().with_overrides(**{**base, **kw})


def listener() -> ListenerState:
    return ListenerState.new(np.zeros(4, np.float32))


def axis(i: int) -> np.ndarray:
    q = np.zeros(D, np.float32)
    q[i] = 1.0
    return q


def best_ids(c: Catalog, q: np.ndarray, k: int) -> list[str]:
    return [c.ids[r] for r in top_k_naive(q[None], c.track_out, k)[0]]


def test_a_new_listener_gets_the_catalog_top_and_a_first_version() -> None:
    c = catalog()
    sel = Selector(settings(), c)
    state = listener()
    [res] = sel.update([ListenerUpdate("u", state, axis(0))])
    assert res.rescored and res.changed and state.version == 1
    assert state.queue == best_ids(c, axis(0), 5) == res.queue
    pool = sel.pools.get("u")
    assert pool is not None and pool.rows.size == 30 and pool.catalog == c.instance
    np.testing.assert_allclose(
        [res.scores[t] for t in state.queue], c.track_out[c.rows(state.queue), 0], rtol=1e-6
    )


def test_a_plain_event_reranks_the_pool_and_strong_feedback_rescores() -> None:
    c = catalog()
    sel = Selector(settings(), c)
    state = listener()
    sel.update([ListenerUpdate("u", state, axis(0))])
    pool = [c.ids[r] for r in sel.pools.get("u").rows]  # type: ignore[union-attr]
    # a new query: a plain play re-ranks the old pool only
    [res] = sel.update([ListenerUpdate("u", state, axis(1))])
    assert not res.rescored and not res.topped_up
    by_new_q = sorted(pool, key=lambda t: -c.track_out[c.index[t], 1])[:5]
    assert state.queue == by_new_q
    assert state.queue != best_ids(c, axis(1), 5)  # the catalog's best for q2 lies elsewhere
    # strong feedback (a skip) rescores the whole catalog with the new query
    [res] = sel.update([ListenerUpdate("u", state, axis(1), strong_feedback=True)])
    assert res.rescored and state.queue == best_ids(c, axis(1), 5)


def test_a_thin_pool_rescores() -> None:
    c = catalog()
    sel = Selector(settings(), c)
    state = listener()
    sel.update([ListenerUpdate("u", state, axis(0))])
    pool_ids = [c.ids[r] for r in sel.pools.get("u").rows]  # type: ignore[union-attr]
    state.recent = pool_ids[:25]  # 5 usable left < 2 * queue_length
    [res] = sel.update([ListenerUpdate("u", state, axis(0))])
    assert res.rescored
    assert not set(state.queue) & set(state.recent)
    assert state.queue == [t for t in best_ids(c, axis(0), 40) if t not in state.recent][:5]


def test_a_listener_moved_from_another_worker_gets_a_pool_here() -> None:
    c = catalog()
    state = listener()
    Selector(settings(), c).update([ListenerUpdate("u", state, axis(0))])
    other = catalog()  # same tracks, another process: pools are never shared
    sel = Selector(settings(), other)
    [res] = sel.update([ListenerUpdate("u", state, axis(0))])
    assert res.rescored and sel.pools.get("u").catalog == other.instance  # type: ignore[union-attr]


def test_by_default_new_listeners_start_on_the_first_pool_and_refine_rescores_them() -> None:
    c = catalog()
    c.popularity[:] = np.arange(N)[::-1]
    sel = Selector(settings(rescores_per_batch=Settings().rescores_per_batch), c)
    assert Settings().rescores_per_batch == 0
    updates = [ListenerUpdate(f"u{i}", listener(), axis(i)) for i in range(3)]
    results = sel.update(updates)
    assert [r.first_pool for r in results] == [True] * 3 and not any(r.rescored for r in results)
    assert sel.pools.waiting_count == 3
    assert sel.refine(2) == 2  # the two waiting longest, with the queries they last had
    assert sel.pools.waiting_count == 1 and not sel.pools.get("u0").first  # type: ignore[union-attr]
    [res] = sel.update([updates[0]])
    assert not res.rescored and updates[0].state.queue == best_ids(c, axis(0), 5)
    assert sel.refine(5) == 1 and sel.refine(5) == 0


def test_past_the_rescore_budget_new_listeners_share_a_first_pool_then_get_their_own() -> None:
    c = catalog()
    c.popularity[:] = np.arange(N)[::-1]  # r0 is the most played
    sel = Selector(settings(rescores_per_batch=2), c)
    qs = [axis(i) for i in range(5)]
    updates = [ListenerUpdate(f"u{i}", listener(), q) for i, q in enumerate(qs)]
    results = sel.update(updates)
    assert [r.rescored for r in results] == [True, True, False, False, False]
    assert [r.first_pool for r in results] == [False, False, True, True, True]
    first = sel.pools.get("u2")
    assert first is not None and first.first
    assert [c.ids[r] for r in first.rows[:3]] == ["r0", "r1", "r2"]  # the most played
    assert set(updates[2].state.queue) <= {c.ids[r] for r in first.rows}
    # the next batch spends its budget on the waiting listeners, in order
    results = sel.update(updates[2:])
    assert [r.rescored for r in results] == [True, True, False]
    assert updates[2].state.queue == best_ids(c, qs[2], 5)
    [res] = sel.update(updates[4:])
    assert res.rescored and updates[4].state.queue == best_ids(c, qs[4], 5)


def test_new_tracks_top_up_the_pool_instead_of_a_rescore(tiny_model: ServingModel) -> None:
    c = Catalog.from_model(tiny_model)
    sel = Selector(settings(queue_length=3, pool_size=10, artist_window=1), c, tiny_model)
    state = ListenerState.new(tiny_model.h0)
    q = np.ones(tiny_model.dims.query, np.float32)
    [first] = sel.update([ListenerUpdate("u", state, q)])
    assert first.rescored
    # an audio track whose output vector beats every known track for q arrives
    emb = best_audio_for(tiny_model, q, c)
    c.upsert_audio_track(
        {"track_id": "new-song", "embedding": emb.tolist(), "model_version": "m"}, tiny_model
    )
    [res] = sel.update([ListenerUpdate("u", state, q)])
    assert res.topped_up and not res.rescored
    assert state.queue[0] == "new-song" and res.changed and state.version == 2
    assert sel.pools.get("u").epoch == c.epoch  # type: ignore[union-attr]
    # a weak newcomer does not enter the pool
    c.upsert_audio_track(
        {"track_id": "weak", "embedding": (-emb).tolist(), "model_version": "m"}, tiny_model
    )
    [res] = sel.update([ListenerUpdate("u", state, q)])
    assert res.topped_up and c.index["weak"] not in sel.pools.get("u").rows.tolist()  # type: ignore[union-attr]


def test_many_new_tracks_rescore(tiny_model: ServingModel) -> None:
    c = Catalog.from_model(tiny_model)
    sel = Selector(settings(queue_length=2, pool_size=3), c, tiny_model)
    state = ListenerState.new(tiny_model.h0)
    q = np.ones(tiny_model.dims.query, np.float32)
    sel.update([ListenerUpdate("u", state, q)])
    dim = tiny_model.dims.audio_embedding
    for i in range(4):  # more changes than pool_size
        c.upsert_audio_track(
            {"track_id": f"n{i}", "embedding": [float(i)] * dim, "model_version": "m"}, tiny_model
        )
    [res] = sel.update([ListenerUpdate("u", state, q)])
    assert res.rescored and not res.topped_up


def best_audio_for(model: ServingModel, q: np.ndarray, c: Catalog) -> np.ndarray:
    """An audio embedding whose encoded output vector outscores the whole catalog for q."""
    rng = np.random.default_rng(0)
    embs = rng.normal(size=(400, model.dims.audio_embedding)).astype(np.float32) * 3
    n = len(embs)
    _, out = model.encode_tracks(
        np.zeros(n, np.int64), np.zeros(n, np.int64), embs, np.ones(n, np.float32)
    )
    best = int(np.argmax(out @ q))
    assert float(out[best] @ q) > float((c.track_out @ q).max())
    return embs[best]


def test_a_track_known_only_by_audio_is_queued_for_a_new_listener(
    tiny_model: ServingModel,
) -> None:
    c = Catalog.from_model(tiny_model)
    q = np.ones(tiny_model.dims.query, np.float32)
    emb = best_audio_for(tiny_model, q, c)
    c.upsert_audio_track(
        {"track_id": "only-audio", "embedding": emb.tolist(), "model_version": "m"}, tiny_model
    )
    state = ListenerState.new(tiny_model.h0)
    Selector(settings(), c, tiny_model).update([ListenerUpdate("u", state, q)])
    assert state.queue[0] == "only-audio"


def test_the_version_only_grows_and_only_on_change() -> None:
    c = catalog()
    sel = Selector(settings(), c)
    state = listener()
    rng = np.random.default_rng(3)
    changes = 0
    for step in range(30):
        q = axis(0) if step % 3 else rng.normal(size=D).astype(np.float32)
        before = (state.version, list(state.queue))
        [res] = sel.update([ListenerUpdate("u", state, q, strong_feedback=step % 7 == 0)])
        assert state.version == before[0] + int(res.changed)
        assert res.changed == (state.queue != before[1])
        changes += res.changed
    assert state.version == changes and 1 < changes < 30  # some repeats were not new versions


def test_dislikes_are_never_queued_and_skips_go_last() -> None:
    c = catalog()
    sel = Selector(settings(pool_size=8, queue_length=5), c)
    state = listener()
    sel.update([ListenerUpdate("u", state, axis(2))])
    top = best_ids(c, axis(2), 8)
    state.disliked = [top[0]]
    state.skipped = [top[1]]
    sel.update([ListenerUpdate("u", state, axis(2))])
    assert top[0] not in state.queue and top[1] not in state.queue
    assert state.queue == top[2:7]
    # a skip given in this batch only counts too, and a skipped track is still a candidate
    state.skipped, state.disliked = [], []
    sel.update([ListenerUpdate("u", state, axis(2), skipped={top[0], top[1]})])
    assert state.queue == top[2:7]


def test_rescores_are_batched_across_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    c = catalog()
    calls: list[int] = []
    real = selector_module.top_k_rows

    def counting(queries: np.ndarray, *args: object, **kw: object) -> np.ndarray:
        calls.append(len(queries))
        return real(queries, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(selector_module, "top_k_rows", counting)
    sel = Selector(settings(), c)
    rng = np.random.default_rng(9)
    qs = rng.normal(size=(6, D)).astype(np.float32)
    states = [listener() for _ in range(6)]
    sel.update(
        [ListenerUpdate(f"u{i}", s, q) for i, (s, q) in enumerate(zip(states, qs, strict=True))]
    )
    assert calls == [6]  # one blocked top-k for all six new listeners
    for s, q in zip(states, qs, strict=True):
        assert s.queue == best_ids(c, q, 5)
    # next batch: two strong feedbacks rescore together, the others re-rank
    updates = [
        ListenerUpdate(f"u{i}", s, q, strong_feedback=i in (1, 4))
        for i, (s, q) in enumerate(zip(states, qs, strict=True))
    ]
    results = sel.update(updates)
    assert calls == [6, 2] and [r.rescored for r in results] == [i in (1, 4) for i in range(6)]


def test_artist_separation_and_exploration_in_the_served_queue() -> None:
    artists = [f"art{i % 5}" for i in range(N)]  # five artists only
    c = catalog(artists)
    cfg = settings(queue_length=8, artist_window=3, artist_max=1, exploration=0.5)
    sel = Selector(cfg, c)
    states = [listener() for _ in range(10)]
    for s in states:
        s.recent, s.recent_artists = ["r1"], ["art1"]
    updates = [ListenerUpdate(f"u{i}", s, axis(0)) for i, s in enumerate(states)]
    results = sel.update(updates)
    for s, res in zip(states, results, strict=True):
        seq = ["art1", *(c.artist_of(t) for t in s.queue)]
        assert len(s.queue) == 8
        assert all(len(set(seq[i : i + 3])) == len(seq[i : i + 3]) for i in range(len(seq)))
        assert res.explored <= set(s.queue[2:])
    assert sum(len(r.explored) for r in results) >= 5
    # the same listener, version and query: the same draw
    again = ListenerState(h=states[3].h, recent=["r1"], recent_artists=["art1"])
    [res2] = Selector(cfg, c).update([ListenerUpdate("u3", again, axis(0))])
    assert again.queue == states[3].queue and res2.explored == results[3].explored


def test_the_served_score_is_the_blend() -> None:
    c = catalog([f"art{i % 50}" for i in range(N)])
    sel = Selector(settings(), c)
    state = listener()
    state.recent, state.recent_artists, state.session_len = ["r7"], ["art7"], 1
    rows = np.arange(100)
    gru_only = sel.score(state, axis(0), rows)
    np.testing.assert_allclose(gru_only, c.track_out[rows, 0], rtol=1e-6)
    sel.weights = BlendWeights(
        gru=1.0, rules=0.0, last_artist=5.0, session_artist=0.0, in_session=0.0, popularity=0.0
    )
    blended = sel.score(state, axis(0), rows)
    bonus = blended - gru_only
    same = np.array([c.artists[r] == "art7" for r in rows])
    np.testing.assert_allclose(bonus[same], 5.0, rtol=1e-5)
    np.testing.assert_allclose(bonus[~same], 0.0, atol=1e-6)


def test_an_empty_catalog_gives_an_empty_queue_and_no_version() -> None:
    empty = Catalog.from_arrays([], [], np.zeros((0, 4), np.float32), np.zeros((0, D), np.float32))
    state = listener()
    [res] = Selector(settings(), empty).update([ListenerUpdate("u", state, axis(0))])
    assert res.queue == [] and not res.changed and state.version == 0
    assert Selector(settings(), empty).update([]) == []


def test_exploration_alone_never_makes_a_new_version() -> None:
    c = catalog([f"art{i % 7}" for i in range(N)])
    sel = Selector(settings(queue_length=8, exploration=0.5), c)
    state = listener()
    state.events = 4
    [first] = sel.update([ListenerUpdate("u", state, axis(1))])
    assert first.changed and first.explored and state.version == 1
    for _ in range(3):  # the same state and query again: the same draw, no new version
        [res] = sel.update([ListenerUpdate("u", state, axis(1))])
        assert not res.changed and res.explored == first.explored and state.version == 1
    state.events += 1  # the next event draws anew
    [res] = sel.update([ListenerUpdate("u", state, axis(1))])
    assert res.explored != first.explored and res.changed and state.version == 2


def test_the_blend_counts_tracks_and_artists_of_the_session() -> None:
    c = catalog([f"art{i % 50}" for i in range(N)])
    sel = Selector(settings(), c)
    sel.weights = BlendWeights(
        gru=0.0, rules=0.0, last_artist=0.0, session_artist=2.0, in_session=3.0, popularity=0.0
    )
    state = listener()
    # three plays; the session is the last two (r1 by art1, r60 by art10)
    state.recent, state.recent_artists, state.session_len = (
        ["r0", "r1", "r60"],
        [
            "art0",
            "art1",
            "art10",
        ],
        2,
    )
    rows = np.array([0, 1, 60, 51, 10, 2])
    got = sel.score(state, axis(0), rows)
    # r0: nothing (out of session); r1, r60: in session + their artist; r51 (art1), r10 (art10):
    # artist only; r2 (art2): nothing
    np.testing.assert_allclose(got, [0.0, 5.0, 5.0, 2.0, 2.0, 0.0])


def test_a_models_sr_table_and_blend_reach_the_pool_and_the_score(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    save_transitions(model_dir, sp.csr_matrix(([5.0, 1.0], ([3, 3], [17, 25])), shape=(40, 40)))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["feature_spec"]["blend"] = {
        "gru": 0.0,
        "rules": 1.0,
        "last_artist": 0.0,
        "session_artist": 0.0,
        "in_session": 0.0,
        "popularity": 0.0,
    }
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    model = ServingModel(model_dir)
    c = Catalog.from_model(model)
    sel = Selector(settings(queue_length=2, pool_size=3, artist_window=1), c, model)
    assert sel.weights_source == "manifest" and sel.transitions is not None
    state = ListenerState.new(model.h0)
    state.recent, state.recent_artists, state.session_len = ["t3"], ["a3"], 1
    np.testing.assert_allclose(
        sel.score(state, np.zeros(model.dims.query, np.float32), np.array([17, 25, 5])),
        [np.log1p(5.0), np.log1p(1.0), 0.0],
        rtol=1e-6,
    )
    # the rescored pool holds the SR successors even though the GRU would not pick them
    [res] = sel.update([ListenerUpdate("u", state, np.zeros(model.dims.query, np.float32))])
    assert res.rescored and {17, 25} <= set(sel.pools.get("u").rows.tolist())  # type: ignore[union-attr]
    assert state.queue == ["t17", "t25"]
