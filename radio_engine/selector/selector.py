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
offline evaluation measures, plus what likes add (listeners/feedback.py); a model without a tuned
blend serves the GRU dot product alone (plus likes). The session signals follow the tracks the
listener accepted, never a skip or a dislike. Every queued track carries why it is there: the
parts of its score and the rule that placed it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from radio_engine.catalog import Catalog
from radio_engine.listeners.feedback import (
    ArtistFeedback,
    FeedbackRules,
    artist_feedback,
    last_accepted,
    last_liked,
    recent_window,
)
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.model.session_indicators import (
    ACCEPTED_INDICES,
    SessionContext,
    session_context,
    session_indicators,
)
from radio_engine.model.transitions import load_transitions
from radio_engine.selector.blend import GRU_ONLY, blend_parts, blend_scores, served_weights
from radio_engine.selector.pools import Pool, PoolCache
from radio_engine.selector.queue import build_queue, commit_queue, exploration_seed, rank, usable
from radio_engine.selector.rules import (
    DEFAULT_RULES,
    KEPT,
    NONE,
    Rule,
    RuleContext,
    demotion,
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
#: by feedback index (one byte): whether the listener accepted the track
_ACCEPTED_KIND = np.isin(np.arange(256), sorted(ACCEPTED_INDICES))


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
    why: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _Scored:
    """Served scores of a batch's pools [B, P] and the signals they came from (for `why`)."""

    scores: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)


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
        self.feedback = FeedbackRules.from_settings(settings)
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
        feedback = [artist_feedback(u.state, self.feedback) for u in updates]
        recent_rows = [self.catalog.rows(u.state.recent) for u in updates]
        ctx = self._context(updates, recent_rows, feedback)
        pools, rescore, topped, first = self._plan(updates)
        pool_rows = self._pools(pools)
        thin = usable(pool_rows, ctx) < 2 * cfg.queue_length
        again = set(rescore)
        for i, pool in enumerate(pools):
            if i not in again and (thin[i] or pool.rows.size > self.max_pool):
                rescore.append(i)
                again.add(i)
        if rescore:
            fresh = self._rescore([updates[i] for i in rescore], [feedback[i] for i in rescore])
            for i, pool in zip(rescore, fresh, strict=True):
                pools[i] = pool
            pool_rows = self._pools(pools)
        for u, pool in zip(updates, pools, strict=True):
            self.pools.put(u.listener_id, pool)
        states, queries = [u.state for u in updates], [u.q for u in updates]
        scored = self._scores(states, queries, pool_rows, feedback)
        ranked, _ = rank(pool_rows, scored.scores)
        # seeded by the events applied, not the queue version: a repeated update draws the
        # same exploration, so it cannot make a new version by itself
        seeds = tuple(exploration_seed(cfg.seed, u.listener_id, u.state.events) for u in updates)
        ctx = replace(ctx, rng_seeds=seeds)
        drafts = build_queue(ranked, ctx, self.rules)
        queue_rows = table(drafts.queues, cfg.queue_length)
        at = positions_in(queue_rows, pool_rows)
        queue_scores = gather(scored.scores, at, -np.inf)
        why = self._why(queue_rows, at, queue_scores, scored, drafts.explored, ctx)
        return [
            self._commit(
                u,
                drafts.queues[i],
                drafts.explored[i],
                queue_scores[i],
                why[i],
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
        why: list[dict[str, object]],
        **how: bool,
    ) -> QueueResult:
        """One listener's new queue into its state, and what happened."""
        ids = self.catalog.ids
        queue = [ids[r] for r in queue_rows]
        published = scores[: len(queue)].tolist()
        changed = commit_queue(u.state, queue)
        if changed:
            u.state.queue_scores = published
        return QueueResult(
            listener_id=u.listener_id,
            changed=changed,
            scores=dict(zip(queue, published, strict=True)),
            explored={ids[r] for r in explored},
            queue=queue,
            why=why[: len(queue)],
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

    def _rescore(self, updates: list[ListenerUpdate], feedback: list[ArtistFeedback]) -> list[Pool]:
        """New pools from the whole catalog for these listeners (plus their session's
        candidates)."""
        sessions = [
            self._session_candidates(u.state, f) for u, f in zip(updates, feedback, strict=True)
        ]
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
        session = self._session_candidates(state, artist_feedback(state, self.feedback))
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

    def _session_candidates(self, state: ListenerState, feedback: ArtistFeedback) -> np.ndarray:
        """Rows the session signals and likes favour: SR successors of the last accepted track,
        the hits of its artist and of the liked artists, the tracks nearest the last liked one."""
        c, cache = self.catalog, self._sources()
        out: list[np.ndarray] = []
        track, artist = last_accepted(state)
        last = c.index.get(track) if track else None
        t = self.transitions
        if t is not None and last is not None and last < t.shape[0]:
            top = cache.get(("sr", last))
            if top is None:
                lo, hi = t.indptr[last], t.indptr[last + 1]
                top = t.indices[lo:hi][np.argsort(-t.data[lo:hi], kind="stable")]
                top = cache["sr", last] = top[c.active[top]][:RULE_SUCCESSORS].astype(np.int64)
            out.append(top)
        for name in (artist, *sorted(feedback.liked - {artist})):
            if name and name in c.artist_rows:
                hits = cache.get(("artist", name))
                if hits is None:
                    rows = np.asarray(c.artist_rows[name], dtype=np.int64)
                    rows = rows[c.active[rows]]
                    hits = rows[np.argsort(-c.popularity[rows], kind="stable")[:ARTIST_NEIGHBOURS]]
                    cache["artist", name] = hits
                out.append(hits)
        liked = c.index.get(last_liked(state))
        if liked is not None:
            near = cache.get(("near", liked))
            if near is None:
                sim = self._similarity(np.arange(c.size)[None], np.array([liked]))[0]
                sim[~c.active[: sim.size]] = -np.inf
                k = min(ARTIST_NEIGHBOURS, sim.size)
                near = cache["near", liked] = np.argsort(-sim, kind="stable")[:k].astype(np.int64)
            out.append(near)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _similarity(self, rows: np.ndarray, to: np.ndarray) -> np.ndarray:
        """Cosine similarity [B, P] of each listener's candidate rows to one track row each
        (its last liked track), over the catalog's output vectors (-1 padding: 0)."""
        c, cache = self.catalog, self._sources()
        norms = cache.get("norms")
        if norms is None:
            norms = cache["norms"] = np.linalg.norm(c.track_out, axis=1).astype(np.float32)
        safe = np.where(rows >= 0, rows, 0)
        sim = np.matmul(c.track_out[safe], c.track_out[to][:, :, None])[:, :, 0]
        denom = norms[safe] * norms[to][:, None]
        sim = np.divide(sim, denom, out=np.zeros_like(sim), where=denom > 0)
        sim[rows < 0] = 0.0
        return sim

    # -- rule inputs and scores ---------------------------------------------------------------
    def _context(
        self,
        updates: list[ListenerUpdate],
        recent_rows: list[np.ndarray],
        feedback: list[ArtistFeedback],
    ) -> RuleContext:
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
            pushed_artists=_id_table([sorted(f.pushed) for f in feedback], c.codes),
            blocked_artists=_id_table([sorted(f.blocked) for f in feedback], c.codes),
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
        feedback = [artist_feedback(state, self.feedback)]
        rows = np.asarray(rows, dtype=np.int64)[None]
        return self._scores([state], [q], rows, feedback).scores[0]

    def _scores(
        self,
        states: list[ListenerState],
        queries: list[np.ndarray],
        rows: np.ndarray,
        feedback: list[ArtistFeedback],
    ) -> _Scored:
        """Served scores [B, P] of row tables (-inf at padding): blend_scores over the GRU dot
        product and the session signals of the accepted tracks (the dot product alone when the
        model carries no tuned blend), plus what likes add."""
        c = self.catalog
        if rows.size == 0 or c.size == 0:
            return _Scored(np.full(rows.shape, -np.inf, dtype=np.float32))
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        q = np.asarray(np.stack(queries), dtype=np.float32)
        gru = np.matmul(c.track_out[safe], q[:, :, None])[:, :, 0]
        w = self.weights
        signals: dict[str, np.ndarray] = {"gru_scores": gru}
        if w == GRU_ONLY:
            scores = gru.copy()
        else:
            codes = np.where(valid, c.artist_codes[safe], NONE)
            context = self._session_context(states)
            signals.update(
                rule_scores=self._rule_scores(context.last_track, rows),
                **session_indicators(context, rows, codes).as_dict(),
                popularity=c.popularity[safe],
            )
            scores = blend_scores(weights=w, **signals)
        bonus = self._like_bonus(states, rows, feedback)
        if bonus is not None:
            scores += bonus
            signals["feedback"] = bonus
        scores[~valid] = -np.inf
        return _Scored(scores, signals)

    def _like_bonus(
        self, states: list[ListenerState], rows: np.ndarray, feedback: list[ArtistFeedback]
    ) -> np.ndarray | None:
        """What likes add to each candidate [B, P]: a boost for the liked artists' tracks and one
        per unit of cosine similarity to the last liked track; None when no listener liked."""
        c, rules = self.catalog, self.feedback
        liked = np.asarray([c.index.get(last_liked(s), -1) for s in states], dtype=np.int64)
        if not any(f.liked for f in feedback) and not (liked >= 0).any():
            return None
        codes = np.where(rows >= 0, c.artist_codes[np.maximum(rows, 0)], NONE)
        liked_artists = _id_table([sorted(f.liked) for f in feedback], c.codes)
        bonus = np.float32(rules.like_artist_boost) * member(codes, liked_artists)
        bonus = bonus.astype(np.float32)
        who = np.flatnonzero(liked >= 0)
        if who.size and rules.like_similar_boost:
            sim = self._similarity(rows[who], liked[who])
            bonus[who] += np.float32(rules.like_similar_boost) * np.maximum(sim, 0.0)
        return bonus

    def _why(
        self,
        queue_rows: np.ndarray,
        at: np.ndarray,
        queue_scores: np.ndarray,
        scored: _Scored,
        explored: tuple[frozenset[int], ...],
        ctx: RuleContext,
    ) -> list[list[dict[str, object]]]:
        """Why each queued track is there: its score's parts and the rule that placed it
        ("rank", "artist_spacing": a better track waited for the artist rule, "exploration", or
        "feedback_fallback": only candidates that feedback demoted were left)."""
        signals = {name: gather(v, at, 0.0) for name, v in scored.signals.items()}
        bonus = signals.pop("feedback", None)
        if "rule_scores" not in signals:  # GRU-only model (or nothing scored)
            parts = {"gru": signals.get("gru_scores", np.zeros(at.shape, dtype=np.float32))}
        else:
            parts = blend_parts(weights=self.weights, **signals)
        parts["feedback"] = np.zeros(at.shape, dtype=np.float32) if bonus is None else bonus
        names = list(parts)
        values = np.round(np.stack([parts[n] for n in names], axis=-1).astype(np.float64), 5)
        values = values.tolist()
        demoted = (demotion(queue_rows, ctx) > KEPT).tolist()
        out: list[list[dict[str, object]]] = []
        for b, rows in enumerate(queue_rows.tolist()):
            reasons: list[dict[str, object]] = []
            lowest = np.inf  # the lowest score placed so far by rank
            for slot, row in enumerate(rows):
                if row < 0:
                    break
                score = float(queue_scores[b, slot])
                if row in explored[b]:
                    placed = "exploration"
                elif demoted[b][slot]:
                    placed = "feedback_fallback"
                else:
                    placed = "artist_spacing" if score > lowest else "rank"
                    lowest = min(lowest, score)
                parts_here = dict(zip(names, values[b][slot], strict=True))
                reasons.append({"placed": placed, "parts": parts_here})
            out.append(reasons)
        return out

    def _session_context(self, states: list[ListenerState]) -> SessionContext:
        """Each listener's recent events as the shared session indicators read them
        (listeners.feedback.recent_window) in catalog rows and artist codes; one lookup for the
        whole batch."""
        c = self.catalog
        windows = [recent_window(s) for s in states]
        tracks = _id_table([w.tracks for w in windows], c.rows, right=True)
        width = tracks.shape[1]
        artists = _id_table([w.artists for w in windows], c.codes, width=width, right=True)
        lens = np.fromiter(map(len, (w.tracks for w in windows)), np.int64, count=len(windows))
        kinds = np.frombuffer(b"".join(w.kinds for w in windows), dtype=np.uint8)
        who = np.repeat(np.arange(len(windows)), lens)
        col = np.arange(kinds.size) - (np.cumsum(lens) - lens)[who] + (width - lens)[who]
        accepted = np.zeros(tracks.shape, dtype=bool)
        accepted[who, col] = _ACCEPTED_KIND[kinds]
        session = np.fromiter((w.session for w in windows), np.int64, count=len(windows))
        in_session = np.arange(width)[None, :] >= width - session[:, None]
        return session_context(tracks, artists, accepted, in_session)

    def _rule_scores(self, last_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """SR weight from each listener's last accepted track (a catalog row, -1 none) to each
        candidate row [B, P] (0: none)."""
        out = np.zeros(rows.shape, dtype=np.float32)
        t = self.transitions
        if t is None:
            return out
        for b, last in enumerate(last_rows.tolist()):
            if last < 0 or last >= t.shape[0]:
                continue
            lo, hi = t.indptr[last], t.indptr[last + 1]
            if hi > lo:
                idx = t.indices[lo:hi]
                at = np.minimum(np.searchsorted(idx, rows[b]), idx.size - 1)
                hit = idx[at] == rows[b]
                out[b, hit] = t.data[lo:hi][at[hit]]
        return out


def positions_in(rows: np.ndarray, pool_rows: np.ndarray) -> np.ndarray:
    """Where each of `rows` [B, L] sits in its listener's pool row table [B, P], as an index
    into the flattened pool (-1: padding or not in the pool): one sorted lookup."""
    b = pool_rows.shape[0]
    width = int(max(pool_rows.max(initial=0), rows.max(initial=0))) + 2
    base = np.arange(b, dtype=np.int64)[:, None] * width + 1
    keys = (base + pool_rows).ravel()
    if keys.size == 0:
        return np.full(rows.shape, -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    wanted = (base + rows).ravel()
    at = np.minimum(np.searchsorted(sorted_keys, wanted), sorted_keys.size - 1)
    found = (sorted_keys[at] == wanted) & (rows.ravel() >= 0)
    return np.where(found, order[at], -1).reshape(rows.shape)


def gather(values: np.ndarray, at: np.ndarray, missing: float) -> np.ndarray:
    """values [B, P] at the flat positions `at` [B, L] (positions_in), `missing` where -1."""
    flat = np.asarray(values).ravel()
    picked = flat[np.maximum(at, 0)] if flat.size else np.zeros(at.shape)
    return np.where(at >= 0, picked, missing).astype(np.float32)


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
