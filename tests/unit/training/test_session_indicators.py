"""One set of session indicators: serving, training and evaluation compute the same ones.

The same listener's events (two sessions, with skips, a like and a dislike) go through each
side's own path: the worker's plain pipeline and selector (listener state, served scores), the
training slots' memory (session_memory, fed as the training loop feeds it), and evaluation's
session prefixes (pairs). After every event the three indicators of every catalog track must
agree, and they must say what the shared definition says: accepted events only, the session's
own, the last accepted artist even from an earlier session.
"""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.model.session_indicators import INDICATORS, session_indicators
from radio_engine.selector.blend import BlendWeights
from radio_engine.training.data import Events
from radio_engine.training.encoding import NEW_SESSION, Vocab, encode
from radio_engine.training.pairs import EvalCatalog, Pairs, SessionLog
from radio_engine.training.session_memory import SessionMemory
from tests.unit.selector.test_feedback_queue import T0, Radio

TRACKS = [f"t{i}" for i in range(40)]  # the tiny model's catalog: track i by artist a{i % 8}
#: (track, event, seconds after T0): two sessions two hours apart
EVENTS = [
    ("t1", "play", 60),
    ("t2", "complete", 120),
    ("t10", "skip", 180),  # a2 again, skipped
    ("t3", "like", 240),
    ("t12", "skip", 7440),  # a new session that starts with a skip (a4)
    ("t5", "dislike", 7500),
    ("t6", "play", 7560),
    ("t14", "skip", 7620),  # a6 again, skipped
]


def artist(track: str) -> str:
    return f"a{int(track[1:]) % 8}"


def listener_events(tail: bool = False) -> Events:
    """The listener's events; with `tail`, one more event closing each session (evaluation
    makes a pair, and so a prefix, only before a target), a skip, so that it carries nothing
    into the next session."""
    rows = [(t, e, s, "s1" if s < 3600 else "s2") for t, e, s in EVENTS]
    if tail:
        rows.insert(4, ("t39", "skip", 300, "s1"))
        rows.append(("t39", "skip", 7680, "s2"))
    return Events(
        fold=np.zeros(len(rows), np.int64),
        user_id=np.array(["u"] * len(rows)),
        session_id=np.array([r[3] for r in rows]),
        track_id=np.array([r[0] for r in rows]),
        artist_id=np.array([artist(r[0]) for r in rows]),
        ts=np.array([T0 + r[2] for r in rows], np.float64),
        event=np.array([r[1] for r in rows]),
    )


def as_sets(indicators: np.ndarray, names: list[str]) -> list[dict[str, set[str]]]:
    """[events, candidates, 3] indicators as, per event, {indicator: tracks where it is on}."""
    return [
        {name: {names[c] for c in np.flatnonzero(step[:, i])} for i, name in enumerate(INDICATORS)}
        for step in indicators
    ]


def served(model: ServingModel) -> list[dict[str, set[str]]]:
    """The worker's indicators after each event: the selector's served score of every catalog
    track with one indicator weighted 1 and everything else 0 (likes add nothing here)."""
    radio = Radio(model, like_artist_boost=0.0, like_similar_boost=0.0)
    rows = np.arange(len(TRACKS))
    q = np.zeros(model.dims.query, np.float32)
    out = []
    for track, event, at in EVENTS:
        radio.send(track, event, at_s=at)
        state = ListenerState.from_bytes(radio.store[b"u"])
        per_event = np.zeros((len(TRACKS), 3))
        for i, name in enumerate(INDICATORS):
            radio.selector.weights = BlendWeights(
                gru=0.0,
                rules=0.0,
                popularity=0.0,
                **{n: float(n == name) for n in INDICATORS},
            )
            per_event[:, i] = radio.selector.score(state, q, rows)
        out.append(per_event)
    return as_sets(np.stack(out), TRACKS)


def trained() -> list[dict[str, set[str]]]:
    """Training's indicators after each event: one slot's memory, fed as the loop feeds it."""
    events = listener_events()
    everything = Events.concat(
        [
            events,
            Events(
                fold=np.zeros(40, np.int64),
                user_id=np.array(["other"] * 40),
                session_id=np.array(["x"] * 40),
                track_id=np.array(TRACKS),
                artist_id=np.array([artist(t) for t in TRACKS]),
                ts=np.arange(40.0),
                event=np.array(["play"] * 40),
            ),
        ]
    )
    vocab = Vocab.build(everything)
    data = encode(events, vocab)
    memory = SessionMemory(slots=1)
    candidates = np.arange(1, len(vocab.track_ids) + 1)
    out = []
    for row in data.users[0]:
        first = np.array([row == data.users[0][0]])
        new_session = first | (data.context[[row], NEW_SESSION] > 0)
        memory.observe(
            data.ids[[row]], data.artists[[row]], data.accepted[[row]], new_session, first
        )
        out.append(memory.indicators(candidates, vocab.artist_of_track[candidates])[0])
    return as_sets(np.stack(out), vocab.track_ids)


def evaluated(model: ServingModel) -> list[dict[str, set[str]]]:
    """Evaluation's indicators after each event: the prefix before the next target."""
    events = listener_events(tail=True)
    catalog = EvalCatalog.build(model.tracks.track_ids, model.tracks.artist_ids, events)
    pairs = Pairs.from_log(SessionLog.from_events(events, catalog))
    context = pairs.prefixes(np.arange(pairs.size)).session_context()
    stacked = session_indicators(context, np.arange(catalog.size), catalog.artist_codes).stacked()
    return as_sets(stacked, catalog.track_ids.tolist())


@pytest.fixture(scope="module")
def sides(tiny_model_dir) -> dict[str, list[dict[str, set[str]]]]:
    model = ServingModel(tiny_model_dir)
    return {"serving": served(model), "training": trained(), "evaluation": evaluated(model)}


def test_serving_training_and_evaluation_compute_the_same_indicators(sides) -> None:
    assert len(sides["serving"]) == len(EVENTS)
    assert sides["training"] == sides["serving"]
    assert sides["evaluation"] == sides["serving"]


def of_artists(*artists: int) -> set[str]:
    return {t for t in TRACKS if int(t[1:]) % 8 in artists}


def test_the_indicators_follow_accepted_events_of_the_session(sides) -> None:
    s = sides["serving"]
    # after t1 (play), t2 (complete): both tracks, their artists, the last one a2
    assert s[1] == {
        "last_artist": of_artists(2),
        "session_artist": of_artists(1, 2),
        "in_session": {"t1", "t2"},
    }
    assert s[2] == s[1]  # the skip of t10 changes nothing
    assert s[3]["last_artist"] == of_artists(3) and s[3]["in_session"] == {"t1", "t2", "t3"}
    # a new session that starts with a skip and a dislike: no session lists, but the radio
    # still follows t3, the last track the listener accepted (in the earlier session)
    assert s[4] == {"last_artist": of_artists(3), "session_artist": set(), "in_session": set()}
    assert s[5] == s[4]
    assert s[6] == {
        "last_artist": of_artists(6),
        "session_artist": of_artists(6),
        "in_session": {"t6"},
    }
    assert s[7] == s[6]  # t14 skipped
