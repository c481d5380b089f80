"""From scored candidates to the queues listeners get, and when a queue counts as new.

Plain functions over a batch of listeners' catalog rows: rank the candidates, run the rules,
and commit each queue to its listener's state, bumping the version only when the tracks
actually changed (a player keeps the highest version it has seen, so the version must never
move for nothing).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from radio_engine.listeners.state import ListenerState
from radio_engine.selector.rules import (
    DEFAULT_RULES,
    KEPT,
    NONE,
    Drafts,
    Rule,
    RuleContext,
    apply_rules,
    demotion,
    member,
)


def rank(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidates [B, P] best first (ties keep the pool order, -1 padding last), with the
    permutation applied."""
    key = np.where(rows >= 0, -np.asarray(scores, dtype=np.float32), np.float32(np.inf))
    key += np.float32(0.0)  # -0.0 becomes 0.0: equal scores must tie
    bits = key.view(np.int32)
    # float32 -> int32 of the same order (flip the magnitude bits of negatives), then the
    # position in the low 32 bits: unique keys, so the fast unstable sort keeps pool order
    ordered = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) << 32
    ordered |= np.arange(rows.shape[1], dtype=np.int64)
    order = np.argsort(ordered, axis=1)
    return np.take_along_axis(rows, order, axis=1), order


def build_queue(
    ranked: np.ndarray, ctx: RuleContext, rules: Sequence[Rule] = DEFAULT_RULES
) -> Drafts:
    """Run the rules over ranked candidates [B, P]; each draft's queue is what its listener
    gets."""
    return apply_rules(Drafts.start(ranked), ctx, rules)


def usable(pools: np.ndarray, ctx: RuleContext) -> np.ndarray:
    """Per listener, the candidates of its pool (unique rows, -1 padding) that the exclusion
    rules and feedback leave in front; a pool is thin when this runs low."""
    gone = member(pools, ctx.recent) | member(pools, ctx.disliked) | (demotion(pools, ctx) > KEPT)
    return np.count_nonzero((pools != NONE) & ~gone, axis=1)


def commit_queue(state: ListenerState, queue: list[str]) -> bool:
    """Store a new queue in the state; bump the version only when the queue changed."""
    if queue == state.queue:
        return False
    state.queue = queue
    state.version += 1
    return True


def exploration_seed(seed: int, listener_id: str, step: int) -> int:
    """64-bit seed of a listener's exploration draws at a step (e.g. its event count); the same
    in every process (crc32, not Python's salted hash)."""
    listener = zlib.crc32(listener_id.encode())
    return ((seed & 0xFFFFFFFF) * 0x9E3779B97F4A7C15 ^ listener << 32 ^ step) & (2**64 - 1)
