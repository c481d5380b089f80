"""Turn listeners' new GRU queries into radio queues: cheap pool re-rank, batched catalog rescore.

Per event only the listener's candidate pool (a few hundred rows) is re-ranked with the new
query. The whole catalog is rescored, in one batched blocked top-k across every listener that
needs it, only when a pool is missing (new listener, or built by another worker), thin (too
few candidates left after the rules) or overgrown, or after strong feedback (skip, like,
dislike). When the catalog changed since a pool was built (new tracks arrived), the pool takes
in just the changed rows that beat it (a top-up) instead of a rescore, unless too many changed.
The final score of a candidate is `blend.blend_scores` (GRU + session signals), the function the
offline evaluation measures; a model without a tuned blend serves the GRU dot product alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import UNRESOLVED, ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.blend import GRU_ONLY, blend_scores, served_weights
from radio_engine.selector.queue import build_queue, commit_queue, exploration_seed, rank, usable
from radio_engine.selector.rules import (
    DEFAULT_RULES,
    NONE,
    Rule,
    RuleContext,
    member,
    table,
)
from radio_engine.selector.scoring import top_k_rows
from radio_engine.settings import Settings

#: rule successors of the last track added to a pool on rescore (for the blend's SR signal)
RULE_SUCCESSORS = 50
#: most popular tracks of the last artist added to a pool on rescore
ARTIST_NEIGHBOURS = 20
#: listeners scored together in one blocked top-k call (keeps block scores in cache)
RESCORE_CHUNK = 256


@dataclass
class ListenerUpdate:
    """One listener's input to the selector for this batch (its state after the GRU steps)."""

    listener_id: str
    state: ListenerState
    q: np.ndarray
    strong_feedback: bool = False
    skipped: set[str] = field(default_factory=set)


@dataclass
class QueueResult:
    """What the selector did for one listener: the queue is in `state.queue` and here."""

    listener_id: str
    changed: bool
    scores: dict[str, float]
    explored: set[str]
    rescored: bool
    topped_up: bool = False
    queue: list[str] = field(default_factory=list)


