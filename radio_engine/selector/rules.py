"""Queue rules: each a small pure function over a batch of draft queues; rules are data.

`Drafts` holds, for every listener of a micro-batch, the candidates still free (catalog rows,
best first, -1 after the last) and the queue picked so far. Filters drop or reorder candidates,
vectorised over the whole batch; `separate_artists` fills each queue in rank order while keeping
artists apart; `explore` swaps a few slots for candidates from the ranked tail. The selector runs
a tuple of rules in order (`DEFAULT_RULES`); each can be tested alone, one listener being a
batch of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

# NONE: padding in row and artist tables; member: the membership test the session indicators
# use too, so a rule and an indicator agree on what "in the list" means
from radio_engine.model.session_indicators import NONE, member


def table(rows: Sequence[Sequence[int] | np.ndarray], width: int | None = None) -> np.ndarray:
    """Lists of rows (or codes) as one int64 table [B, width], padded at the end with -1."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = np.full((len(rows), width), NONE, dtype=np.int64)
    for i, r in enumerate(rows):
        r = np.asarray(r, dtype=np.int64)[:width]
        out[i, : r.size] = r
    return out


def _empty_table() -> np.ndarray:
    return np.zeros((1, 0), dtype=np.int64)


@dataclass(frozen=True)
class RuleContext:
    """What the rules know about each listener of the batch, as catalog rows and artist codes.

    recent / disliked / skipped: row tables [B, *] (-1 padding); pushed_artists /
    blocked_artists: artist code tables [B, *] of the artists feedback put after the others or
    out of the queue (listeners/feedback.py); lead_artists [B, W-1]: artist codes of the last
    plays (oldest first, -1 none), which share a window with the first queue slots; artist_of:
    artist code of every catalog row; rng_seeds: one per listener, so a replayed batch draws
    the same exploration.
    """

    recent: np.ndarray = field(default_factory=_empty_table)
    disliked: np.ndarray = field(default_factory=_empty_table)
    skipped: np.ndarray = field(default_factory=_empty_table)
    pushed_artists: np.ndarray = field(default_factory=_empty_table)
    blocked_artists: np.ndarray = field(default_factory=_empty_table)
    lead_artists: np.ndarray = field(default_factory=_empty_table)
    artist_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    queue_length: int = 10
    artist_window: int = 3
    artist_max: int = 1
    exploration: float = 0.0
    rng_seeds: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class Drafts:
    """Queues being built: free candidates [B, P] (best first, -1 after the last), picked rows
    and explored rows per listener."""

    ranked: np.ndarray
    queues: tuple[tuple[int, ...], ...]
    explored: tuple[frozenset[int], ...]

    @classmethod
    def start(cls, ranked: np.ndarray) -> Drafts:
        """Empty queues over ranked candidates [B, P]."""
        ranked = np.atleast_2d(np.asarray(ranked, dtype=np.int64))
        b = ranked.shape[0]
        return cls(ranked, ((),) * b, (frozenset(),) * b)

    def free(self, b: int) -> list[int]:
        """Listener b's free candidates, best first."""
        row = self.ranked[b]
        return row[row >= 0].tolist()


Rule = Callable[[Drafts, RuleContext], Drafts]


