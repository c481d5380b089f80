"""Each queue rule alone, then the default rule list: exclusions, artist separation, exploration.

A listener is a batch of one; the batch tests check that listeners never leak into each other.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from radio_engine.selector.rules import (
    DEFAULT_RULES,
    Drafts,
    RuleContext,
    apply_rules,
    compact,
    demote_by_feedback,
    exclude_disliked,
    exclude_queued,
    exclude_recent,
    explore,
    fits,
    member,
    separate_artists,
    table,
)

# catalog rows 0..29; artist code = row // 10 for rows < 20 (artists 0 and 1), row 20.. each own
ARTISTS = np.array([r // 10 if r < 20 else r for r in range(30)], dtype=np.int32)


def one(*rows: int) -> Drafts:
    return Drafts.start(np.array([rows], dtype=np.int64))


def ctx(**kw: object) -> RuleContext:
    for name in (
        "recent",
        "disliked",
        "skipped",
        "lead_artists",
        "pushed_artists",
        "blocked_artists",
    ):
        if name in kw:
            kw[name] = table([kw[name]])  # type: ignore[list-item]
    return RuleContext(artist_of=ARTISTS, **kw)  # type: ignore[arg-type]


def test_member_and_compact_work_per_listener() -> None:
    rows = np.array([[5, 1, 9, -1], [9, 2, 5, 7]])
    sets = table([[9, 5, 100], [2]])
    assert member(rows, sets).tolist() == [[True, False, True, False], [False, True, False, False]]
    assert compact(rows, ~member(rows, sets)).tolist() == [[1, -1, -1, -1], [9, 5, 7, -1]]


def test_exclude_recent_alone() -> None:
    d = exclude_recent(one(4, 2, 7, 1), ctx(recent=[7, 4]))
    assert d.free(0) == [2, 1] and d.queues == ((),)


def test_exclude_disliked_alone() -> None:
    assert exclude_disliked(one(4, 2, 7, 1), ctx(disliked=[1])).free(0) == [4, 2, 7]


def test_exclude_queued_drops_repeats_and_queued_rows() -> None:
    d = Drafts(np.array([[4, 2, 4, 7, 2, 9]]), ((9,),), (frozenset(),))
    assert exclude_queued(d, ctx()).free(0) == [4, 2, 7]


def test_feedback_demotes_skipped_tracks_and_artists_worst_last() -> None:
    d = demote_by_feedback(one(3, 5, 8, 1), ctx(skipped=[5, 3]))
    assert d.free(0) == [8, 1, 3, 5]  # skipped keep their own order at the back
    # rows 0-9 artist 0 (one skip: pushed), 10-19 artist 1 (out of the queue), 20+ own artists
    c = ctx(skipped=[21], pushed_artists=[0], blocked_artists=[1])
    d = demote_by_feedback(one(10, 2, 21, 22, 11, 5, 23), c)
    assert d.free(0) == [22, 23, 2, 5, 21, 10, 11]


def test_spacing_and_exploration_never_reach_for_demoted_candidates_while_others_are_left() -> None:
    # artist 1 is out of the queue; spacing alone would take 10 between the artist-0 tracks
    c = ctx(blocked_artists=[1], queue_length=3, artist_window=2, artist_max=1)
    d = separate_artists(demote_by_feedback(one(0, 10, 1, 20, 2, 11), c), c)
    assert 10 not in d.queues[0] and 11 not in d.queues[0]
    # only demoted ones left: they fill the queue rather than leave it short
    c = ctx(blocked_artists=[1], queue_length=3)
    assert separate_artists(demote_by_feedback(one(10, 20, 11), c), c).queues == ((20, 10, 11),)
    # two listeners, only the second explores (a one-slot queue never does): tables line up
    free = [*range(21, 29), *range(10, 18)]
    c = RuleContext(
        artist_of=ARTISTS,
        blocked_artists=table([[0], [1]]),
        queue_length=6,
        exploration=1.0,
        rng_seeds=(2, 1),
    )
    queues = ((5,), (20, 0, 1, 2, 3, 4))
    drafts = Drafts(table([[6, 7], free]), queues, (frozenset(), frozenset()))
    explored = explore(drafts, c)
    assert explored.explored[1] and all(r >= 20 for r in explored.explored[1])


def test_filters_keep_listeners_apart() -> None:
    drafts = Drafts.start(np.array([[1, 2, 3], [1, 2, 3]]))
    c = RuleContext(recent=table([[1], [3]]), disliked=table([[], [2]]), artist_of=ARTISTS)
    d = exclude_disliked(exclude_recent(drafts, c), c)
    assert (d.free(0), d.free(1)) == ([2, 3], [1])


def test_artist_separation_picks_the_best_track_that_keeps_the_rule() -> None:
    # ranked: 0, 1 (artist 0), 10 (artist 1), 2 (artist 0), 20 (artist 20)
    # the last play was artist 0, window 2, at most 1: no two artist-0 tracks touch
    c = ctx(lead_artists=[0], queue_length=4, artist_window=2, artist_max=1)
    d = separate_artists(one(0, 1, 10, 2, 20), c)
    assert d.queues == ((10, 0, 20, 1),) and d.free(0) == [2]
    artists = [0, *ARTISTS[list(d.queues[0])].tolist()]
    assert all(a != b for a, b in itertools.pairwise(artists))


def test_artist_separation_window_three_allows_two() -> None:
    c = ctx(queue_length=6, artist_window=3, artist_max=2)
    [queue] = separate_artists(one(0, 1, 2, 3, 10, 11, 12), c).queues
    seq = ARTISTS[list(queue)].tolist()
    assert all(max(seq[i : i + 3].count(a) for a in set(seq)) <= 2 for i in range(len(seq)))
    assert queue[:2] == (0, 1) and len(queue) == 6


def test_artist_separation_fills_when_the_rule_cannot_be_met() -> None:
    assert separate_artists(one(0, 1, 2), ctx(queue_length=3, artist_window=3)).queues == (
        (0, 1, 2),
    )


def test_artist_separation_looks_past_the_first_candidates_when_it_must() -> None:
    # ten tracks of artist 0 ahead of one of artist 1: the scan must reach it
    ranked = [*range(10), 10]
    c = ctx(lead_artists=[0], queue_length=2, artist_window=2, artist_max=1)
    assert separate_artists(one(*ranked), c).queues == ((10, 0),)


def test_artist_separation_honours_random_batches() -> None:
    rng = np.random.default_rng(0)
    ranked = np.stack([rng.permutation(30)[:20] for _ in range(50)])
    lead = rng.choice(ARTISTS, size=(50, 2))
    c = RuleContext(
        lead_artists=lead, artist_of=ARTISTS, queue_length=8, artist_window=3, artist_max=1
    )
    d = separate_artists(Drafts.start(ranked), c)
    for b in range(50):
        seq = [*lead[b].tolist(), *ARTISTS[list(d.queues[b])].tolist()]
        assert len(d.queues[b]) == 8 and set(d.queues[b]) <= set(ranked[b].tolist())
        assert all(fits(seq, i, seq[i], 3, 1) for i in range(2, len(seq)))
        assert sorted([*d.queues[b], *d.free(b)]) == sorted(ranked[b].tolist())


def test_exploration_is_seeded_leaves_the_head_and_takes_from_the_tail() -> None:
    queue = tuple(range(20, 30))  # ten tracks, ten artists
    start = Drafts(np.array([[*range(10), *range(10, 20)]]), (queue,), (frozenset(),))
    # the tail half of the free candidates: rows 10..19

    def draw(seed: int, share: float = 0.5) -> Drafts:
        c = ctx(queue_length=10, exploration=share, rng_seeds=(seed,), artist_window=1)
        return explore(start, c)

    a, b = draw(123), draw(123)
    assert a.queues == b.queues and a.explored == b.explored
    assert a.queues[0][:2] == queue[:2] and a.explored[0]
    assert a.explored[0] <= set(range(10, 20)) and a.explored[0] <= set(a.queues[0])
    assert not set(a.free(0)) & a.explored[0]
    assert draw(124).queues != a.queues  # another seed, another draw
    assert draw(123, 0.0).queues == (queue,)


def test_exploration_keeps_artists_apart() -> None:
    # queue alternates artists; every tail candidate is artist 0 or 1
    queue = (20, 0, 10, 21, 11, 22, 12, 23)
    ranked = np.array([[*range(1, 10), *range(13, 20)]])
    for seed in range(30):
        c = ctx(queue_length=8, exploration=0.9, rng_seeds=(seed,), artist_window=2)
        d = explore(Drafts(ranked, (queue,), (frozenset(),)), c)
        seq = ARTISTS[list(d.queues[0])].tolist()
        assert all(a != b for a, b in itertools.pairwise(seq)), (seed, seq)


def test_the_default_rules_in_order() -> None:
    c = ctx(
        recent=[0],
        disliked=[20],
        skipped=[21],
        queue_length=4,
        artist_window=2,
        artist_max=1,
    )
    d = apply_rules(one(0, 20, 21, 1, 2, 10, 22, 22, 11), c, DEFAULT_RULES)
    assert d.queues == ((1, 10, 2, 22),)  # no 0 (played), no 20 (disliked), 21 (skipped) last
    assert d.free(0) == [11, 21]


@pytest.mark.parametrize("drop", [exclude_recent, exclude_disliked])
def test_rules_are_data(drop: object) -> None:
    """Leaving a rule out of the list switches it off, nothing else."""
    c = ctx(recent=[1], disliked=[1], queue_length=3, artist_window=1)
    rules = [r for r in DEFAULT_RULES if r is not drop]
    assert 1 not in apply_rules(one(1, 2, 3), c, DEFAULT_RULES).queues[0]
    assert 1 not in apply_rules(one(1, 2, 3), c, rules).queues[0]  # the other still drops it
    none = [r for r in DEFAULT_RULES if r not in (exclude_recent, exclude_disliked)]
    assert apply_rules(one(1, 2, 3), c, none).queues == ((1, 2, 3),)


def test_a_listeners_exploration_does_not_depend_on_the_batch() -> None:
    queue = tuple(range(20, 30))
    ranked = np.array([[*range(20)]])
    settings = {"queue_length": 10, "exploration": 0.4, "artist_window": 1}
    alone = explore(Drafts(ranked, (queue,), (frozenset(),)), ctx(rng_seeds=(99,), **settings))
    pair = explore(
        Drafts(np.vstack([ranked, ranked]), (queue, queue), (frozenset(), frozenset())),
        RuleContext(artist_of=ARTISTS, rng_seeds=(5, 99), **settings),  # type: ignore[arg-type]
    )
    assert pair.queues[1] == alone.queues[0] and pair.explored[1] == alone.explored[0]
    assert alone.explored[0] and pair.queues[0] != pair.queues[1]
