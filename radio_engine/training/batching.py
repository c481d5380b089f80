"""Session-parallel mini-batches (GRU4Rec): each of B slots walks one listener's whole history.

A slot takes the next listener (in one seeded shuffled order) when its listener runs out, so a
step holds B listeners' events side by side; the state of a slot resets to h0 only when its
listener changes (the `reset` flags), never between one listener's sessions.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import numpy as np


def session_parallel(
    users: list[np.ndarray], batch: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows [B], targets [B], reset [B]) steps: each slot walks one listener's events.

    rows[i] is slot i's input event and targets[i] the next event of the same listener; -1 marks
    an idle slot. reset[i] is True exactly when slot i starts a new listener.
    """
    rng = np.random.default_rng(seed)
    queue = [u for u in (users[i] for i in rng.permutation(len(users))) if len(u) >= 2]
    slots: list[np.ndarray | None] = [None] * batch
    pos = np.zeros(batch, dtype=np.int64)
    nxt = 0
    while True:
        reset = np.zeros(batch, dtype=bool)
        for i in range(batch):
            if slots[i] is None or pos[i] + 1 >= len(slots[i]):  # type: ignore[arg-type]
                if nxt < len(queue):
                    slots[i], pos[i], reset[i] = queue[nxt], 0, True
                    nxt += 1
                else:
                    slots[i] = None
        if all(s is None for s in slots):
            return
        rows = np.array([s[pos[i]] if s is not None else -1 for i, s in enumerate(slots)])
        targets = np.array([s[pos[i] + 1] if s is not None else -1 for i, s in enumerate(slots)])
        yield rows, targets, reset
        pos += 1


def session_parallel_steps(users: list[np.ndarray], batch: int, seed: int) -> int:
    """How many steps session_parallel(users, batch, seed) yields, without walking the events.

    Each listener fills the first free slot for len - 1 steps, in the same shuffled order, so
    the count is when the last slot frees (a progress total that ends at 100 %)."""
    rng = np.random.default_rng(seed)
    free = [0] * batch
    for i in rng.permutation(len(users)):
        if len(users[i]) >= 2:
            heapq.heappush(free, heapq.heappop(free) + len(users[i]) - 1)
    return max(free)
