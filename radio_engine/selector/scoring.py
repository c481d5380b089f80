"""Exact top-k of many queries over a whole catalog, blocked so top-k never sorts everything.

Scores are q . track_out in float32: one sgemm per block of catalog rows for all queries of the
batch, laid out [rows, queries] (`matrix_block @ q.T`, the fastest order for this shape) into
one reused buffer that stays in cache. Each query keeps a bar, a score that k rows already
beat. One compare per block (against the bar tiled over 64 rows: long inner loops) marks the
few scores above it, one byte each; a pass over those bytes as 64-bit words finds the words
with a hit, and only those words and their scores are kept. Every few blocks the hits are
queued, and merged into each query's best k when enough have queued; a merge raises the bars.

So that almost no row beats the bar from the start, the bar is first guessed from a strided
sample of the catalog (1 row in 64). A guess is not a proof: a query that ends with fewer than
k rows above its guess is scored again without one (rare by construction, see `_guess_bar`).

The answer is exact: rows are ranked by (score desc, row asc), the order a stable full sort of
the same float32 scores gives, ties included.
"""

from __future__ import annotations

import math

import numpy as np

#: catalog rows per sgemm for a batch of 256: the block's scores [block, B] (1 MiB) stay in L2
DEFAULT_BLOCK = 1024
#: with the default block, smaller batches get more rows per sgemm, up to this many scores
_BLOCK_SCORES = DEFAULT_BLOCK * 256
#: blocks whose hits are gathered before they are unpacked and queued (fewer small calls)
_SPAN_BLOCKS = 8
#: block rows compared per call: the bar tiled this many times makes long, cheap inner loops
_TILE = 64
#: every this-many-th catalog row is scored first to guess the bar
_SAMPLE_STEP = 64
#: the sample's scores are reduced to this many group maxima per query before the guess
_SAMPLE_GROUPS = 128
#: chance, per query, that the guessed bar is too high (that query is then scored again)
_GUESS_MISS = 1e-4
#: smaller catalogs are scanned without a guessed bar
_GUESS_MIN_ROWS = 32_768
#: once every query holds k rows, candidates wait until there are this many times k per query
#: on average, then merge (each merge raises the bars)
_MERGE_EVERY = 0.25

_ROW_BITS = np.int64(0xFFFFFFFF)


