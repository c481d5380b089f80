"""Selector cost per listener against catalog size: top-k variants, batch sizes, serving paths.

    python benchmarks/selector_cost.py [--sizes 10000,100000,1000000] [--threads 1]

Prints three tables with the machine and settings:
1. top-k of a batch of queries over the whole catalog (naive full sort, the product alone as
   the floor, blocked two-stage, blocked with the k-th-score bar), per query;
2. Selector.update per listener on each path: pool re-rank (a plain event), top-up (new tracks
   arrived), batched catalog rescore (strong feedback / new listener);
3. the listener state: bytes and (de)serialisation time.
Synthetic random vectors (dim 64): the cost does not depend on what the vectors mean.
Runs in well under two minutes on one core.
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv() -> str:
    """BLAS threads must be fixed before numpy loads: read --threads early."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_from_argv()

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from radio_engine.catalog import Catalog  # noqa: E402
from radio_engine.listeners.state import ListenerState  # noqa: E402
from radio_engine.selector.blend import BlendWeights  # noqa: E402
from radio_engine.selector.scoring import DEFAULT_BLOCK, top_k_naive, top_k_rows  # noqa: E402
from radio_engine.selector.selector import ListenerUpdate, Selector  # noqa: E402
from radio_engine.settings import Settings  # noqa: E402

DIM = 64
HIDDEN = 128
#: block of the plain two-stage merge ("blocked" column): it partitions every block, so it
#: wants blocks much larger than the pruned scan's
PLAIN_BLOCK = 16384


