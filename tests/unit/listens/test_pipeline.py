"""A micro-batch through the plain-function processor: ordering, duplicates, dead letters, queues."""

from __future__ import annotations

import orjson
import pytest

from radio_engine import schemas
from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.listens.decode import InMessage
from radio_engine.listens.pipeline import ListenPipeline
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.selector import Selector
from radio_engine.settings import Settings


def processor(model: ServingModel, **overrides: object) -> ListenPipeline:
    settings = Settings().with_overrides(queue_length=5, exploration=0.0, **overrides)
    catalog = Catalog.from_model(model)
    return ListenPipeline(settings, model, catalog, Selector(settings, catalog, model))


def msg(
    listener: str,
    track: str,
    offset: int,
    event: str = "play",
    ts: float | None = None,
    partition: int = 0,
) -> InMessage:
    body = {
        "listener_id": listener,
        "track_id": track,
        "event": event,
        "ts": ts or 1_400_000_000 + offset * 60,
    }
    return InMessage(listener.encode(), orjson.dumps(body), partition, offset, 1_700_000_000.0)


def test_a_batch_updates_state_and_publishes_valid_queues(tiny_model: ServingModel) -> None:
    store: dict[bytes, bytes] = {}
    out = processor(tiny_model).process(
        [msg("u1", "t1", 0), msg("u2", "t2", 1), msg("u1", "t3", 2)], store.get
    )
    assert set(out.states) == {b"u1", b"u2"}
    u1 = ListenerState.from_bytes(out.states[b"u1"][1])
    assert u1.recent == ["t1", "t3"] and u1.events == 2 and u1.last_offset == 2
    assert not np_equal(u1.h, tiny_model.h0)
    queues = {q.key: schemas.decode("queue", q.value) for q in out.queues}
    assert {q.key: q.partition for q in out.queues} == {b"u1": 0, b"u2": 0}
    assert set(queues) == {b"u1", b"u2"}
    assert len(queues[b"u1"]["tracks"]) == 5
    assert not {"t1", "t3"} & {t["track_id"] for t in queues[b"u1"]["tracks"]}
    assert queues[b"u1"]["after_event"]["offset"] == 2 and queues[b"u1"]["version"] == 1
    assert out.counts[("play", "applied")] == 3


def np_equal(a: object, b: object) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b))


def test_batching_never_reorders_a_listener(tiny_model: ServingModel) -> None:
    """Interleaved with other listeners in one batch == one event per batch."""
    events = [
        msg("a", "t1", 0),
        msg("b", "t5", 1),
        msg("a", "t2", 2),
        msg("c", "t9", 3),
        msg("a", "t3", 4),
        msg("b", "t6", 5),
    ]
    one_batch: dict[bytes, bytes] = {}
    out = processor(tiny_model).process(events, one_batch.get)
    one_batch.update({k: v for k, (_, v) in out.states.items()})
    single: dict[bytes, bytes] = {}
    p = processor(tiny_model)
    for e in events:
        res = p.process([e], single.get)
        single.update({k: v for k, (_, v) in res.states.items()})
    for key in (b"a", b"b", b"c"):
        x, y = ListenerState.from_bytes(one_batch[key]), ListenerState.from_bytes(single[key])
        assert x.recent == y.recent
        assert abs(x.h - y.h).max() < 1e-5


def test_a_redelivered_batch_changes_no_state_and_republishes_the_same_queue(
    tiny_model: ServingModel,
) -> None:
    """The worker died after writing the batch's state, maybe before its queue reached Kafka:
    the redelivery applies nothing and publishes the queue again, same version and scores."""
    store: dict[bytes, bytes] = {}
    p = processor(tiny_model)
    batch = [msg("u1", "t1", 10), msg("u1", "t2", 11)]
    first = p.process(batch, store.get)
    store.update({k: v for k, (_, v) in first.states.items()})
    again = p.process(batch, store.get)
    assert again.counts[("play", "duplicate")] == 2 and not again.states
    [published] = [schemas.decode("queue", q.value) for q in first.queues]
    [repeat] = [schemas.decode("queue", q.value) for q in again.queues]
    assert repeat["republished"] is True and again.queues[0].partition == 0
    assert repeat["version"] == published["version"] == 1
    assert [(t["track_id"], t["score"]) for t in repeat["tracks"]] == [
        (t["track_id"], t["score"]) for t in published["tracks"]
    ]
    state = ListenerState.from_bytes(store[b"u1"])
    assert state.events == 2 and state.version == 1


