"""Candidate pools: the catalog rows each listener's queue is re-ranked from, cached per worker.

A pool is a cache, not listener state: its rows mean something only to the catalog instance
that made them, so it is never written to the changelog. After a restart or a rebalance a
listener simply has no pool here and gets a new one (see selector.Selector.update). Listeners
on the shared first pool wait, in arrival order, for a whole-catalog rescore off the event
path (Selector.refine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pool:
    """One listener's candidate rows, valid for catalog `catalog` as of `epoch`.

    `first`: a shared first pool (popular tracks plus the session's candidates `session`),
    not yet scored against this listener's own query over the whole catalog; `query` is the
    listener's latest query, for that rescore.
    """

    rows: np.ndarray
    catalog: int
    epoch: int
    first: bool = False
    query: np.ndarray | None = None
    session: np.ndarray | None = None


class PoolCache:
    """Pools of the listeners this worker serves, at most `capacity` (least recently used go)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._pools: dict[str, Pool] = {}
        self._waiting: dict[str, None] = {}  # listeners on a first pool, oldest first

    def __len__(self) -> int:
        return len(self._pools)

    def get(self, listener_id: str) -> Pool | None:
        """The listener's pool, or None."""
        return self._pools.get(listener_id)

    def put(self, listener_id: str, pool: Pool) -> None:
        """Store (or refresh) a listener's pool; the least recently stored goes when full."""
        self._pools.pop(listener_id, None)
        self._pools[listener_id] = pool
        if pool.first:
            self._waiting.setdefault(listener_id)
        else:
            self._waiting.pop(listener_id, None)
        if len(self._pools) > self.capacity:
            self.drop(next(iter(self._pools)))

    def drop(self, listener_id: str) -> None:
        """Forget a listener's pool (it is rebuilt on its next event)."""
        self._pools.pop(listener_id, None)
        self._waiting.pop(listener_id, None)

    def waiting(self, limit: int) -> list[tuple[str, Pool]]:
        """Up to `limit` listeners on a first pool, those waiting longest first."""
        out = []
        for listener_id in self._waiting:
            if len(out) >= limit:
                break
            out.append((listener_id, self._pools[listener_id]))
        return out

    @property
    def waiting_count(self) -> int:
        """Listeners on a first pool."""
        return len(self._waiting)
