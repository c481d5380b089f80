"""Sequential rules (session-rec's SR): how often track b follows track a closely in a session.

For every session and every pair of positions i < j with j - i <= window, rules[a, b] grows by
1 / (j - i). The table is a CSR matrix over track-table rows; a model directory may carry it
as transitions.npz for the served blend (the file format: radio_engine/model/transitions.py).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from radio_engine.training.pairs import EvalCatalog, EventColumns, SessionLog

#: how far ahead in a session a later track still counts as following (session-rec: 10)
DEFAULT_WINDOW = 10


def sr_matrix(
    rows: np.ndarray,
    session_of: np.ndarray,
    n_items: int,
    window: int = DEFAULT_WINDOW,
    keep_per_item: int = 0,
) -> sp.csr_matrix:
    """SR weights from events in session order: rows [E] item rows (-1 unknown, skipped).

    session_of [E] numbers each event's session; positions stay those of the session, so an
    unknown track still counts in the gap. keep_per_item > 0 keeps only each item's strongest
    rules (session-rec's pruning); ties keep the lower column.
    """
    rows = np.asarray(rows, dtype=np.int64)
    session_of = np.asarray(session_of)
    src, dst, weight = [], [], []
    for gap in range(1, window + 1):
        a, b = rows[:-gap], rows[gap:]
        same = session_of[:-gap] == session_of[gap:]
        if not same.any():
            break  # no session is longer than this gap
        keep = same & (a >= 0) & (b >= 0)
        src.append(a[keep])
        dst.append(b[keep])
        weight.append(np.full(int(keep.sum()), 1.0 / gap, dtype=np.float32))
    if not src:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    matrix = sp.coo_matrix(
        (np.concatenate(weight), (np.concatenate(src), np.concatenate(dst))),
        shape=(n_items, n_items),
    ).tocsr()
    matrix.sum_duplicates()
    if keep_per_item > 0:
        matrix = _keep_strongest(matrix, keep_per_item)
    return matrix


def _keep_strongest(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the `keep` largest entries of every row."""
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= keep:
        return matrix
    row_of = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.indices, -matrix.data, row_of))
    rank = np.arange(order.size) - np.repeat(matrix.indptr[:-1], counts)
    chosen = order[rank < keep]
    out = sp.csr_matrix(
        (matrix.data[chosen], (row_of[chosen], matrix.indices[chosen])), shape=matrix.shape
    )
    out.sort_indices()
    return out


def build_rules(
    events: EventColumns,
    track_ids: np.ndarray,
    window: int = DEFAULT_WINDOW,
    keep_per_item: int = 0,
) -> sp.csr_matrix:
    """SR table [N, N] over a track table given as its ids in row order (tracks.npz order).

    Events are grouped by (fold, session) and put in time order (ties: file order); tracks
    outside the table are skipped but still count in the gaps.
    """
    track_ids = np.asarray(track_ids).astype(str)
    catalog = EvalCatalog(
        track_ids=track_ids,
        artist_codes=np.full(track_ids.shape[0], -1, dtype=np.int64),
        artist_names=np.zeros(0, dtype=str),
        n_table=int(track_ids.shape[0]),
        n_warm=int(track_ids.shape[0]),
    )
    log = SessionLog.from_events(events, catalog)
    return sr_matrix(log.rows, log.session_of_event(), catalog.size, window, keep_per_item)
