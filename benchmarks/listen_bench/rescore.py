"""Phase 8, no Kafka: a full-catalog rescore (top-k) per listener beside its matrix-product floor.

Reuses benchmarks/selector_cost.py's `timed` and `_product` (the scores alone, blocked like
top_k_rows) so both benchmarks measure the floor the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from radio_engine.selector.scoring import top_k_rows

RESCORE_SIZES = (10_000, 100_000, 1_000_000)
RESCORE_DIM = 64
RESCORE_QUERIES = 256
RESCORE_K = 200  # the default pool_size
UNBLOCKED_MAX = 100_000  # above this, `queries @ matrix.T` at once would take >100 MB


def rescore_row(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """ms per query at one catalog size: the blocked product, top_k_rows, and their ratio."""
    import selector_cost  # here, not at the top: a broken copy fails this phase only

    matrix = rng.standard_normal((n, RESCORE_DIM), dtype=np.float32)
    queries = rng.standard_normal((RESCORE_QUERIES, RESCORE_DIM), dtype=np.float32)
    budget = 0.5 if n < 1_000_000 else 1.0
    floor = selector_cost.timed(lambda: selector_cost._product(queries, matrix), budget, 10)
    top = selector_cost.timed(lambda: top_k_rows(queries, matrix, RESCORE_K), budget, 10)
    unblocked = float("nan")
    if n <= UNBLOCKED_MAX:
        unblocked = selector_cost.timed(lambda: queries @ matrix.T, budget, 10)
    return {
        "tracks": n,
        "dim": RESCORE_DIM,
        "queries": RESCORE_QUERIES,
        "k": RESCORE_K,
        "floor_ms_per_query": floor / RESCORE_QUERIES * 1e3,
        "unblocked_product_ms_per_query": unblocked / RESCORE_QUERIES * 1e3,
        "top_k_ms_per_query": top / RESCORE_QUERIES * 1e3,
        "ratio_to_floor": top / floor,
    }


def rescore_table() -> list[dict[str, Any]]:
    """One row per catalog size in RESCORE_SIZES (random vectors, one BLAS thread)."""
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for n in RESCORE_SIZES:
            rows.append(rescore_row(n, rng))
            r = rows[-1]
            print(
                f"  {n:,} tracks: floor {r['floor_ms_per_query']:.3f} ms, top_k_rows "
                f"{r['top_k_ms_per_query']:.3f} ms per query ({r['ratio_to_floor']:.1f}x)",
                flush=True,
            )
    return rows
