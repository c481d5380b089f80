"""Turn listeners' new GRU queries into radio queues: cheap pool re-rank, batched catalog rescore.

Per event only the listener's candidate pool (a few hundred rows, cached by this worker:
pools.py) is re-ranked with the new query. The whole catalog is rescored, in one batched
blocked top-k across every listener that needs it, only when a pool is thin (too few
candidates left after the rules) or overgrown, or after strong feedback (skip, like, dislike).
A listener without a pool here (new, or moved from another worker) starts on the shared first
pool and gets its own from `refine`, which the worker runs between batches. When the catalog
changed since a pool was built (new tracks arrived), the pool takes in just the changed rows
that beat it (a top-up) instead of a rescore, unless too many changed.
The final score of a candidate is `blend.blend_scores` (GRU + session signals), the function the
offline evaluation measures; a model without a tuned blend serves the GRU dot product alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.model.transitions import load_transitions
from radio_engine.selector.blend import GRU_ONLY, blend_scores, served_weights
from radio_engine.selector.pools import Pool, PoolCache
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
    rescored: bool = False
    topped_up: bool = False
    first_pool: bool = False
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
        self.pools = PoolCache(settings.pool_cache_listeners)
        self.transitions = None
        self._sources_version: tuple[int, int] = (0, 0)
        self._sources_cache: dict[object, np.ndarray] = {}
        if model is None:
            self.weights, self.weights_source = GRU_ONLY, "gru-only"
        else:
            # the choice `radio-engine evaluate` makes: what is measured is what is served
            self.weights, self.weights_source = served_weights(model.manifest.feature_spec)
            # the SR table indexes the model's track table, which is the catalog's first rows
            self.transitions = load_transitions(model.dir, n_tracks=len(model.tracks.track_ids))
        self.max_pool = 2 * settings.pool_size + RULE_SUCCESSORS + ARTIST_NEIGHBOURS

    # -- the batch ---------------------------------------------------------------------------
    def update(self, updates: list[ListenerUpdate]) -> list[QueueResult]:
        """Refresh pools where needed (one batched rescore), then rebuild every queue.

        Steps: (1) per listener, decide: re-rank, top-up with changed rows, or rescore; a
        listener without a pool of its own is rescored while the batch's budget
        (`rescores_per_batch`) lasts, else it gets the shared first pool and waits for
        `refine`, off the event path; (2) top-ups; a pool still thin or overgrown joins the rescore; (3) one batched
        rescore; (4) score every pool with its query and run the rules, batched; (5) commit
        each queue (its version moves only when it changed).
        """
        if not updates:
            return []
        cfg = self.settings
        recent_rows = [self.catalog.rows(u.state.recent) for u in updates]
        ctx = self._context(updates, recent_rows)
        pools, rescore, topped, first = self._plan(updates)
        pool_rows = self._pools(pools)
        thin = usable(pool_rows, ctx) < 2 * cfg.queue_length
        again = set(rescore)
        for i, pool in enumerate(pools):
            if i not in again and (thin[i] or pool.rows.size > self.max_pool):
                rescore.append(i)
                again.add(i)
        if rescore:
            fresh = self._rescore([updates[i] for i in rescore])
            for i, pool in zip(rescore, fresh, strict=True):
                pools[i] = pool
            pool_rows = self._pools(pools)
        for u, pool in zip(updates, pools, strict=True):
            self.pools.put(u.listener_id, pool)
        states, queries = [u.state for u in updates], [u.q for u in updates]
        scores = self._scores(states, queries, pool_rows, recent_rows)
        ranked, _ = rank(pool_rows, scores)
        # seeded by the events applied, not the queue version: a repeated update draws the
        # same exploration, so it cannot make a new version by itself
        seeds = tuple(exploration_seed(cfg.seed, u.listener_id, u.state.events) for u in updates)
        drafts = build_queue(ranked, replace(ctx, rng_seeds=seeds), self.rules)
        queue_rows = table(drafts.queues, cfg.queue_length)
        queue_scores = scores_of(queue_rows, pool_rows, scores)
        return [
            self._commit(
                u,
                drafts.queues[i],
                drafts.explored[i],
                queue_scores[i],
                rescored=i in again,
                topped_up=i in topped and i not in again,
                first_pool=i in first and i not in again,
            )
            for i, u in enumerate(updates)
        ]

    def _plan(
        self, updates: list[ListenerUpdate]
    ) -> tuple[list[Pool], list[int], set[int], set[int]]:
        """Each listener's pool for this batch: (pools, to rescore, topped up, first pools).

        Strong feedback and stale pools always rescore; listeners without a pool of their own
        share the batch's `rescores_per_batch` budget, the rest get the shared first pool.
        """
        c = self.catalog
        pools: list[Pool | None] = [self.pools.get(u.listener_id) for u in updates]
        rescore: list[int] = []
        waiting: list[int] = []
        topped: set[int] = set()
        for i, u in enumerate(updates):
            pool = pools[i]
            if u.strong_feedback:
                rescore.append(i)
            elif pool is None or pool.catalog != c.instance or pool.first:
                waiting.append(i)
            else:
                changed = self._changes_since(pool)
                if changed is None:
                    rescore.append(i)
                elif changed.size:
                    pools[i] = self._top_up(u, pool, changed)
                    topped.add(i)
        budget = max(self.settings.rescores_per_batch - len(rescore), 0)
        rescore += waiting[:budget]
        first = set(waiting[budget:])
        placeholder = Pool(np.zeros(0, dtype=np.int32), c.instance, c.epoch)
        out = [
            self._first_pool(updates[i].state, updates[i].q) if i in first else pool or placeholder
            for i, pool in enumerate(pools)
        ]
        return out, rescore, topped, first

    def _commit(
        self,
        u: ListenerUpdate,
        queue_rows: tuple[int, ...],
        explored: frozenset[int],
        scores: np.ndarray,
        **how: bool,
    ) -> QueueResult:
        """One listener's new queue into its state, and what happened."""
        ids = self.catalog.ids
        queue = [ids[r] for r in queue_rows]
        return QueueResult(
            listener_id=u.listener_id,
            changed=commit_queue(u.state, queue),
            scores=dict(zip(queue, scores[: len(queue)].tolist(), strict=True)),
            explored={ids[r] for r in explored},
            queue=queue,
            **how,
        )

    def _changes_since(self, pool: Pool) -> np.ndarray | None:
        """Rows changed since the pool was built (empty: none), or None when it must rescore."""
        c = self.catalog
        if pool.epoch == c.epoch:
            return np.zeros(0, dtype=np.int64)
        changed = c.changed_rows_since(pool.epoch)
        if changed is None or changed.size > self.settings.pool_size:
            return None
        return changed

    # -- pools -------------------------------------------------------------------------------
    def _pools(self, pools: list[Pool]) -> np.ndarray:
        """Every listener's pool as one row table [B, P]; rows no longer queueable become -1."""
        c = self.catalog
        rows = table([p.rows for p in pools])
        live = (rows >= 0) & (rows < c.size)
        live[live] = c.active[rows[live]]
        rows[~live] = NONE
        return rows

    def _rescore(self, updates: list[ListenerUpdate]) -> list[Pool]:
        """New pools from the whole catalog for these listeners (plus their session's
        candidates)."""
        sessions = [self._session_candidates(u.state) for u in updates]
        return self._catalog_pools([u.q for u in updates], sessions)

    def _catalog_pools(self, queries: list[np.ndarray], sessions: list[np.ndarray]) -> list[Pool]:
        """Pools of each query's catalog top `pool_size` plus its extra rows, one blocked top-k
        for a chunk of listeners at a time."""
        c = self.catalog
        q = np.asarray(np.stack(queries), dtype=np.float32)
        out: list[Pool] = []
        for start in range(0, len(queries), RESCORE_CHUNK):
            best = top_k_rows(
                q[start : start + RESCORE_CHUNK], c.track_out, self.settings.pool_size, c.active
            )
            for rows, extra in zip(best, sessions[start : start + RESCORE_CHUNK], strict=True):
                out.append(Pool(_unique(rows, extra), *c.version))
        return out

    def refine(self, limit: int) -> int:
        """Rescore up to `limit` listeners waiting on the shared first pool (oldest first) with
        their latest query: the whole-catalog work new listeners skipped on the event path.
        Their queues improve at their next event. Returns how many were rescored."""
        c = self.catalog
        waiting = [
            (lid, pool) for lid, pool in self.pools.waiting(limit) if pool.catalog == c.instance
        ]
        if not waiting:
            return 0
        none = np.zeros(0, dtype=np.int64)
        pools = self._catalog_pools(
            [pool.query for _, pool in waiting],
            [pool.session if pool.session is not None else none for _, pool in waiting],
        )
        for (lid, _), pool in zip(waiting, pools, strict=True):
            self.pools.put(lid, pool)
        return len(waiting)

    def _first_pool(self, state: ListenerState, q: np.ndarray) -> Pool:
        """The shared first pool: the catalog's most played tracks plus the session's
        candidates (no whole-catalog product)."""
        c = self.catalog
        cache = self._sources()
        if "popular" not in cache:
            active = np.flatnonzero(c.active)
            k = min(self.settings.pool_size, active.size)
            top = np.argpartition(-c.popularity[active], k - 1)[:k] if k else active[:0]
            cache["popular"] = active[top[np.argsort(-c.popularity[active[top]], kind="stable")]]
        session = self._session_candidates(state)
        rows = _unique(cache["popular"], session)
        return Pool(rows, *c.version, first=True, query=np.asarray(q), session=session)

    def _sources(self) -> dict[object, np.ndarray]:
        """Candidate lists derived from the catalog (popular rows, a track's SR successors,
        an artist's hits), cached until the catalog changes."""
        if self._sources_version != self.catalog.version:
            self._sources_version = self.catalog.version
            self._sources_cache = {}
        return self._sources_cache

    def _top_up(self, u: ListenerUpdate, pool: Pool, changed: np.ndarray) -> Pool:
        """The pool plus the changed rows that would enter a fresh top `pool_size`."""
        c, k = self.catalog, self.settings.pool_size
        changed = changed[c.active[changed]]
        rows = pool.rows
        if changed.size:
            q = np.asarray(u.q, dtype=np.float32)
            live = rows[(rows >= 0) & (rows < c.size)]
            have = c.track_out[live] @ q
            bar = np.partition(have, have.size - k)[have.size - k] if have.size >= k else -np.inf
            fresh = c.track_out[changed] @ q
            enter = changed[(fresh > bar) & ~np.isin(changed, rows)]
            if enter.size:
                rows = np.concatenate([rows, enter]).astype(np.int32)
        return Pool(rows, *c.version)

    def _session_candidates(self, state: ListenerState) -> np.ndarray:
        """Rows the session signals favour: SR successors of the last track, its artist's hits."""
        c, cache = self.catalog, self._sources()
        out: list[np.ndarray] = []
        last = c.index.get(state.recent[-1]) if state.recent else None
        t = self.transitions
        if t is not None and last is not None and last < t.shape[0]:
            top = cache.get(("sr", last))
            if top is None:
                lo, hi = t.indptr[last], t.indptr[last + 1]
                top = t.indices[lo:hi][np.argsort(-t.data[lo:hi], kind="stable")]
                top = cache["sr", last] = top[c.active[top]][:RULE_SUCCESSORS].astype(np.int64)
            out.append(top)
        artist = state.recent_artists[-1] if state.recent_artists else ""
        if artist and artist in c.artist_rows:
            hits = cache.get(("artist", artist))
            if hits is None:
                rows = np.asarray(c.artist_rows[artist], dtype=np.int64)
                rows = rows[c.active[rows]]
                hits = rows[np.argsort(-c.popularity[rows], kind="stable")[:ARTIST_NEIGHBOURS]]
                cache["artist", artist] = hits
            out.append(hits)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- rule inputs and scores ---------------------------------------------------------------
    def _context(self, updates: list[ListenerUpdate], recent_rows: list[np.ndarray]) -> RuleContext:
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
            recent=table(recent_rows),
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

    def score(self, state: ListenerState, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The served score of catalog rows for one listener (see `_scores`)."""
        recent = [self.catalog.rows(state.recent)]
        return self._scores([state], [q], np.asarray(rows, dtype=np.int64)[None], recent)[0]

    def _scores(
        self,
        states: list[ListenerState],
        queries: list[np.ndarray],
        rows: np.ndarray,
        recent_rows: list[np.ndarray],
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
            session = [_session_rows(s, r) for s, r in zip(states, recent_rows, strict=True)]
            scores = blend_scores(
                gru,
                self._rule_scores(states, rows),
                (codes == last[:, None]) & (last[:, None] >= 0),
                member(codes, _id_table([s.session_artists() for s in states], c.codes)),
                member(rows, table(session)),
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


def scores_of(rows: np.ndarray, pool_rows: np.ndarray, pool_scores: np.ndarray) -> np.ndarray:
    """The scores [B, L] of row tables already scored as part of each listener's pool
    (-inf for padding and rows outside the pool): a sorted lookup, no second scoring pass."""
    b = pool_rows.shape[0]
    width = int(max(pool_rows.max(initial=0), rows.max(initial=0))) + 2
    base = np.arange(b, dtype=np.int64)[:, None] * width + 1
    keys = (base + pool_rows).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    wanted = (base + rows).ravel()
    at = np.minimum(np.searchsorted(sorted_keys, wanted), sorted_keys.size - 1)
    out = pool_scores.ravel()[order][at] if sorted_keys.size else np.zeros(wanted.size)
    found = (sorted_keys[at] == wanted) & (rows.ravel() >= 0) if sorted_keys.size else False
    return np.where(found, out, -np.inf).reshape(rows.shape).astype(np.float32)


def _session_rows(state: ListenerState, recent_rows: np.ndarray) -> np.ndarray:
    """Rows of the tracks of the current session (-1 for those the catalog lacks)."""
    n = state.session_len
    return recent_rows[recent_rows.size - n :] if n else recent_rows[:0]


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


def _unique(*parts: np.ndarray) -> np.ndarray:
    """Rows of the parts in order, each once, as int32."""
    pool = np.concatenate(parts).astype(np.int64, copy=False)
    _, first = np.unique(pool, return_index=True)
    return pool[np.sort(first)].astype(np.int32)
