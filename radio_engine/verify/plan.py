"""What the crash verifier sends: many listeners' numbered events, some retried like a player.

Plain and seeded: the same arguments give the same events, so a failing run can be replayed.
Each event carries `event_id` "<listener>:<seq>"; a player's retry repeats an event (same id)
right after it, and must be applied once.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

#: the mix of events a listener sends (weights), close to a radio's: mostly plays
EVENT_MIX: dict[str, float] = {
    "play": 0.55,
    "complete": 0.2,
    "skip": 0.15,
    "like": 0.05,
    "dislike": 0.05,
}
T0 = 1_600_000_000.0


def plan_events(
    track_ids: list[str],
    listeners: int,
    per_listener: int,
    seed: int = 1,
    retry_share: float = 0.01,
) -> list[dict[str, Any]]:
    """Listen events of `listeners` listeners, `per_listener` each (plus retries), interleaved
    at random across listeners but in sequence within each one."""
    rng = random.Random(seed)
    kinds, weights = zip(*EVENT_MIX.items(), strict=True)
    turns = [i for i in range(listeners) for _ in range(per_listener)]
    rng.shuffle(turns)
    seq = [0] * listeners
    out: list[dict[str, Any]] = []
    for who in turns:
        seq[who] += 1
        lid = f"verify-{who:05d}"
        event = {
            "listener_id": lid,
            "track_id": rng.choice(track_ids),
            "event": rng.choices(kinds, weights)[0],
            "ts": T0 + seq[who] * 45.0 + rng.random(),
            "event_id": f"{lid}:{seq[who]}",
        }
        out.append(event)
        if rng.random() < retry_share:
            out.append(dict(event))  # the player did not see the ack and sent it again
    return out


def expected_counts(events: list[dict[str, Any]]) -> Counter[str]:
    """Events each listener must have applied: one per distinct event_id."""
    return Counter(lid for lid, _ in {(e["listener_id"], e["event_id"]) for e in events})
