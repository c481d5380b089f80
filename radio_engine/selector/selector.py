"""Turn listeners' new GRU queries into radio queues: cheap pool re-rank, batched catalog rescore.

Per event only the listener's candidate pool (a few hundred tracks) is re-ranked. The whole
catalog is rescored, batched across the listeners that need it, only when a pool is empty or thin,
after strong feedback (skip, like, dislike), or when the catalog changed (new tracks arrived).
The final score of a candidate is blend_scores (GRU + session signals), the same function the
offline evaluation measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.blend import GRU_ONLY, blend_scores, served_weights
from radio_engine.selector.rules import RuleContext, apply_rules, explore, separate_artists
from radio_engine.selector.scoring import top_k_rows
from radio_engine.settings import Settings

RULE_SUCCESSORS = 50
ARTIST_NEIGHBOURS = 20


@dataclass
class ListenerUpdate:
    """One listener's input to the selector for this batch."""

    listener_id: str
    state: ListenerState
    q: np.ndarray
    strong_feedback: bool = False
    skipped: set[str] = field(default_factory=set)


@dataclass
class QueueResult:
    """What the selector did for one listener."""

    listener_id: str
    changed: bool
    scores: dict[str, float]
    explored: set[str]
    rescored: bool


class Selector:
    """Keeps `queue_length` tracks ahead for each listener."""

    def __init__(self, settings: Settings, catalog: Catalog, model: ServingModel) -> None:
        from radio_engine.training.rules import load_rules

        self.settings = settings
        self.catalog = catalog
        # the same choice `radio-engine evaluate` makes: what is measured is what is served
        self.weights, self.weights_source = served_weights(model.manifest.feature_spec)
        # the rules table indexes the model's track table, which is the catalog's first rows
        self.rules = load_rules(model.dir, n_tracks=len(model.tracks.track_ids))

    def update(self, updates: list[ListenerUpdate]) -> list[QueueResult]:
        """Refresh pools where needed (one batched rescore), then rebuild every queue."""
        need = [u for u in updates if self._needs_rescore(u)]
        if need:
            self._rescore([u.state for u in need], np.stack([u.q for u in need]))
        needed = {id(u) for u in need}
        return [self._build_queue(u, id(u) in needed) for u in updates]

    def _needs_rescore(self, u: ListenerUpdate) -> bool:
        s = u.state
        if u.strong_feedback or not s.pool or s.pool_epoch != self.catalog.epoch:
            return True
        usable = len(set(s.pool) - set(s.recent) - set(s.disliked))
        return usable < 2 * self.settings.queue_length

    def _rescore(self, states: list[ListenerState], queries: np.ndarray) -> None:
        """Rebuild candidate pools from the whole catalog, one blocked top-k for all listeners."""
        c = self.catalog
        rows = top_k_rows(
            queries.astype(np.float32), c.track_out, self.settings.pool_size, c.active
        )
        for state, best in zip(states, rows, strict=True):
            pool = [c.ids[r] for r in best]
            pool += self._session_candidates(state)
            state.pool = list(dict.fromkeys(pool))
            state.pool_epoch = c.epoch

    def _session_candidates(self, state: ListenerState) -> list[str]:
        """Tracks the session signals favour: rule successors of the last track, its artist's hits."""
        if not state.recent:
            return []
        c = self.catalog
        out: list[str] = []
        last = c.index.get(state.recent[-1])
        if self.rules is not None and last is not None and last < self.rules.shape[0]:
            row = self.rules.getrow(last)
            top = row.indices[np.argsort(-row.data)[:RULE_SUCCESSORS]]
            out += [c.ids[r] for r in top if c.active[r]]
        artist = state.recent_artists[-1] if state.recent_artists else ""
        if artist and artist in c.artist_rows:
            rows = np.asarray(c.artist_rows[artist])
            rows = rows[c.active[rows]]
            best = rows[np.argsort(-c.popularity[rows], kind="stable")[:ARTIST_NEIGHBOURS]]
            out += [c.ids[r] for r in best]
        return out

    def _build_queue(self, u: ListenerUpdate, rescored: bool) -> QueueResult:
        c, s, cfg = self.catalog, u.state, self.settings
        rows = c.rows(s.pool)
        keep = rows >= 0
        keep[keep] = c.active[rows[keep]]
        rows = rows[keep]
        ids = [c.ids[r] for r in rows]
        scores = self._score(s, u.q, rows)
        ranked = [ids[i] for i in np.argsort(-scores, kind="stable")]
        last_artist = s.recent_artists[-1] if s.recent_artists else ""
        ctx = RuleContext(
            recent=frozenset(s.recent),
            disliked=frozenset(s.disliked),
            skipped=frozenset(u.skipped),
            last_artist=last_artist,
            artist_of=c.artist_of,
        )
        ranked = apply_rules(ranked, ctx)
        queue = separate_artists(ranked, ctx, cfg.queue_length, cfg.artist_window, cfg.artist_max)
        spare = ranked[cfg.queue_length : cfg.queue_length + 5 * cfg.queue_length]
        queue, explored = explore(
            queue, spare, cfg.exploration, cfg.seed, u.listener_id, s.version + 1
        )
        changed = queue != s.queue
        if changed:
            s.queue = queue
            s.version += 1
        by_id = dict(zip(ids, scores.tolist(), strict=True))
        return QueueResult(u.listener_id, changed, {t: by_id[t] for t in queue}, explored, rescored)

    def _score(self, s: ListenerState, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """blend_scores over the pool rows: GRU dot product plus the session signals."""
        c = self.catalog
        gru = c.track_out[rows] @ q
        w = self.weights
        if w == GRU_ONLY:
            return gru
        rule = np.zeros(rows.size, dtype=np.float32)
        last = c.index.get(s.recent[-1]) if s.recent else None
        if self.rules is not None and last is not None and last < self.rules.shape[0]:
            in_table = rows < self.rules.shape[1]
            rule[in_table] = self.rules[last, rows[in_table]].toarray().ravel()
        artists = np.asarray([c.artists[r] for r in rows], dtype=object)
        last_artist = s.recent_artists[-1] if s.recent_artists else None
        session_artists = set(s.session_artists()) - {""}
        session_tracks = set(s.session_tracks())
        return blend_scores(
            gru,
            rule,
            artists == last_artist if last_artist else np.zeros(rows.size, dtype=bool),
            np.fromiter((a in session_artists for a in artists), dtype=bool, count=rows.size),
            np.fromiter((c.ids[r] in session_tracks for r in rows), dtype=bool, count=rows.size),
            c.popularity[rows],
            w,
        )
