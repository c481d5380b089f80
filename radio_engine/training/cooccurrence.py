"""Artist vectors that start from which artists share sessions, before the GRU trains them.

Most tracks of the development file are played about twice, so the GRU has little to learn
each artist's place from; but which artists follow each other within a session is seen
thousands of times. The start vectors are the truncated SVD of the positive pointwise mutual
information (PPMI) of artist pairs up to `window` accepted events apart in one session (the
word2vec-as-matrix-factorisation view: Levy and Goldberg, 2014), scaled to the spread of the
random start they replace. With them the GRU alone learns about twice as fast (README, "Model").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from radio_engine.training.data import Events
from radio_engine.training.encoding import Vocab, accepted_events


def artist_pair_counts(events: Events, vocab: Vocab, window: int) -> sp.csr_matrix:
    """Symmetric counts [A + 1, A + 1] of vocabulary artists 1..window accepted events apart
    in one session of one listener (index 0, the unknown artist, never counts)."""
    kept = events.take(accepted_events(events))
    order = np.lexsort((kept.ts, kept.session_id, kept.user_id))
    artist_index = vocab.artist_index
    artist = np.array([artist_index.get(a, 0) for a in kept.artist_id[order]], dtype=np.int64)
    session = kept.session_id[order]
    user = kept.user_id[order]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for gap in range(1, window + 1):
        a, b = artist[:-gap], artist[gap:]
        same = (session[gap:] == session[:-gap]) & (user[gap:] == user[:-gap]) & (a > 0) & (b > 0)
        rows += [a[same], b[same]]
        cols += [b[same], a[same]]
    n = len(vocab.artists) + 1
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    counts = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts


def ppmi(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Positive pointwise mutual information of a symmetric count matrix."""
    total = counts.sum()
    if total == 0:
        return sp.csr_matrix(counts.shape)
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (row_sums[coo.row] * row_sums[coo.col]))
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def artist_start_vectors(
    events: Events, vocab: Vocab, dims: int, window: int, scale: float
) -> np.ndarray | None:
    """[A + 1, dims] float32 start vectors (row 0 zero; the caller keeps its own unknown row),
    with standard deviation `scale`; None when the data is too small for an SVD."""
    matrix = ppmi(artist_pair_counts(events, vocab, window))
    rank = min(dims, matrix.shape[0] - 2)
    if rank < 1 or matrix.nnz == 0:
        return None
    # a fixed start vector: ARPACK is then deterministic, so training stays reproducible
    start = np.full(matrix.shape[0], 1.0 / np.sqrt(matrix.shape[0]))
    u, s, _ = svds(matrix, k=rank, v0=start)
    vectors = np.zeros((matrix.shape[0], dims), dtype=np.float64)
    vectors[:, :rank] = u * np.sqrt(s)
    vectors[0] = 0.0
    spread = vectors[1:].std()
    if spread == 0:
        return None
    return (vectors * (scale / spread)).astype(np.float32)
