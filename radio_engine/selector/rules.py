"""Queue rules, each a small pure function over ranked candidates; the selector applies them in order.

A rule takes the candidates (track ids, best first) and the listener context and returns the
candidates it keeps, in order. Artist separation and exploration pick rather than filter, so they
run when the queue is assembled (`assemble_queue`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RuleContext:
    """What the rules know about a listener when a queue is built."""

    recent: frozenset[str] = frozenset()
    disliked: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()
    last_artist: str = ""
    artist_of: Callable[[str], str] = field(default=lambda _: "")


Rule = Callable[[list[str], RuleContext], list[str]]


def exclude_recent(candidates: list[str], ctx: RuleContext) -> list[str]:
    """Never queue what the listener played recently."""
    return [t for t in candidates if t not in ctx.recent]


def exclude_disliked(candidates: list[str], ctx: RuleContext) -> list[str]:
    """Never queue a track the listener disliked."""
    return [t for t in candidates if t not in ctx.disliked]


def push_down_skipped(candidates: list[str], ctx: RuleContext) -> list[str]:
    """Skipped tracks may come back, but only after everything else."""
    return [t for t in candidates if t not in ctx.skipped] + [
        t for t in candidates if t in ctx.skipped
    ]


def dedupe(candidates: list[str], ctx: RuleContext) -> list[str]:
    """Each track at most once in a queue."""
    return list(dict.fromkeys(candidates))


#: the filters, in the order the selector applies them (rules are data)
DEFAULT_RULES: tuple[Rule, ...] = (dedupe, exclude_recent, exclude_disliked, push_down_skipped)


def apply_rules(
    candidates: list[str], ctx: RuleContext, rules: Sequence[Rule] = DEFAULT_RULES
) -> list[str]:
    """Run the filters in order."""
    for rule in rules:
        candidates = rule(candidates, ctx)
    return candidates


def separate_artists(
    candidates: list[str], ctx: RuleContext, length: int, window: int, max_per_window: int
) -> list[str]:
    """Pick `length` tracks in rank order, with at most `max_per_window` of one artist in any
    `window` consecutive slots (the listener's last played artist counts as slot -1).

    When the rule cannot be met (too few artists), the best remaining tracks fill the queue.
    """
    remaining = list(candidates)
    picked: list[str] = []
    artists: list[str] = [ctx.last_artist]
    while remaining and len(picked) < length:
        window_artists = artists[-(window - 1) :] if window > 1 else []
        choice = 0  # the best remaining track, unless a better-placed one keeps the rule
        for i, track in enumerate(remaining):
            artist = ctx.artist_of(track)
            if not artist or window_artists.count(artist) < max_per_window:
                choice = i
                break
        track = remaining.pop(choice)
        picked.append(track)
        artists.append(ctx.artist_of(track))
    return picked


def explore(
    queue: list[str], spare: list[str], share: float, seed: int, listener_id: str, version: int
) -> tuple[list[str], set[str]]:
    """Swap about `share` of the slots after the first two for random spare candidates.

    Seeded by listener and queue version, so a replayed batch makes the same queue.
    """
    if share <= 0 or not spare or len(queue) < 3:
        return queue, set()
    rng = np.random.default_rng([seed, zlib.crc32(listener_id.encode()), version])
    queue = list(queue)
    chosen: set[str] = set()
    pool = [t for t in spare if t not in queue]
    for slot in range(2, len(queue)):
        if pool and rng.random() < share:
            pick = pool.pop(int(rng.integers(len(pool))))
            queue[slot] = pick
            chosen.add(pick)
    return queue, chosen
