"""The crash verifier's verdict: plain functions over what was sent and what Kafka holds.

Per listener: events applied == events sent (one per event_id: none lost, none doubled), the
hidden state equals an offline replay of the same events through the same model (allclose),
the history equals the replay's, queue versions never go back, and the last queue published
is the state's (version and tracks) and follows the listener's last event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.listens.decode import InMessage
from radio_engine.listens.pipeline import ListenPipeline
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.selector import Selector
from radio_engine.settings import Settings

#: how close the worker's hidden state must be to the offline replay's (float32 GRU steps in
#: batches of different sizes round differently)
H_ATOL = 1e-4
REPLAY_BATCH = 512


def offline_replay(
    settings: Settings, model: ServingModel, events: Iterable[dict[str, Any]]
) -> dict[str, ListenerState]:
    """Every listener's state after its events, in order, through the worker's own pipeline."""
    catalog = Catalog.from_model(model)
    pipeline = ListenPipeline(settings, model, catalog, Selector(settings, catalog, model))
    store: dict[bytes, bytes] = {}
    batch: list[InMessage] = []

    def flush() -> None:
        out = pipeline.process(batch, store.get)
        store.update({key: value for key, (_, value) in out.states.items()})
        batch.clear()

    for offset, event in enumerate(events):
        key = event["listener_id"].encode()
        batch.append(InMessage(key, orjson.dumps(event), 0, offset, 0.0))
        if len(batch) >= REPLAY_BATCH:
            flush()
    if batch:
        flush()
    return {key.decode(): ListenerState.from_bytes(raw) for key, raw in store.items()}


@dataclass
class Verdict:
    """What the checks found: per-check mismatch counts and the first few examples."""

    listeners: int = 0
    checked: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def fail(self, check: str, listener: str, detail: str) -> None:
        self.mismatches[check] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{check}: {listener}: {detail}")

    @property
    def ok(self) -> bool:
        return self.checked == self.listeners and not self.mismatches


def check_listeners(
    sent: list[dict[str, Any]],
    states: dict[str, ListenerState],
    queues: dict[str, list[dict[str, Any]]],
    replay: dict[str, ListenerState],
) -> Verdict:
    """Compare, listener by listener, what Kafka holds with what was sent and replayed."""
    expected = Counter(lid for lid, _ in {(e["listener_id"], e["event_id"]) for e in sent})
    last_event = {e["listener_id"]: e for e in sent}
    verdict = Verdict(listeners=len(expected))
    for lid, n in sorted(expected.items()):
        state = states.get(lid)
        if state is None:
            verdict.fail("no state", lid, "nothing on the changelog")
            continue
        verdict.checked += 1
        if state.events != n:
            kind = "lost" if state.events < n else "doubled"
            verdict.fail(kind, lid, f"applied {state.events}, sent {n}")
        ref = replay[lid]
        if state.h.shape != ref.h.shape or not np.allclose(state.h, ref.h, atol=H_ATOL, rtol=0):
            gap = float(np.max(np.abs(state.h - ref.h))) if state.h.shape == ref.h.shape else -1
            verdict.fail("state != replay", lid, f"max |h - replay h| = {gap:.2e}")
        if state.recent != ref.recent or state.artist_marks != ref.artist_marks:
            verdict.fail("history != replay", lid, "recent tracks or artist marks differ")
        if state.last_ts != last_event[lid]["ts"]:
            verdict.fail("last event", lid, f"state at ts {state.last_ts}, last sent later")
        mine = queues.get(lid, [])
        versions = [q["version"] for q in mine]
        if versions != sorted(versions):
            verdict.fail("version went back", lid, f"versions {versions[-6:]}")
        if not mine:
            verdict.fail("no queue", lid, "nothing published")
            continue
        last = mine[-1]
        tracks = [t["track_id"] for t in last["tracks"]]
        if last["version"] != state.version or tracks != state.queue:
            verdict.fail(
                "stale queue", lid, f"published v{last['version']}, state v{state.version}"
            )
    return verdict