def test_a_retried_event_is_counted_as_a_duplicate_and_changes_no_state(
    tiny_model: ServingModel,
) -> None:
    store: dict[bytes, bytes] = {}
    p = processor(tiny_model)
    body = {"listener_id": "u1", "track_id": "t1", "event": "play", "ts": 1.4e9, "event_id": "x"}
    sent = InMessage(b"u1", orjson.dumps(body), 0, 5, 1_700_000_000.0)
    out = p.process([sent], store.get)
    store.update({k: v for k, (_, v) in out.states.items()})
    before = store[b"u1"]
    retry = sent._replace(offset=6)  # the player sent it again: a new record, the same id
    out = p.process([retry], store.get)
    assert out.counts[("play", "duplicate")] == 1 and not out.states
    assert store[b"u1"] == before and ListenerState.from_bytes(before).events == 1
    # the retry answers with the queue the player may have missed, same version
    [repeat] = [schemas.decode("queue", q.value) for q in out.queues]
    assert repeat["version"] == ListenerState.from_bytes(before).version


def test_bad_messages_become_dead_letters_and_the_rest_flows(tiny_model: ServingModel) -> None:
    bad_json = InMessage(b"u9", b"{", 0, 7, 0.0)
    wrong_key = InMessage(
        b"other",
        orjson.dumps({"listener_id": "u8", "track_id": "t1", "event": "play", "ts": 1}),
        0,
        8,
        0.0,
    )
    out = processor(tiny_model).process(
        [bad_json, msg("u1", "t1", 9), wrong_key, InMessage(b"u7", None, 0, 10, 0.0)], {}.get
    )
    reasons = [reason for _, _, reason in out.dead_letters]
    assert reasons == ["bad_json", "key_mismatch", "schema"]
    letter = schemas.decode("dead_letter", out.dead_letters[0][1])
    assert letter["offset"] == 7 and letter["value_b64"] == "ew=="
    assert set(out.states) == {b"u1"}


def test_dislike_is_never_queued_again_and_unknown_tracks_are_counted(
    tiny_model: ServingModel,
) -> None:
    store: dict[bytes, bytes] = {}
    p = processor(tiny_model, history_length=2)
    out = p.process([msg("u1", "t1", 0)], store.get)
    store.update({k: v for k, (_, v) in out.states.items()})
    first_queue = ListenerState.from_bytes(store[b"u1"]).queue
    target = first_queue[0]
    events = [
        msg("u1", target, 1, event="dislike"),
        msg("u1", "never-heard-of", 2),
        msg("u1", "t2", 3),
        msg("u1", "t3", 4),
    ]
    out = p.process(events, store.get)
    state = ListenerState.from_bytes(out.states[b"u1"][1])
    assert target in state.disliked and target not in state.recent  # fell out of the history...
    assert target not in state.queue  # ...but a dislike is for good
    assert out.unknown_tracks == 1


@pytest.mark.parametrize("feedback", ["skip", "like", "dislike"])
def test_strong_feedback_rescores_the_catalog(tiny_model: ServingModel, feedback: str) -> None:
    store: dict[bytes, bytes] = {}
    p = processor(tiny_model)
    out = p.process([msg("u1", "t1", 0)], store.get)
    assert out.first_pools == 1 and out.rescored == 0  # a new listener: the shared first pool
    assert p.selector.refine(10) == 1  # its own pool comes off the event path
    store.update({k: v for k, (_, v) in out.states.items()})
    out = p.process([msg("u1", "t2", 1)], store.get)
    assert out.rescored == 0  # a plain play re-ranks the pool only
    store.update({k: v for k, (_, v) in out.states.items()})
    out = p.process([msg("u1", "t3", 2, event=feedback)], store.get)
    assert out.rescored == 1


def test_a_failing_batch_is_kept_as_dead_letters(tiny_model: ServingModel) -> None:
    batch = [msg("u1", "t1", 5), msg("u2", "t2", 6)]
    out = processor(tiny_model).refuse_all(batch, "internal")
    letters = [schemas.decode("dead_letter", value) for _, value, _ in out.dead_letters]
    assert [(d["reason"], d["offset"]) for d in letters] == [("internal", 5), ("internal", 6)]
    assert not out.states and not out.queues