def compact(ranked: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The kept candidates of each listener moved to the front in order, -1 after them."""
    keep = keep & (ranked >= 0)
    if keep.all():
        return ranked
    out = np.full(ranked.shape, NONE, dtype=ranked.dtype)
    who, _ = np.nonzero(keep)  # row-major: each listener's kept candidates in order
    slot = np.cumsum(keep, axis=1)[keep] - 1
    out[who, slot] = ranked[keep]
    return out


def _with(drafts: Drafts, ranked: np.ndarray) -> Drafts:
    return drafts if ranked is drafts.ranked else Drafts(ranked, drafts.queues, drafts.explored)


def exclude_queued(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Each track at most once: drop repeated candidates and those already in the queue."""
    ranked = drafts.ranked
    if ranked.shape[1] > 1:
        ordered = np.sort(ranked, axis=1)
        if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any():
            by_row = np.argsort(ranked, axis=1, kind="stable")
            ordered = np.take_along_axis(ranked, by_row, axis=1)
            repeat = np.zeros(ranked.shape, dtype=bool)
            repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
            keep = np.ones(ranked.shape, dtype=bool)
            np.put_along_axis(keep, by_row, ~repeat, axis=1)
            ranked = compact(ranked, keep)
    if any(drafts.queues):
        ranked = compact(ranked, ~member(ranked, table(drafts.queues)))
    return _with(drafts, ranked)


def exclude_recent(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Never queue what the listener played recently."""
    return _with(drafts, compact(drafts.ranked, ~member(drafts.ranked, ctx.recent)))


def exclude_disliked(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Never queue a track the listener disliked."""
    return _with(drafts, compact(drafts.ranked, ~member(drafts.ranked, ctx.disliked)))


#: demotion levels of `demote_by_feedback`, best first
KEPT, PUSHED_ARTIST, SKIPPED_TRACK, BLOCKED_ARTIST = range(4)


def demotion(ranked: np.ndarray, ctx: RuleContext) -> np.ndarray:
    """Each candidate's demotion level [B, P]: KEPT, or why feedback moves it back (a skipped
    artist, a skipped track, an artist out of the queue); the worst reason wins."""
    level = np.zeros(ranked.shape, dtype=np.int8)
    if ranked.size == 0:
        return level
    if ctx.pushed_artists.size or ctx.blocked_artists.size:
        codes = np.where(ranked >= 0, ctx.artist_of[np.maximum(ranked, 0)], NONE)
        level[member(codes, ctx.pushed_artists)] = PUSHED_ARTIST
    if ctx.skipped.size:
        level[member(ranked, ctx.skipped)] = SKIPPED_TRACK
    if ctx.blocked_artists.size:
        level[member(codes, ctx.blocked_artists)] = BLOCKED_ARTIST
    return level


def demote_by_feedback(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Candidates that feedback demotes go after every other one, worst last: a recently
    skipped artist's tracks, then skipped tracks, then artists out of the queue (they fill a
    queue only when nothing else is left)."""
    level = demotion(drafts.ranked, ctx)
    if not level.any():
        return drafts
    key = np.where(drafts.ranked < 0, BLOCKED_ARTIST + 1, level)
    order = np.argsort(key, axis=1, kind="stable")
    return _with(drafts, np.take_along_axis(drafts.ranked, order, axis=1))


def kept_count(ranked: np.ndarray, ctx: RuleContext) -> list[int]:
    """Per listener, the free candidates feedback does not demote (after `demote_by_feedback`
    they are a prefix of the ranked list): the later rules pick from them first."""
    live = ranked >= 0
    return np.count_nonzero(live & (demotion(ranked, ctx) == KEPT), axis=1).tolist()


def fits(artists: Sequence[int], slot: int, artist: int, window: int, most: int) -> bool:
    """Whether `artist` at index `slot` of the artist sequence keeps every window containing it
    to at most `most` tracks of that artist (-1, no artist, always fits)."""
    if artist < 0 or window <= 1:
        return True
    for lo in range(max(0, slot - window + 1), slot + 1):
        span = artists[lo : lo + window]
        count = sum(1 for i, a in enumerate(span, lo) if i != slot and a == artist) + 1
        if count > most:
            return False
    return True


def _lead(ctx: RuleContext, b: int) -> list[int]:
    """Artist codes of listener b's last plays that share a window with the first slot."""
    look = ctx.artist_window - 1
    if look <= 0 or ctx.lead_artists.shape[1] == 0:
        return []
    return ctx.lead_artists[b, -look:].tolist()


def separate_artists(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Fill each queue to `queue_length` in rank order, taking at each slot the best candidate
    whose artist keeps at most `artist_max` tracks of one artist in any `artist_window`
    consecutive slots (the listener's last plays count as the slots before the queue).

    When no candidate keeps the rule (too few artists), the best one left fills the slot.
    """
    ranked = drafts.ranked
    if ranked.size == 0:
        return drafts
    need_most = ctx.queue_length - min(map(len, drafts.queues))
    if need_most <= 0:
        return drafts
    # the picks almost always come from the first few candidates: scan those first
    width = min(ranked.shape[1], 4 * need_most + 2 * ctx.artist_window)
    head = ranked[:, :width]
    head_arts = np.where(head >= 0, ctx.artist_of[np.maximum(head, 0)], NONE).tolist()
    head_rows = head.tolist()
    n_free = np.count_nonzero(ranked >= 0, axis=1).tolist()
    n_kept = kept_count(ranked, ctx)
    look = max(ctx.artist_window - 1, 0)
    leads = ctx.lead_artists[:, ctx.lead_artists.shape[1] - look :].tolist() if look else None
    who: list[int] = []
    where: list[int] = []
    queues = list(drafts.queues)
    for b, queue in enumerate(drafts.queues):
        need = ctx.queue_length - len(queue)
        # feedback beats spacing: demoted candidates come in only when the others run out
        free = n_kept[b] if n_kept[b] >= need else n_free[b]
        if need <= 0 or free == 0:
            continue
        seq = list(leads[b]) if leads else []
        if queue:
            seq += ctx.artist_of[list(queue)].tolist()
        arts = head_arts[b] if free >= width else head_arts[b][:free]
        picks = _pick_apart(arts, seq, need, look, ctx.artist_max, free > width)
        rows = head_rows[b]
        if picks is None:  # rare: the rule could not be kept among the first candidates
            rows = ranked[b, :free].tolist()
            arts = ctx.artist_of[ranked[b, :free]].tolist()
            picks = _pick_apart(arts, seq, need, look, ctx.artist_max, False) or []
        who += [b] * len(picks)
        where += picks
        queues[b] = queue + tuple([rows[p] for p in picks])
    taken = np.zeros(ranked.shape, dtype=bool)
    taken[who, where] = True
    return Drafts(compact(ranked, ~taken), tuple(queues), drafts.explored)


def _pick_apart(
    arts: list[int], seq: list[int], need: int, look: int, most: int, more: bool
) -> list[int] | None:
    """Positions picked in order: at each slot the first candidate, in rank order, whose
    artist appears fewer than `most` times in the `look` slots before it; when none does,
    the best one left. None when none does among `arts` while `more` candidates exist beyond
    them (the caller then scans them all). `seq` (artists so far) is extended in place."""
    picks: list[int] = []
    passed: list[int] = []  # positions passed over (did not fit then), in rank order
    nxt, n = 0, len(arts)
    while len(picks) < need:
        before = seq[-look:] if look > 0 else []
        choice = -1
        for j, p in enumerate(passed):
            a = arts[p]
            if a < 0 or before.count(a) < most:
                choice = passed.pop(j)
                break
        while choice < 0 and nxt < n:
            a = arts[nxt]
            if a < 0 or before.count(a) < most:
                choice = nxt
            else:
                passed.append(nxt)
            nxt += 1
        if choice < 0:
            if more:
                return None
            if not passed:
                break
            choice = passed.pop(0)
        picks.append(choice)
        seq.append(arts[choice])
    return picks


def explore(drafts: Drafts, ctx: RuleContext) -> Drafts:
    """Give about `exploration` of the slots after the first two to random candidates from the
    lower half of each listener's free candidates, each keeping the artist rule where it lands.

    The draws hash each listener's seed, so they depend on (seed, listener, queue version)
    only, never on which other listeners share the batch.
    """
    length = max(map(len, drafts.queues), default=0)
    if ctx.exploration <= 0 or length < 3 or not ctx.rng_seeds:
        return drafts
    seeds = np.asarray(ctx.rng_seeds, dtype=np.uint64)
    hit = uniform(seeds, length, stream=1) < ctx.exploration
    hit[:, :2] = False
    lengths = np.fromiter(map(len, drafts.queues), dtype=np.int64, count=len(drafts.queues))
    hit &= np.arange(length)[None, :] < lengths[:, None]
    if not hit.any():
        return drafts
    where = uniform(seeds, length, stream=2)
    lucky = np.flatnonzero(hit.any(axis=1))
    kept = kept_count(drafts.ranked, ctx)  # never explore what feedback demoted
    n_free = [kept[b] for b in lucky.tolist()]
    queues, explored = list(drafts.queues), list(drafts.explored)
    who: list[int] = []
    spots: list[int] = []
    for k, b in enumerate(lucky.tolist()):
        free = n_free[k]
        if free == 0:
            continue
        lead = _lead(ctx, b)
        queue = list(queues[b])
        seq = lead + ctx.artist_of[queue].tolist()
        picked = set(explored[b])
        used: set[int] = set()
        for slot in np.flatnonzero(hit[b]).tolist():
            pos = free // 2 + int(where[b, slot] * (free - free // 2))
            row = int(drafts.ranked[b, pos])
            if pos in used or row in queue:
                continue
            artist = int(ctx.artist_of[row])
            at = len(lead) + slot
            trial = [*seq[:at], artist, *seq[at + 1 :]]
            if fits(trial, at, artist, ctx.artist_window, ctx.artist_max):
                queue[slot], seq = row, trial
                picked.add(row)
                used.add(pos)
        if used:
            queues[b], explored[b] = tuple(queue), frozenset(picked)
            who += [b] * len(used)
            spots += sorted(used)
    if not who:
        return drafts
    chosen = np.zeros(drafts.ranked.shape, dtype=bool)
    chosen[who, spots] = True
    return Drafts(compact(drafts.ranked, ~chosen), tuple(queues), tuple(explored))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform(seeds: np.ndarray, n: int, stream: int) -> np.ndarray:
    """n uniform draws in [0, 1) per seed [B, n], a pure function of (seed, stream, index):
    splitmix64 over the batch at once."""
    with np.errstate(over="ignore"):
        counter = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(stream << 32)
        x = seeds.astype(np.uint64)[:, None] + counter[None, :] * _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


#: the rules in the order the selector applies them
DEFAULT_RULES: tuple[Rule, ...] = (
    exclude_queued,
    exclude_recent,
    exclude_disliked,
    demote_by_feedback,
    separate_artists,
    explore,
)


def apply_rules(drafts: Drafts, ctx: RuleContext, rules: Sequence[Rule] = DEFAULT_RULES) -> Drafts:
    """Run the rules in order."""
    for rule in rules:
        drafts = rule(drafts, ctx)
    return drafts