class Selector:
    """Keeps `queue_length` tracks ahead for each listener; `rules` is the rule list applied."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        model: ServingModel | None = None,
        rules: Sequence[Rule] = DEFAULT_RULES,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.rules = tuple(rules)
        self.transitions = None
        if model is None:
            self.weights, self.weights_source = GRU_ONLY, "gru-only"
        else:
            from radio_engine.training.rules import load_rules

            # the choice `radio-engine evaluate` makes: what is measured is what is served
            self.weights, self.weights_source = served_weights(model.manifest.feature_spec)
            # the SR table indexes the model's track table, which is the catalog's first rows
            sr = load_rules(model.dir, n_tracks=len(model.tracks.track_ids))
            if sr is not None:
                sr = sr.tocsr()
                sr.sort_indices()
                self.transitions = sr
        self.max_pool = 2 * settings.pool_size + RULE_SUCCESSORS + ARTIST_NEIGHBOURS

    # -- the batch ---------------------------------------------------------------------------
    def update(self, updates: list[ListenerUpdate]) -> list[QueueResult]:
        """Refresh pools where needed (one batched rescore), then rebuild every queue.

        Steps: (1) per listener, decide: re-rank, top-up with changed rows, or rescore;
        (2) top-ups; a pool still thin or overgrown joins the rescore; (3) one batched
        rescore; (4) score every pool with its query and run the rules, batched;
        (5) commit each queue (its version moves only when it changed).
        """
        if not updates:
            return []
        cfg = self.settings
        ctx = self._context(updates)
        rescore: list[int] = []
        topped: dict[int, np.ndarray] = {}
        for i, u in enumerate(updates):
            changed = self._pool_changes(u)
            if changed is None:
                rescore.append(i)
            elif changed.size:
                topped[i] = changed
        if topped:
            self._top_up([updates[i] for i in topped], list(topped.values()))
        pools = self._pools(updates)
        thin = usable(pools, ctx) < 2 * cfg.queue_length
        first = set(rescore)
        for i, u in enumerate(updates):
            if i not in first and (thin[i] or u.state.pool_rows.size > self.max_pool):
                rescore.append(i)
        if rescore:
            self._rescore([updates[i].state for i in rescore], [updates[i].q for i in rescore])
            pools = self._pools(updates)
        scores = self._scores([u.state for u in updates], [u.q for u in updates], pools)
        ranked, _ = rank(pools, scores)
        # seeded by the events applied, not the queue version: a repeated update draws the
        # same exploration, so it cannot make a new version by itself
        seeds = tuple(exploration_seed(cfg.seed, u.listener_id, u.state.events) for u in updates)
        drafts = build_queue(ranked, replace(ctx, rng_seeds=seeds), self.rules)
        queue_rows = table(drafts.queues, cfg.queue_length)
        queue_scores = self._scores([u.state for u in updates], [u.q for u in updates], queue_rows)
        again = set(rescore)
        return [
            self._commit(
                u,
                drafts.queues[i],
                drafts.explored[i],
                queue_scores[i],
                i in again,
                i in topped and i not in again,
            )
            for i, u in enumerate(updates)
        ]

    def _commit(
        self,
        u: ListenerUpdate,
        queue_rows: tuple[int, ...],
        explored: frozenset[int],
        scores: np.ndarray,
        rescored: bool,
        topped_up: bool,
    ) -> QueueResult:
        """One listener's new queue into its state, and what happened."""
        ids = self.catalog.ids
        queue = [ids[r] for r in queue_rows]
        return QueueResult(
            listener_id=u.listener_id,
            changed=commit_queue(u.state, queue),
            scores=dict(zip(queue, scores[: len(queue)].tolist(), strict=True)),
            explored={ids[r] for r in explored},
            rescored=rescored,
            topped_up=topped_up,
            queue=queue,
        )

    def _pool_changes(self, u: ListenerUpdate) -> np.ndarray | None:
        """Rows changed since the pool was built (empty: none), or None when it must rescore."""
        s, c = u.state, self.catalog
        if u.strong_feedback or s.pool_rows.size == 0 or s.pool_catalog != c.instance:
            return None
        if s.pool_epoch == c.epoch:
            return np.zeros(0, dtype=np.int64)
        changed = c.changed_rows_since(s.pool_epoch)
        if changed is None or changed.size > self.settings.pool_size:
            return None
        return changed

    # -- pools -------------------------------------------------------------------------------
    def _pools(self, updates: list[ListenerUpdate]) -> np.ndarray:
        """Every listener's pool as one row table [B, P]; rows no longer queueable become -1."""
        c = self.catalog
        pools = table([u.state.pool_rows for u in updates])
        live = (pools >= 0) & (pools < c.size)
        live[live] = c.active[pools[live]]
        pools[~live] = NONE
        return pools

    def _rescore(self, states: list[ListenerState], queries: list[np.ndarray]) -> None:
        """Rebuild pools from the whole catalog, one blocked top-k for a chunk of listeners."""
        c = self.catalog
        q = np.asarray(np.stack(queries), dtype=np.float32)
        for start in range(0, len(states), RESCORE_CHUNK):
            best = top_k_rows(
                q[start : start + RESCORE_CHUNK], c.track_out, self.settings.pool_size, c.active
            )
            for state, rows in zip(states[start : start + RESCORE_CHUNK], best, strict=True):
                pool = np.concatenate([rows, self._session_candidates(state)])
                _, first = np.unique(pool, return_index=True)
                state.pool_rows = pool[np.sort(first)].astype(np.int32)
                state.pool_catalog = c.instance
                state.pool_epoch = c.epoch

    def _top_up(self, updates: list[ListenerUpdate], changes: list[np.ndarray]) -> None:
        """Add to each pool the changed rows that would enter a fresh top `pool_size`.

        Listeners whose pools share an epoch share the changed rows: each such group is
        scored with two batched products (its pools and the changed rows).
        """
        c, k = self.catalog, self.settings.pool_size
        groups: dict[int, list[int]] = {}
        for j, u in enumerate(updates):
            groups.setdefault(u.state.pool_epoch, []).append(j)
        for members in groups.values():
            changed = changes[members[0]]
            changed = changed[c.active[changed]]
            states = [updates[j].state for j in members]
            if changed.size:
                q = np.asarray(np.stack([updates[j].q for j in members]), dtype=np.float32)
                pools = table([s.pool_rows for s in states])
                have = np.matmul(c.track_out[np.maximum(pools, 0)], q[:, :, None])[:, :, 0]
                have[pools < 0] = -np.inf
                width = pools.shape[1]
                bar = np.full(len(states), -np.inf, dtype=np.float32)
                if width >= k:
                    bar = np.partition(have, width - k, axis=1)[:, width - k]
                fresh = q @ c.track_out[changed].T
                candidates = np.broadcast_to(changed, fresh.shape)
                enter = (fresh > bar[:, None]) & ~member(candidates, pools)
                for s, take in zip(states, enter, strict=True):
                    if take.any():
                        s.pool_rows = np.concatenate([s.pool_rows, changed[take]]).astype(np.int32)
            for s in states:
                s.pool_epoch = c.epoch

    def _session_candidates(self, state: ListenerState) -> np.ndarray:
        """Rows the session signals favour: SR successors of the last track, its artist's hits."""
        c = self.catalog
        out: list[np.ndarray] = []
        last = c.index.get(state.recent[-1]) if state.recent else None
        t = self.transitions
        if t is not None and last is not None and last < t.shape[0]:
            lo, hi = t.indptr[last], t.indptr[last + 1]
            top = t.indices[lo:hi][np.argsort(-t.data[lo:hi], kind="stable")[:RULE_SUCCESSORS]]
            out.append(top[c.active[top]].astype(np.int64))
        artist = state.recent_artists[-1] if state.recent_artists else ""
        if artist and artist in c.artist_rows:
            rows = np.asarray(c.artist_rows[artist], dtype=np.int64)
            rows = rows[c.active[rows]]
            out.append(rows[np.argsort(-c.popularity[rows], kind="stable")[:ARTIST_NEIGHBOURS]])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- rule inputs and scores ---------------------------------------------------------------
    def _context(self, updates: list[ListenerUpdate]) -> RuleContext:
        """The batch's rule inputs as catalog row tables and artist codes."""
        c, cfg = self.catalog, self.settings
        look = max(cfg.artist_window - 1, 0)
        skipped = [
            u.state.skipped + sorted(u.skipped - set(u.state.skipped))
            if u.skipped
            else u.state.skipped
            for u in updates
        ]
        return RuleContext(
            recent=table([self._recent_rows(u.state) for u in updates]),
            disliked=_id_table([u.state.disliked for u in updates], c.rows),
            skipped=_id_table(skipped, c.rows),
            lead_artists=_id_table(
                [u.state.recent_artists[-look:] if look else [] for u in updates],
                c.codes,
                width=look,
                right=True,
            ),
            artist_of=c.artist_codes,
            queue_length=cfg.queue_length,
            artist_window=cfg.artist_window,
            artist_max=cfg.artist_max,
            exploration=cfg.exploration,
        )

    def _recent_rows(self, s: ListenerState) -> np.ndarray:
        """The catalog rows of the listener's recent tracks, kept in its state between batches:
        only the tracks played since (and, after catalog changes, the unknown ones) are looked
        up, instead of every id on every batch."""
        c = self.catalog
        rows = s.recent_rows
        if rows.size != len(s.recent) or s.pool_catalog != c.instance:
            rows = c.rows(s.recent)
        else:
            todo = rows == UNRESOLVED
            if s.pool_epoch != c.epoch:
                todo |= rows == NONE
            if todo.any():
                at = np.flatnonzero(todo)
                rows = rows.astype(np.int64)
                rows[at] = c.rows([s.recent[i] for i in at.tolist()])
        s.recent_rows = rows.astype(np.int32, copy=False)
        return rows

    def score(self, state: ListenerState, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The served score of catalog rows for one listener (see `_scores`)."""
        self._recent_rows(state)
        return self._scores([state], [q], np.asarray(rows, dtype=np.int64)[None])[0]

    def _scores(
        self, states: list[ListenerState], queries: list[np.ndarray], rows: np.ndarray
    ) -> np.ndarray:
        """Served scores [B, P] of row tables (-inf at padding): blend_scores over the GRU dot
        product and the session signals (the dot product alone when the model carries no
        tuned blend)."""
        c = self.catalog
        if rows.size == 0 or c.size == 0:
            return np.full(rows.shape, -np.inf, dtype=np.float32)
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        q = np.asarray(np.stack(queries), dtype=np.float32)
        gru = np.matmul(c.track_out[safe], q[:, :, None])[:, :, 0]
        w = self.weights
        if w == GRU_ONLY:
            scores = gru
        else:
            codes = np.where(valid, c.artist_codes[safe], NONE)
            last = c.codes([s.recent_artists[-1] if s.recent_artists else "" for s in states])
            scores = blend_scores(
                gru,
                self._rule_scores(states, rows),
                (codes == last[:, None]) & (last[:, None] >= 0),
                member(codes, _id_table([s.session_artists() for s in states], c.codes)),
                member(rows, table([_session_rows(s) for s in states])),
                c.popularity[safe],
                w,
            )
        scores[~valid] = -np.inf
        return scores

    def _rule_scores(self, states: list[ListenerState], rows: np.ndarray) -> np.ndarray:
        """SR weight from each listener's last track to each candidate row [B, P] (0: none)."""
        out = np.zeros(rows.shape, dtype=np.float32)
        t = self.transitions
        if t is None:
            return out
        c = self.catalog
        for b, s in enumerate(states):
            last = c.index.get(s.recent[-1]) if s.recent else None
            if last is None or last >= t.shape[0]:
                continue
            lo, hi = t.indptr[last], t.indptr[last + 1]
            if hi > lo:
                idx = t.indices[lo:hi]
                at = np.minimum(np.searchsorted(idx, rows[b]), idx.size - 1)
                hit = idx[at] == rows[b]
                out[b, hit] = t.data[lo:hi][at[hit]]
        return out


def _session_rows(s: ListenerState) -> np.ndarray:
    """Rows of the tracks of the current session (-1 for those the catalog lacks)."""
    if not s.session_len:
        return np.zeros(0, dtype=np.int64)
    rows = np.asarray(s.recent_rows[-s.session_len :], dtype=np.int64)
    return np.maximum(rows, NONE)  # an unresolved row counts as absent


def _id_table(
    lists: list[list[str]],
    lookup: Callable[[list[str]], np.ndarray],
    width: int | None = None,
    right: bool = False,
) -> np.ndarray:
    """Lists of ids as a table of catalog rows (or artist codes) [B, width], -1 padding (and
    for ids the catalog lacks); one lookup call for the whole batch. `right` aligns each list
    to the end."""
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    width = int(lens.max(initial=0)) if width is None else width
    out = np.full((len(lists), width), NONE, dtype=np.int64)
    if lens.sum() == 0 or width == 0:
        return out
    flat = lookup(list(itertools.chain.from_iterable(lists)))
    starts = np.cumsum(lens) - lens
    who = np.repeat(np.arange(len(lists)), lens)
    col = np.arange(flat.size) - starts[who]
    if right:
        col += (width - lens)[who]
    out[who, col] = flat
    return out
