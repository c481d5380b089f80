"""`radio-engine evaluate`: next-track HR@k / MRR@k of the served model and baselines, same pairs.

Protocol
1. Pairs: in every test session, at every position >= 1, predict that track from the
   session's earlier tracks. A pair is warm when its target was seen in training (in the
   model's track table or in --train), cold otherwise.
2. Warm pass (the headline HR/MRR): every method ranks the warm candidates: the model's track
   table, then the other tracks of --train. Cold targets cannot be among them and count as
   misses for every method.
2b. Radio pass: the worker never queues a track among the listener's last `radio_window` events
   (Settings.history_length, 50), so a radio cannot serve a target heard that recently. Here
   each method ranks the warm candidates without those tracks, over the warm pairs whose target
   lies outside the window (`pairs.radio`): the part of the next-track task a radio can do.
3. Cold pass: each cold pair is ranked among the tracks first seen after training (those of
   --test that are not warm). Ranking them apart from the warm ones is deliberate: those tracks
   are exactly the ones the test period plays, so mixed with warm candidates "never played
   before" would itself predict the target, a leak no real catalog offers. Among themselves,
   only artist- or content-aware scoring can tell them apart: id-based methods score them all
   0 and get the chance rate (`chance_hr_cold`). The model scores them as serving scores a
   track it never learned: the track encoder with no id, the artist's index and no audio
   (30Music has none). Caveat: a real catalog holds more unplayed tracks per artist than the
   test period plays, so artist-aware cold numbers are optimistic in absolute terms; compare
   methods with each other.
3b. Full-catalog cold pass: each cold pair is also ranked among ALL candidates, the warm ones
   and the tracks first seen in --test together, as a radio's catalog holds the tracks nobody
   has played yet beside the ones it knows (`hr_cold_full`). Every method scores every
   candidate as it does in the other passes: the model a new track through its artist, the
   blend its session signals (a new track already heard in the session counts as in the
   session, as the worker counts it), id-based methods 0. The same caveat holds, weaker: the
   new tracks still number only those the test period plays.
4. Listener state: each listener's train and test events run through the ONNX GRU together,
   in time order (equal timestamps keep file order), each with its own feedback (a skip is
   read as a skip, as the worker reads it; a model trained as the no-feedback ablation reads
   every event as a play, as it was trained); a pair uses the query after the event just
   before its target, so the state holds only earlier events. Dwell (pct_played_derived, which
   is computed from the next event's time) is never read.
5. Session signals: the served blend's session indicators are the worker's
   (model.session_indicators): they follow the accepted events of the session prefix (play,
   complete, like; never a skip or a dislike), and the listener's last accepted event before
   the session (in --train or earlier in --test) when the prefix has none; the rules signal
   follows the same last accepted track.
6. Baselines are fitted on --train only. Blend weights: the served ones from the model's
   manifest (feature_spec["blend"], tuned on a validation split at train time), else the GRU
   alone, as the worker does (selector.blend.served_weights); the blend baseline's from feature_spec["blend_only"], else tuned here on the last
   day of --train with its signals fitted on the rest. Nothing is tuned on --test.
7. Ties count as a random order in expectation (training.metrics); top-k lists break ties
   in one seeded random order of the candidates.
8. Served minus every other method comes with a 95 % interval: a paired bootstrap that
   resamples whole test sessions (training.bootstrap), so a gap of a few pairs is not read
   as a win or a loss.

JSON report (`--json`), one object:

| key | meaning |
| --- | --- |
| k | the cut-off of every @k metric |
| radio_window | recent events per listener whose tracks the radio pass leaves out (Settings.history_length) |
| pairs.all / .warm / .cold / .radio | pairs scored; warm: target seen in training; cold: not; radio: warm pairs whose target is outside the listener's recent window |
| candidates.warm / .table / .cold / .all | warm candidates (of them in the model's table); cold-pass candidates; the full catalog (warm + cold) |
| candidates.table_not_in_train | table tracks that never occur in --train (should be 0: see the warning) |
| chance_hr / chance_hr_cold / chance_hr_cold_full | k / candidates.warm, k / candidates.cold and k / candidates.all: HR@k of a random ranking |
| methods.<name>.hr / .mrr | HR@k and MRR@k over all pairs, warm pass (cold pairs are misses) |
| methods.<name>.hr_warm / .mrr_warm | the same over warm pairs only |
| methods.<name>.hr_radio / .mrr_radio | the radio pass: warm pairs whose target is outside the listener's recent window, recent tracks left out of the ranking |
| methods.<name>.hr_cold / .mrr_cold | cold pairs ranked among the cold candidates (cold pass) |
| methods.<name>.hr_cold_full / .mrr_cold_full | cold pairs ranked among all candidates, warm and cold (full-catalog cold pass) |
| methods.<name>.next_artist_hr | share of pairs whose target's artist is among the artists of the warm top-k list |
| methods.<name>.coverage | share of warm candidates in at least one top-k list |
| methods.<name>.artist_diversity | mean share of distinct artists in a top-k list |
| methods.<name>.seconds | time to fit and score the method (GRU replay and ranking excluded) |
| served_vs.<name>.hr / .mrr | served minus that method over all pairs: {diff, low, high}, low/high the 95 % interval of a paired (Poisson) bootstrap over test sessions (2,000 resamples, seeded) |
| served_vs_cold_full.<name>.hr / .mrr | the same over the cold pairs of the full-catalog cold pass |
| served_vs_radio.<name>.hr / .mrr | the same over the pairs of the radio pass |
| blend.served / .served_source | weights of the served score; "manifest" or "gru-only" (what the worker serves without tuned weights) |
| blend.baseline / .baseline_source | weights of the blend baseline; "manifest", "tuned-on-train-tail" or "given" |
| model.dir / .version / .trained | the model evaluated |
| seconds.replay / .total | GRU replay time (all models) and the whole run |

Methods: served (GRU + blend: what the worker scores), gru (the GRU alone), served_no_gru (the
served weights with the GRU switched off: the GRU's own contribution is served minus this),
blend (the cheap-signal baseline with its own weights), popularity, markov, sr, vsknn, artist
(artist continuation); with --id-only-model: id_only_gru (that GRU alone) and id_only_served
(that GRU in the same blend, with the weights tuned for it at its training).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from radio_engine.model.runtime import ServingModel
from radio_engine.model.session_indicators import INDICATORS
from radio_engine.model.transitions import load_transitions
from radio_engine.selector.blend import BlendWeights, blend_scores, served_weights
from radio_engine.settings import Settings
from radio_engine.training import metrics
from radio_engine.training.baselines import (
    VSKNN,
    ArtistContinuation,
    Markov,
    Popularity,
    SequentialRules,
    SignalTables,
    dense_rows,
    session_signals,
)
from radio_engine.training.blend_tuning import BlendProblem, tune_blend
from radio_engine.training.bootstrap import SessionBootstrap
from radio_engine.training.listener_replay import catalog_vectors, replay_queries
from radio_engine.training.pairs import (
    EvalCatalog,
    EventColumns,
    Pairs,
    SessionLog,
    recent_rows,
)

#: report order of the methods
METHODS = (
    "served",
    "gru",
    "served_no_gru",
    "blend",
    "popularity",
    "markov",
    "sr",
    "vsknn",
    "artist",
    "id_only_gru",
    "id_only_served",
)
#: dense scores per batch are about this many floats (batch rows = this / candidates)
BATCH_CELLS = 4_000_000


@dataclass
class _Scored:
    """One method's ranks (warm, cold and full-catalog cold pass) and top-k lists, filled batch
    by batch."""

    warm: list[metrics.Ranks] = field(default_factory=list)
    cold: list[metrics.Ranks] = field(default_factory=list)
    cold_full: list[metrics.Ranks] = field(default_factory=list)
    radio: list[metrics.Ranks] = field(default_factory=list)
    top: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Passes:
    """How a batch of [B, N] scores is ranked: warm columns for all pairs; the warm columns but
    each pair's recent tracks, for the warm pairs whose target is not one of them (radio pass);
    for cold pairs, the cold columns (cold pass) and every column (full-catalog cold pass)."""

    n_warm: int
    k: int
    tie_order: np.ndarray

    def add(
        self,
        into: _Scored,
        scores: np.ndarray,
        targets: np.ndarray,
        cold: np.ndarray,
        recent: np.ndarray,
    ) -> None:
        warm_scores = scores[:, : self.n_warm]
        warm = metrics.ranks(warm_scores, np.where(cold, -1, targets))
        into.warm.append(warm)
        into.top.append(metrics.top_k(warm_scores, self.k, self.tie_order))
        radio = np.flatnonzero(radio_pairs(targets, cold, recent))
        if radio.size:
            into.radio.append(
                _without_recent(warm[radio], warm_scores, radio, targets[radio], recent[radio])
            )
        if cold.any() and scores.shape[1] > self.n_warm:
            cold_scores = scores[cold]
            into.cold.append(
                metrics.ranks(cold_scores[:, self.n_warm :], targets[cold] - self.n_warm)
            )
            into.cold_full.append(metrics.ranks(cold_scores, targets[cold]))


def _without_recent(
    ranks: metrics.Ranks,
    scores: np.ndarray,
    rows: np.ndarray,
    targets: np.ndarray,
    recent: np.ndarray,
) -> metrics.Ranks:
    """The warm-pass ranks of these rows' targets once each row's recent tracks (each counted
    once, none of them the target) leave the ranking: minus those that outrank or tie it."""
    window = np.sort(recent, axis=1)
    keep = (window >= 0) & (window < scores.shape[1])
    keep[:, 1:] &= window[:, 1:] != window[:, :-1]
    values = scores[rows[:, None], np.where(keep, window, 0)]
    target = scores[rows, targets][:, None]
    higher = ((values > target) & keep).sum(axis=1)
    at_least = ((values >= target) & keep).sum(axis=1)
    return metrics.Ranks(ranks.best - higher, ranks.worst - at_least)


def radio_pairs(targets: np.ndarray, cold: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """bool [B]: warm pairs whose target is not among the listener's recent tracks [B, W]."""
    return ~cold & ~(recent == targets[:, None]).any(axis=1)


