"""/listeners/<id>: the whole listener state as JSON, exact enough for an offline replay check."""

from __future__ import annotations

import json

import numpy as np

from radio_engine.listeners.state import ListenerState
from radio_engine.worker.web import state_view


def test_the_state_view_holds_every_field_and_the_exact_hidden_state() -> None:
    h = np.array([0.1, -2.5e-8, 3.0, 1 / 3], dtype=np.float32)
    state = ListenerState(
        h=h,
        version=7,
        last_offset=41,
        last_ts=1_400_000_123.5,
        events=12,
        session_len=3,
        recent=["t1", "t2", "t3"],
        recent_artists=["a1", "a2", "a3"],
        disliked=["t9"],
        skipped=["t2"],
        queue=["q1", "q2"],
        event_ids=np.array([5, 6, 7], dtype=np.uint64),
    )
    # through bytes as the table holds it, and through JSON as the page sends it
    view = json.loads(
        json.dumps(state_view("40265", ListenerState.from_bytes(state.to_bytes()), "m1"))
    )
    assert view["listener_id"] == "40265" and view["model_version"] == "m1"
    assert (view["events"], view["last_offset"], view["last_ts"]) == (12, 41, 1_400_000_123.5)
    assert (view["version"], view["queue"], view["session_len"]) == (7, ["q1", "q2"], 3)
    assert view["recent"] == ["t1", "t2", "t3"] and view["recent_artists"] == ["a1", "a2", "a3"]
    assert (view["skipped"], view["disliked"]) == (["t2"], ["t9"])
    assert view["event_ids_kept"] == 3 and "event_ids" not in view
    assert view["hidden_size"] == 4
    assert np.array_equal(np.array(view["h"], dtype=np.float32), h)