def timed(fn: Callable[[], object], budget_s: float = 0.4, most: int = 30) -> float:
    """Median seconds of one call, repeating within a small time budget (one warm-up call)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < most and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_catalog(n: int, rng: np.random.Generator) -> Catalog:
    """n random tracks, ten per artist, popularity ~ Zipf."""
    out = rng.standard_normal((n, DIM), dtype=np.float32)
    ids = [str(1_000_000 + i) for i in range(n)]
    artists = [str(i // 10) for i in range(n)]
    pop = rng.zipf(1.5, n).clip(max=10_000).astype(np.float32)
    return Catalog.from_arrays(ids, artists, np.zeros((n, 1), np.float32), out, pop)


def listeners(c: Catalog, b: int, history: int, rng: np.random.Generator) -> list[ListenerState]:
    """b listeners with a full history of random catalog tracks."""
    states = []
    for _ in range(b):
        rows = rng.integers(0, c.size, history)
        s = ListenerState.new(rng.standard_normal(HIDDEN).astype(np.float32))
        s.recent = [c.ids[r] for r in rows]
        s.recent_artists = [c.artists[r] for r in rows]
        s.session_len = 10
        s.events = history
        states.append(s)
    return states


def topk_table(sizes: list[int], k: int, rng: np.random.Generator) -> list[list[str]]:
    """Per-query milliseconds of each top-k variant, by catalog size and batch size."""
    rows = []
    for n in sizes:
        matrix = rng.standard_normal((n, DIM), dtype=np.float32)
        for b in (1, 16, 64, 256):
            rows.append(_topk_row(matrix, rng.standard_normal((b, DIM), dtype=np.float32), k))
            print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _topk_row(matrix: np.ndarray, q: np.ndarray, k: int) -> list[str]:
    """One table row: naive (skipped where it would take long), floor, blocked, blocked+bar."""
    n, b = matrix.shape[0], q.shape[0]
    budget = 0.3 if n < 1_000_000 else 0.15
    naive = float("nan")
    if b * n <= 16_000_000:
        naive = timed(lambda: top_k_naive(q, matrix, k), budget, 3) / b
    product = timed(lambda: _product(q, matrix), budget, 5) / b
    plain = timed(lambda: top_k_rows(q, matrix, k, block=PLAIN_BLOCK, prune=False), budget, 5) / b
    pruned = timed(lambda: top_k_rows(q, matrix, k), budget, 5) / b
    gain = f"{naive / pruned:.1f}x" if naive == naive else "-"
    return [f"{n:,}", str(b), _ms(naive), _ms(product), _ms(plain), _ms(pruned), gain]


def _product(q: np.ndarray, matrix: np.ndarray) -> None:
    """The scores alone, computed as top_k_rows computes them (blocks of `matrix_block @ q.T`
    into one reused buffer, the fastest form here): the floor any exact top-k pays."""
    q_t = np.ascontiguousarray(q.T)
    out = np.empty((DEFAULT_BLOCK, q.shape[0]), dtype=np.float32)
    for start in range(0, matrix.shape[0], DEFAULT_BLOCK):
        block = matrix[start : start + DEFAULT_BLOCK]
        np.matmul(block, q_t, out=out[: block.shape[0]])


def selector_table(
    sizes: list[int], batch: int, settings: Settings, rng: np.random.Generator
) -> list[list[str]]:
    """Per-listener microseconds of Selector.update on each path, GRU-only and blended."""
    rows = []
    for n in sizes:
        c = make_catalog(n, rng)
        for label, weights in (("gru", None), ("blend", BlendWeights())):
            sel = Selector(settings, c)
            if weights is not None:
                sel.weights = weights
            states = listeners(c, batch, settings.history_length, rng)
            qs = rng.standard_normal((batch, DIM), dtype=np.float32)

            def run(
                strong: bool, sel: Selector = sel, states: list = states, qs: np.ndarray = qs
            ) -> list:
                wiggle = qs + 0.05 * rng.standard_normal(qs.shape, dtype=np.float32)
                return sel.update(
                    [
                        ListenerUpdate(str(i), s, wiggle[i], strong_feedback=strong)
                        for i, s in enumerate(states)
                    ]
                )

            rescore = timed(lambda: run(True), 0.5, 5) / batch
            rerank = timed(lambda: run(False), 0.5, 20) / batch
            results = run(False)
            assert not any(r.rescored for r in results), "re-rank path rescored"

            def topup(sel: Selector = sel, run: Callable = run) -> None:
                for i in range(10):  # ten new tracks arrive between two events
                    vec = rng.standard_normal(DIM).astype(np.float32)
                    sel.catalog.upsert(f"new-{sel.catalog.epoch}-{i}", np.zeros(1), vec)
                results = run(False)
                assert all(r.topped_up for r in results), "top-up path rescored"

            top_up = timed(topup, 0.5, 10) / batch
            rows.append(
                [
                    f"{n:,}",
                    label,
                    _us(rerank),
                    _us(top_up),
                    _us(rescore),
                    f"{1 / rerank:,.0f}",
                    f"{1 / rescore:,.0f}",
                ]
            )
            print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def state_table(settings: Settings, rng: np.random.Generator) -> list[list[str]]:
    """Bytes of a listener in full flow, and the time to write and read them."""
    c = make_catalog(50_000, rng)
    [s] = listeners(c, 1, settings.history_length, rng)
    sel = Selector(settings, c)
    sel.update([ListenerUpdate("u", s, rng.standard_normal(DIM).astype(np.float32))])
    s.disliked, s.skipped = s.recent[:3], s.recent[3:8]
    raw = s.to_bytes()
    write = timed(s.to_bytes, 0.2, 2000)
    read = timed(lambda: ListenerState.from_bytes(raw), 0.2, 2000)
    new = ListenerState.new(np.zeros(HIDDEN, np.float32)).to_bytes()
    return [
        [
            f"{len(raw):,}",
            f"{len(new):,}",
            str(sel.pools.get("u").rows.size),  # type: ignore[union-attr]
            str(len(s.recent)),
            _us(write),
            _us(read),
        ]
    ]


def _cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1e3:.3f}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def table(title: str, head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join(" --- " for _ in head) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="catalog sizes")
    parser.add_argument("--batch", type=int, default=256, help="listeners per selector batch")
    parser.add_argument("--threads", default="1", help="BLAS threads (read before numpy loads)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = Settings.from_env()
    rng = np.random.default_rng(0)
    started = time.perf_counter()

    print(f"# selector cost ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(
        f"machine: {platform.platform()}, {_cpu_model()}, "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.2f}), "
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}"
    )
    print(
        f"settings: queue_length={settings.queue_length} pool_size={settings.pool_size} "
        f"history_length={settings.history_length} artist_window={settings.artist_window} "
        f"artist_max={settings.artist_max} exploration={settings.exploration}; "
        f"vectors dim {DIM}; top-k block {DEFAULT_BLOCK}\n"
    )
    print("top-k ...", file=sys.stderr)
    print(
        table(
            f"top-{settings.pool_size} over the whole catalog, ms per query",
            ["catalog", "batch", "naive sort", "product only", "blocked", "blocked+bar", "gain"],
            topk_table(sizes, settings.pool_size, rng),
        )
    )
    print("selector ...", file=sys.stderr)
    print(
        table(
            f"Selector.update, us per listener (batch of {args.batch} listeners)",
            [
                "catalog",
                "score",
                "pool re-rank",
                "top-up (10 new tracks)",
                "catalog rescore",
                "re-rank listeners/s",
                "rescore listeners/s",
            ],
            selector_table(sizes, args.batch, settings, rng),
        )
    )
    print(
        table(
            "listener state (H=128, full history)",
            [
                "bytes",
                "bytes (new listener)",
                "pool rows",
                "recent ids",
                "to_bytes us",
                "from_bytes us",
            ],
            state_table(settings, rng),
        )
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