def _timed(into: _Scored, make: Any, *args: Any) -> np.ndarray:
    """make(*args), its time added to the method's seconds."""
    t = time.perf_counter()
    out = make(*args)
    into.seconds += time.perf_counter() - t
    return out


def _padded(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """A square table over the first candidate rows, grown to n x n with zeros."""
    matrix = sp.csr_matrix(matrix)
    m = matrix.shape[0]
    if m == n:
        return matrix
    indptr = np.append(matrix.indptr, np.full(n - m, matrix.nnz))
    return sp.csr_matrix((matrix.data, matrix.indices, indptr), shape=(n, n))


def _batch_rows(n_candidates: int) -> int:
    return max(16, BATCH_CELLS // max(n_candidates, 1))


def _weights(spec: dict[str, Any], key: str) -> BlendWeights | None:
    return BlendWeights.from_dict(spec[key]) if spec.get(key) else None


def _queries(
    model: ServingModel, catalog: EvalCatalog, before: SessionLog, log: SessionLog, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(q after every event of `log` [E, Q] in log order, track_out [N, Q]) under a model,
    the listeners warmed by `before` (stepped together in time order). Each event is read
    with its own feedback (skip, like, ...), as the worker reads it, unless the model was
    trained as the no-feedback ablation, which read every event as a play."""
    track_in, track_out = catalog_vectors(model, catalog)
    with_feedback = model.manifest.train_config.get("feedback", True)
    _, q = replay_queries(
        model,
        track_in,
        [before.rows, log.rows],
        [before.users, log.users],
        [before.ts, log.ts],
        progress=progress,
        feedback=[before.kinds, log.kinds] if with_feedback else None,
    )
    return q, track_out


def evaluate(
    model: ServingModel,
    train: EventColumns,
    test: EventColumns,
    k: int = 20,
    id_only_model: ServingModel | None = None,
    baseline_blend: BlendWeights | None = None,
    progress: bool = False,
    radio_window: int = 50,
) -> dict[str, Any]:
    """Every method on the same test pairs; returns the report (keys in the module docstring).
    radio_window: the recent events whose tracks the worker never queues again (radio pass)."""
    t0 = time.perf_counter()
    catalog = EvalCatalog.build(model.tracks.track_ids, model.tracks.artist_ids, train, test)
    n, n_warm = catalog.size, catalog.n_warm
    train_log = SessionLog.from_events(train, catalog)
    test_log = SessionLog.from_events(test, catalog)
    pairs = Pairs.from_log(test_log, train_log)
    recent = recent_rows(pairs, radio_window, train_log)
    spec = model.manifest.feature_spec or {}

    served_w, served_source = served_weights(spec)
    base_w, base_source = baseline_blend, "given"
    if base_w is None and _weights(spec, "blend_only"):
        base_w, base_source = _weights(spec, "blend_only"), "manifest"
    if base_w is None:
        base_w, base_source = _tune_on_train_tail(train, k, progress), "tuned-on-train-tail"

    t = time.perf_counter()
    queries = {"gru": _queries(model, catalog, train_log, test_log, progress)}
    if id_only_model is not None:
        queries["id_only_gru"] = _queries(id_only_model, catalog, train_log, test_log, progress)
    replay_seconds = time.perf_counter() - t

    results = {m: _Scored() for m in METHODS if not m.startswith("id_only") or id_only_model}
    id_only_w = served_weights(id_only_model.manifest.feature_spec)[0] if id_only_model else None
    t = time.perf_counter()
    tables = SignalTables.fit(train_log)
    signal_seconds = time.perf_counter() - t
    table_rules = load_transitions(model.dir, catalog.n_table)
    served_rules = tables.rules if table_rules is None else _padded(table_rules, n)
    served_pop = _served_popularity(model, catalog)
    baselines: dict[str, Any] = {}
    for b in (Popularity(), Markov(), SequentialRules(), VSKNN(), ArtistContinuation()):
        baselines[b.name] = _timed(results[b.name], b.fit, train_log)

    passes = _Passes(n_warm, k, np.random.default_rng(0).permutation(n_warm))
    step = _batch_rows(n)
    for lo in tqdm(range(0, pairs.size, step), desc="evaluate", disable=not progress):
        sel = slice(lo, lo + step)
        prefixes = pairs.prefixes(sel)
        targets, cold, window = pairs.target_rows[sel], pairs.cold[sel], recent[sel]
        t = time.perf_counter()
        context = prefixes.session_context()
        s = session_signals(context, tables)
        rules_rows = s["rules"]
        if served_rules is not tables.rules:
            rules_rows = dense_rows(served_rules, context.last_track)
        signals = tuple(s[name] for name in INDICATORS)
        signal_seconds += time.perf_counter() - t
        gru_scores = {}
        for name, (q, track_out) in queries.items():
            gru_scores[name] = _timed(
                results[name], np.matmul, q[pairs.prev_position[sel]], track_out.T
            )
            passes.add(results[name], gru_scores[name], targets, cold, window)
        for name, baseline in baselines.items():
            passes.add(
                results[name],
                _timed(results[name], baseline.score, prefixes),
                targets,
                cold,
                window,
            )
        blends = [
            ("served", gru_scores["gru"], served_w, rules_rows, served_pop),
            ("served_no_gru", None, served_w, rules_rows, served_pop),
            ("blend", None, base_w, s["rules"], s["popularity"]),
        ]
        if id_only_w is not None:
            blends.append(
                ("id_only_served", gru_scores["id_only_gru"], id_only_w, rules_rows, served_pop)
            )
        for name, gru, weights, rules, pop in blends:
            scores = _timed(results[name], blend_scores, gru, rules, *signals, pop, weights)
            passes.add(results[name], scores, targets, cold, window)
    for name in ("served", "served_no_gru", "blend", "id_only_served"):
        if name in results:
            results[name].seconds += signal_seconds
    results["served"].seconds += results["gru"].seconds
    if "id_only_served" in results:
        results["id_only_served"].seconds += results["id_only_gru"].seconds

    report = _report(results, pairs, catalog, k)
    report["served_vs"] = _served_differences(results, pairs.start, k, "warm")
    report["served_vs_cold_full"] = _served_differences(
        results, pairs.start[pairs.cold], k, "cold_full"
    )
    radio = radio_pairs(pairs.target_rows, pairs.cold, recent)
    report["pairs"]["radio"] = int(radio.sum())
    report["radio_window"] = radio_window
    report["served_vs_radio"] = _served_differences(results, pairs.start[radio], k, "radio")
    played = np.zeros(n, dtype=bool)
    played[train_log.rows[train_log.rows >= 0]] = True
    report["candidates"]["table_not_in_train"] = int(
        catalog.n_table - played[: catalog.n_table].sum()
    )
    report["blend"] = {
        "served": served_w.to_dict(),
        "served_source": served_source,
        "baseline": base_w.to_dict(),
        "baseline_source": base_source,
    }
    report["model"] = {
        "dir": str(model.dir),
        "version": model.version,
        "trained": model.manifest.trained,
    }
    report["seconds"] = {
        "replay": round(replay_seconds, 3),
        "total": round(time.perf_counter() - t0, 3),
    }
    return report


def _report(
    results: dict[str, _Scored], pairs: Pairs, catalog: EvalCatalog, k: int
) -> dict[str, Any]:
    """Pairs, candidates and per-method metrics of the report."""
    cold = pairs.cold
    n_cold_candidates = catalog.size - catalog.n_warm
    methods: dict[str, dict[str, float]] = {}
    for name in METHODS:
        if name not in results:
            continue
        r = results[name]
        warm = metrics.Ranks.concat(r.warm)
        cold_ranks = metrics.Ranks.concat(r.cold)
        cold_full = metrics.Ranks.concat(r.cold_full)
        radio = metrics.Ranks.concat(r.radio)
        top = np.concatenate(r.top) if r.top else np.zeros((0, k), np.int64)
        artist_hit = (catalog.artist_codes[top] == pairs.target_artists[:, None]).any(axis=1)
        artist_hit &= pairs.target_artists >= 0
        methods[name] = {
            "hr": metrics.hit_rate(warm, k),
            "mrr": metrics.mrr(warm, k),
            "hr_warm": metrics.hit_rate(warm[~cold], k),
            "mrr_warm": metrics.mrr(warm[~cold], k),
            "hr_radio": metrics.hit_rate(radio, k),
            "mrr_radio": metrics.mrr(radio, k),
            "hr_cold": metrics.hit_rate(cold_ranks, k),
            "mrr_cold": metrics.mrr(cold_ranks, k),
            "hr_cold_full": metrics.hit_rate(cold_full, k),
            "mrr_cold_full": metrics.mrr(cold_full, k),
            "next_artist_hr": float(artist_hit.mean()) if artist_hit.size else 0.0,
            "coverage": metrics.catalog_coverage(top, catalog.n_warm),
            "artist_diversity": metrics.artist_diversity(top, catalog.artist_codes),
            "seconds": round(r.seconds, 3),
        }
    return {
        "k": k,
        "pairs": {"all": pairs.size, "warm": int((~cold).sum()), "cold": int(cold.sum())},
        "candidates": {
            "warm": catalog.n_warm,
            "table": catalog.n_table,
            "cold": n_cold_candidates,
            "all": catalog.size,
        },
        "chance_hr": min(1.0, k / max(catalog.n_warm, 1)),
        "chance_hr_cold": min(1.0, k / max(n_cold_candidates, 1)),
        "chance_hr_cold_full": min(1.0, k / max(catalog.size, 1)),
        "methods": methods,
    }


def _served_differences(
    results: dict[str, _Scored], sessions: np.ndarray, k: int, ranked: str
) -> dict[str, dict[str, dict[str, float]]]:
    """Served minus every other method, HR@k and MRR@k over the pairs of one pass (`ranked`:
    "warm", every pair; "cold_full", the cold ones; "radio", the radio pass's), each with a 95 %
    interval from one paired bootstrap over test sessions (training.bootstrap); `sessions`:
    each pair's session key."""
    served = metrics.Ranks.concat(getattr(results["served"], ranked))
    names = [name for name in results if name != "served"]
    if served.size == 0:
        return {}
    comparisons = []
    for name in names:
        other = metrics.Ranks.concat(getattr(results[name], ranked))
        comparisons.append((metrics.hits(served, k), metrics.hits(other, k)))
        comparisons.append(
            (metrics.reciprocal_ranks(served, k), metrics.reciprocal_ranks(other, k))
        )
    found = SessionBootstrap(sessions).differences(comparisons)
    return {
        name: {"hr": found[2 * i].to_dict(), "mrr": found[2 * i + 1].to_dict()}
        for i, name in enumerate(names)
    }


def tune_blend_weights(
    train: EventColumns,
    valid: EventColumns,
    k: int = 20,
    model: ServingModel | None = None,
    max_gru_pairs: int = 4000,
    progress: bool = False,
) -> dict[str, Any]:
    """Tune the blend on VALIDATION pairs (warm pass): signals from `train`, pairs from `valid`.

    With a model (trained without `valid`), also tunes the served weights, GRU included, on at
    most max_gru_pairs pairs (a seeded sample; memory), the search starting from the tuned blend
    with the GRU at weight 1. Returns {"blend": served weights dict or None, "blend_only":
    baseline weights dict, "valid": {"pairs", "hr_blend_only"[, "gru_pairs", "hr_served",
    "mrr_served", "hr_served_no_gru", "mrr_served_no_gru"]}} (the last two: the served weights
    with the GRU switched off, on the same pairs): store the two dicts in manifest.feature_spec
    by those names.
    """
    table_ids = model.tracks.track_ids if model else np.zeros(0, str)
    table_artists = model.tracks.artist_ids if model else np.zeros(0, str)
    catalog = EvalCatalog.build(table_ids, table_artists, train, valid)
    n_warm = catalog.n_warm
    train_log = SessionLog.from_events(train, catalog)
    valid_log = SessionLog.from_events(valid, catalog)
    pairs = Pairs.from_log(valid_log, train_log)
    tables = SignalTables.fit(train_log)
    warm_targets = np.where(pairs.cold, -1, pairs.target_rows)

    def problem(
        select: np.ndarray, q: np.ndarray | None, track_out: np.ndarray | None, pop: np.ndarray
    ) -> BlendProblem:
        parts = []
        step = _batch_rows(catalog.size)
        for lo in tqdm(range(0, select.size, step), desc="tune", disable=not progress):
            sel = select[lo : lo + step]
            s = session_signals(pairs.prefixes(sel).session_context(), tables)
            gru = None if q is None else q[pairs.prev_position[sel]] @ track_out[:n_warm].T
            signals = [s[name][:, :n_warm] for name in ("rules", *INDICATORS)]
            parts.append(
                BlendProblem.from_dense(gru, *signals, pop[:n_warm], warm_targets[sel], k=k)
            )
        return BlendProblem.concat(parts)

    everything = np.arange(pairs.size)
    only_problem = problem(everything, None, None, tables.popularity)
    only, only_info = tune_blend(
        only_problem,
        k,
        start=BlendWeights(gru=0.0),
        tune=("last_artist", "session_artist", "in_session", "popularity"),
    )
    out: dict[str, Any] = {
        "blend": None,
        "blend_only": only.to_dict(),
        "valid": {"pairs": only_problem.size, "hr_blend_only": only_info["hr"]},
    }
    if model is not None:
        q, track_out = _queries(model, catalog, train_log, valid_log, progress)
        warm = everything[warm_targets >= 0]
        if warm.size > max_gru_pairs:
            warm = np.sort(np.random.default_rng(0).choice(warm, max_gru_pairs, replace=False))
        gru_problem = problem(warm, q, track_out, _served_popularity(model, catalog))
        served, served_info = tune_blend(gru_problem, k, start=only.replace(gru=1.0))
        without = gru_problem.ranks(served.replace(gru=0.0))
        out["blend"] = served.to_dict()
        out["valid"].update(
            gru_pairs=gru_problem.size,
            hr_served=served_info["hr"],
            mrr_served=served_info["mrr"],
            hr_served_no_gru=metrics.hit_rate(without, k),
            mrr_served_no_gru=metrics.mrr(without, k),
        )
    return out


def _served_popularity(model: ServingModel, catalog: EvalCatalog) -> np.ndarray:
    """The popularity the worker blends: the model table's, 0 for every other candidate."""
    pop = np.zeros(catalog.size, np.float32)
    pop[: catalog.n_table] = model.tracks.popularity
    return pop


def _tune_on_train_tail(train: EventColumns, k: int, progress: bool) -> BlendWeights:
    """Blend baseline weights tuned on the last day of --train, signals fitted on the rest."""
    from radio_engine.training.data import split_last_days

    head, tail = split_last_days(train, 1.0)
    tuned = tune_blend_weights(head, tail, k=k, model=None, progress=progress)
    return BlendWeights.from_dict(tuned["blend_only"])


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table, one method a row."""
    k = report["k"]
    p, c = report["pairs"], report["candidates"]
    head = (
        f"pairs: {p['all']} (warm {p['warm']}, cold {p['cold']}); candidates: warm {c['warm']} "
        f"(model table {c['table']}), cold {c['cold']}, all {c['all']}; chance HR@{k}: "
        f"warm {report['chance_hr']:.5f}, cold {report['chance_hr_cold']:.5f}, "
        f"cold in the full catalog {report['chance_hr_cold_full']:.5f}"
    )
    cols = {
        "hr": f"HR@{k}",
        "mrr": f"MRR@{k}",
        "hr_warm": "HR warm",
        "mrr_warm": "MRR warm",
        "hr_radio": "HR radio",
        "mrr_radio": "MRR radio",
        "hr_cold": "HR cold",
        "mrr_cold": "MRR cold",
        "hr_cold_full": "HR c.all",
        "mrr_cold_full": "MRR c.all",
        "next_artist_hr": "artist HR",
        "coverage": "coverage",
        "artist_diversity": "diversity",
        "seconds": "seconds",
    }
    lines = [head, "", f"{'method':<14}" + "".join(f"{t:>10}" for t in cols.values())]
    for name, m in report["methods"].items():
        cells = [f"{m[c_]:>10.1f}" if c_ == "seconds" else f"{m[c_]:>10.4f}" for c_ in cols]
        lines.append(f"{name:<14}" + "".join(cells))
    lines += [
        "",
        "HR/MRR radio: warm pairs whose target is not among the tracks of the listener's last "
        f"{report.get('radio_window', 50)} events, which the radio never queues again, ranked "
        "without those tracks.",
        "HR/MRR cold: cold pairs ranked among the new tracks only; c.all: among all candidates.",
    ]
    for key, pairs in (
        ("served_vs", "all pairs"),
        ("served_vs_radio", "radio pass"),
        ("served_vs_cold_full", "cold pairs, c.all"),
    ):
        if not report.get(key):
            continue
        lines += [
            "",
            f"served minus each method, HR@{k} and MRR@{k} over {pairs} "
            "[95 % interval, sessions resampled]:",
        ]
        for name, d in report[key].items():
            cells = [
                f"{metric} {d[metric]['diff']:+.4f} [{d[metric]['low']:+.4f}, {d[metric]['high']:+.4f}]"
                + ("" if d[metric]["low"] > 0 else " (not clearly above)")
                for metric in ("hr", "mrr")
            ]
            lines.append(f"  {name:<14} " + "   ".join(cells))
    b, model, secs = report["blend"], report["model"], report["seconds"]
    if c.get("table_not_in_train"):
        lines += [
            "",
            f"WARNING: {c['table_not_in_train']} tracks of the model's table never occur in "
            "--train: was the model trained on other data? Unplayed table tracks that the test "
            "plays make 'never played' a hint at the target.",
        ]
    lines += [
        "",
        f"served blend ({b['served_source']}): {b['served']}",
        f"baseline blend ({b['baseline_source']}): {b['baseline']}",
        f"model {model['dir']} version {model['version']} (trained: {model['trained']}); "
        f"replay {secs['replay']:.1f} s, total {secs['total']:.1f} s",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine evaluate --model DIR --train CSV --test CSV [--k 20] [--json]
    [--id-only-model DIR]`: print the report table (or one JSON object)."""
    from radio_engine.training.data import load_events

    for flag in ("train", "test"):
        if not Path(getattr(args, flag)).is_file():
            print(f"--{flag} {getattr(args, flag)}: no such file", file=sys.stderr)
            return 2
    model = ServingModel(args.model, threads=1)
    id_only = ServingModel(args.id_only_model, threads=1) if args.id_only_model else None
    report = evaluate(
        model,
        load_events(args.train),
        load_events(args.test),
        k=args.k,
        id_only_model=id_only,
        progress=sys.stderr.isatty(),
        radio_window=settings.history_length,
    )
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