def top_k_rows(
    queries: np.ndarray,
    matrix: np.ndarray,
    k: int,
    active: np.ndarray | None = None,
    block: int = DEFAULT_BLOCK,
    prune: bool = True,
) -> np.ndarray:
    """Row indices [B, k'] of the k best-scoring active rows for each query, best first.

    k' = min(k, active rows). Rows are ranked by score, equal scores in row order (exactly
    what a stable full sort gives). `block` is the catalog rows per product (rounded up to a
    multiple of 8; left at the default, batches under 256 get more rows: fewer, fuller calls).
    `prune=False` runs the plain two-stage merge (every block partitioned; ties
    at the k-th score left to argpartition), kept for the benchmark.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    b, n = queries.shape[0], matrix.shape[0]
    dead = None
    if active is not None:
        active = np.asarray(active[:n], dtype=bool)
        live = int(np.count_nonzero(active))
        if live < n:
            dead = np.flatnonzero(~active)
        k = min(k, live)
    k = min(k, n)
    if k <= 0 or b == 0:
        return np.zeros((b, 0), dtype=np.int64)
    if not prune:
        return _plain(queries, matrix, k, dead, block)
    if matrix.dtype != np.float32:
        matrix = np.asarray(matrix, dtype=np.float32)
    if block == DEFAULT_BLOCK:
        block = max(block, _BLOCK_SCORES // b)
    block = max(8, -(-block // 8) * 8)  # a multiple of 8: every block starts on a mask word
    rows, guessed = _scan(queries, matrix, k, dead, block, guess=n >= _GUESS_MIN_ROWS)
    short = rows[:, -1] < 0
    if short.any():
        # a guessed bar that was too high (rare): score those queries again without a guess
        redo = np.flatnonzero(short & guessed)
        if redo.size:
            rows[redo] = _scan(queries[redo], matrix, k, dead, block, guess=False)[0]
        # no k rows above -inf (NaN or infinite vectors): the plain path copes
        redo = np.flatnonzero(rows[:, -1] < 0)
        if redo.size:
            rows[redo] = _plain(queries[redo], matrix, k, dead, block)
    return rows


def _scan(
    queries: np.ndarray,
    matrix: np.ndarray,
    k: int,
    dead: np.ndarray | None,
    block: int,
    guess: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows [B, k] of the pruned scan (-1 where a query found fewer than k) and which queries
    started from a guessed bar (their answer is exact only when they found k rows)."""
    b, n = queries.shape[0], matrix.shape[0]
    q_t = np.ascontiguousarray(queries.T)
    scores = np.empty(block * b, dtype=np.float32)  # one block's scores, reused: stays in cache
    best = _Best(b, k)
    guessed = np.zeros(b, dtype=bool)
    if guess:
        bar = _guess_bar(q_t, matrix, k, dead, scores)
        if bar is not None:
            np.maximum(best.bar, bar, out=best.bar)
            guessed = np.isfinite(bar)
    above = np.zeros(-(-block * b // 8) * 8, dtype=bool)  # score > bar, one byte per score
    buffers = (scores, above, above.view(np.uint64), np.empty(above.size // 8, dtype=bool))
    score_words = scores.reshape(-1, 8)  # the 8 scores under each mask word
    full = _block_views(buffers, block, b)
    bar_tiled = np.tile(best.bar, _TILE)
    seen = best.merges
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        m = stop - start
        s, s_cmp, above_cmp, tiled, words, hit_words = (
            full if m == block else _block_views(buffers, m, b)
        )
        np.matmul(matrix[start:stop], q_t, out=s)
        if dead is not None:
            lo, hi = np.searchsorted(dead, (start, stop))
            if hi > lo:
                s[dead[lo:hi] - start] = -np.inf
        if start == 0 and m > k and not guessed.any():
            # the first block's own k-th score is a bar for every query
            kth = np.partition(s, m - k, axis=0)[m - k]
            np.maximum(best.bar, np.nextafter(kth, np.float32(-np.inf)), out=best.bar)
            seen = -1
        if best.merges != seen:
            bar_tiled, seen = np.tile(best.bar, _TILE), best.merges
        np.greater(s_cmp, bar_tiled if tiled else best.bar, out=above_cmp)
        np.not_equal(words, 0, out=hit_words)
        hit = np.flatnonzero(hit_words)  # the few mask words with a hit: keep them and their scores
        if hit.size:
            parts.append((hit + start * b // 8, np.take(score_words, hit, axis=0), words[hit]))
        if len(parts) >= _SPAN_BLOCKS or (parts and stop == n):
            best.add(*_unpack(parts, b))
            parts = []
    best.merge()
    return best.rows(), guessed


def _block_views(
    buffers: tuple[np.ndarray, ...], m: int, b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray]:
    """Views for a block of m rows: its scores [m, B]; the scores and the mask to compare them
    into, as `_TILE`-row tiles when m allows (then `tiled`) or as [m, B]; its mask words and the
    flags saying which words hold a hit."""
    scores, above, words, hit_words = buffers
    s = scores[: m * b].reshape(m, b)
    mask = above[: m * b]
    nwords = -(-m * b // 8)
    above[m * b : nwords * 8] = False  # a short last block: the rest of its last word
    tiled = m % _TILE == 0
    shape = (m // _TILE, _TILE * b) if tiled else (m, b)
    return s, s.reshape(shape), mask.reshape(shape), tiled, words[:nwords], hit_words[:nwords]


def _unpack(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, row, score) of every hit in the kept mask words.

    Each part holds global word numbers (8 scores of the [rows, B] layout each), the 8 scores
    and the mask word; the set bytes of the words are the hits.
    """
    where, scores, bits = (np.concatenate(part) for part in zip(*parts, strict=True))
    j = np.flatnonzero(bits.view(bool))
    row, qi = np.divmod(np.take(where, j >> 3) * 8 + (j & 7), b)
    return qi, row, np.take(scores, j)


def _guess_bar(
    q_t: np.ndarray, matrix: np.ndarray, k: int, dead: np.ndarray | None, buffer: np.ndarray
) -> np.ndarray | None:
    """A bar per query that k catalog rows very likely beat, from a strided sample of rows.

    Not a proof: a query that ends with fewer than k rows above it is scored again. The sample
    is cut into groups; the j-th best group maximum is never above the sample's j-th best score,
    and j is chosen so that fewer than k catalog rows beat that with chance `_GUESS_MISS`. The
    sample is scored in chunks through `buffer` (a block's worth of scores) to stay in cache.
    """
    n, b = matrix.shape[0], q_t.shape[1]
    sample = matrix[::_SAMPLE_STEP]
    size = sample.shape[0]
    j = _poisson_quantile(k * size / n, _GUESS_MISS)
    groups = min(_SAMPLE_GROUPS, size)
    if 2 * j > groups:
        return None
    per = size // groups
    chunk = max(1, buffer.size // (per * b))  # groups scored per product
    tops = np.empty((groups, b), dtype=np.float32)
    for g0 in range(0, groups, chunk):
        g1 = min(g0 + chunk, groups)
        scores = buffer[: (g1 - g0) * per * b].reshape((g1 - g0) * per, b)
        np.matmul(sample[g0 * per : g1 * per], q_t, out=scores)
        if dead is not None:
            lo, hi = np.searchsorted(dead, (g0 * per * _SAMPLE_STEP, g1 * per * _SAMPLE_STEP))
            rows = dead[lo:hi]
            rows = rows[rows % _SAMPLE_STEP == 0] // _SAMPLE_STEP - g0 * per
            scores[rows] = -np.inf
        np.max(scores.reshape(g1 - g0, per, b), axis=1, out=tops[g0:g1])
    return np.partition(tops, groups - j, axis=0)[groups - j]


def _poisson_quantile(mean: float, miss: float) -> int:
    """Smallest j with P(Poisson(mean) >= j - 1) <= miss.

    The guess fails only if the j - 1 sample rows above it are all among the true top k - 1;
    the number of true top-k rows a 1-in-`step` sample holds is about Poisson(k / step).
    """
    term = cdf = math.exp(-mean)
    j = 0
    while 1.0 - cdf > miss:
        j += 1
        term *= mean / j
        cdf += term
    return j + 2


class _Best:
    """Each query's best k so far as sortable int64 keys, its bar, and candidates to merge.

    A key packs the score (order-preserving int32) above the inverted row, so one integer
    comparison ranks by score desc then row asc; a slot no row has filled holds `_EMPTY`.
    """

    def __init__(self, b: int, k: int) -> None:
        self.k = k
        self.keys = np.full((b, k), _EMPTY, dtype=np.int64)
        self.bar = np.full(b, -np.inf, dtype=np.float32)
        self.counts = np.zeros(b, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.total = 0
        self.merges = 0
        self.every = k * b  # no bar can rise before a query holds k rows

    def add(self, qi: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> None:
        """Queue candidates (query, row, score); merge once enough have queued."""
        self.pending.append((qi, rows, scores))
        self.counts += np.bincount(qi, minlength=self.counts.size)
        self.total += qi.size
        if self.total >= self.every or int(self.counts.max()) >= 4 * self.k:
            self.merge()

    def merge(self) -> None:
        """Fold the queued candidates into the best k and raise each query's bar."""
        if not self.pending:
            return
        qi, rows, scores = (np.concatenate(part) for part in zip(*self.pending, strict=True))
        b, k = self.keys.shape
        width = int(self.counts.max())
        order = np.argsort(qi.astype(np.int16) if b <= 32_767 else qi, kind="stable")
        qi = qi[order]
        slot = np.arange(qi.size) - (np.cumsum(self.counts) - self.counts)[qi]
        table = np.full((b, k + width), _EMPTY, dtype=np.int64)
        table[:, :k] = self.keys
        table.ravel()[qi * (k + width) + k + slot] = _keys(scores[order], rows[order])
        self.keys = np.partition(table, width, axis=1)[:, width:]
        kth = self.keys.min(axis=1)
        np.maximum(self.bar, _key_scores(kth), out=self.bar)
        if kth.min() != _EMPTY:  # every query holds k rows: from now on merge little and often
            self.every = max(1, int(_MERGE_EVERY * k)) * b
        self.pending, self.total = [], 0
        self.counts[:] = 0
        self.merges += 1

    def rows(self) -> np.ndarray:
        """Rows [B, k] best first; -1 in slots no row filled."""
        keys = np.sort(self.keys, axis=1)[:, ::-1]
        rows = _ROW_BITS - (keys & _ROW_BITS)
        rows[keys == _EMPTY] = -1
        return rows


def _keys(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """int64 keys ordered like (score, -row): the score's bits made order-preserving, then row."""
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0.0)).view(np.int32)  # -0.0 -> 0.0
    bits = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))
    return (bits.astype(np.int64) << 32) | (_ROW_BITS - rows)


def _key_scores(keys: np.ndarray) -> np.ndarray:
    """The float32 scores packed in keys."""
    bits = (keys >> 32).astype(np.int32)
    return (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


#: the key below every real one: score -inf, row 2**32 - 1
_EMPTY = _keys(np.array([-np.inf], np.float32), np.array([0xFFFFFFFF], np.int64))[0]


def _plain(
    queries: np.ndarray, matrix: np.ndarray, k: int, dead: np.ndarray | None, block: int
) -> np.ndarray:
    """The plain two-stage merge: every block's own top-k, merged into the running best k."""
    b, n = queries.shape[0], matrix.shape[0]
    best_rows = np.zeros((b, 0), dtype=np.int64)
    best_scores = np.zeros((b, 0), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = queries @ matrix[start:stop].T
        if dead is not None:
            lo, hi = np.searchsorted(dead, (start, stop))
            scores[:, dead[lo:hi] - start] = -np.inf
        rows, top = _block_top(scores, k, start)
        best_rows, best_scores = _keep_best(
            np.concatenate([best_rows, rows], axis=1),
            np.concatenate([best_scores, top], axis=1),
            k,
        )
    return _sorted(best_rows, best_scores)


def _block_top(scores: np.ndarray, k: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage one: the best k columns of one block's scores, as global rows and their scores."""
    m = scores.shape[1]
    if m <= k:
        rows = np.broadcast_to(np.arange(start, start + m, dtype=np.int64), scores.shape)
        return rows, scores
    part = np.argpartition(scores, m - k, axis=1)[:, m - k :]
    return part + start, np.take_along_axis(scores, part, axis=1)


def _keep_best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage two: the best k of each query's candidates."""
    w = rows.shape[1]
    if w <= k:
        return rows, scores
    part = np.argpartition(scores, w - k, axis=1)[:, w - k :]
    return np.take_along_axis(rows, part, axis=1), np.take_along_axis(scores, part, axis=1)


def _sorted(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows best first, equal scores in row order."""
    by_row = np.argsort(rows, axis=1, kind="stable")
    rows = np.take_along_axis(rows, by_row, axis=1)
    scores = np.take_along_axis(scores, by_row, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1)


def top_k_naive(queries: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    """Reference: full product and a full sort (the baseline the benchmark compares against)."""
    scores = np.asarray(queries, dtype=np.float32) @ matrix.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]
