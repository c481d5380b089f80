"""The offline phases' tables: processor alone, full-catalog rescore, GRU vs sgemm, audio."""

from __future__ import annotations

from typing import Any

from listen_bench.markdown import num, table
from listen_bench.offline import CHUNK_SECONDS
from listen_bench.processor import PROCESSOR_EVENTS
from listen_bench.rescore import RESCORE_DIM, RESCORE_K, RESCORE_QUERIES


def print_offline_tables(r: dict[str, Any]) -> None:
    """Processor alone, full-catalog rescore, GRU against sgemm, audio real-time factor."""
    if r.get("processor"):
        processor_table(r["processor"])
    if r.get("rescore"):
        rescore_table(r["rescore"])
    if r.get("gru"):
        table(
            "GRU step (onnxruntime, 1 thread) vs numpy sgemm of the same shapes (BLAS 1 thread)",
            ["batch", "step us/event", "sgemm 3 gates us/event", "+ query head us/event",
             "step / gates"],
            [[str(g["batch"]), f"{g['step_us']:.2f}", f"{g['sgemm_gates_us']:.2f}",
              f"{g['sgemm_with_head_us']:.2f}", f"{g['step_over_gates']:.1f}x"] for g in r["gru"]],
        )  # fmt: skip
    if r.get("audio"):
        a = r["audio"]
        table(
            f"Audio ingest, {a['clips']} real clips, {a['audio_s']:.0f} s of audio",
            ["stage", "CPU s", "seconds of audio per CPU second"],
            [["decode (.ogg, soundfile)", f"{a['decode_cpu_s']:.2f}", f"{a['decode_rtf']:.0f}"],
             ["MFCC + deltas", f"{a['mfcc_cpu_s']:.2f}", f"{a['mfcc_rtf']:.0f}"],
             ["decode + MFCC", f"{a['decode_cpu_s'] + a['mfcc_cpu_s']:.2f}", f"{a['rtf']:.0f}"],
             [f"worker path: FLAC {CHUNK_SECONDS:g} s chunks + MFCC + encoder",
              f"{a['worker_path_cpu_s']:.2f}", f"{a['worker_path_rtf']:.0f}"]],
        )  # fmt: skip


def processor_table(rows: list[dict[str, Any]]) -> None:
    """Per event and per batch figures of the listen processor run in-process, no Kafka."""
    stages = ("decode", "load_state", "gru", "selector", "encode", "total")
    table(
        f"Listen processor alone (Engine.load + ListenPipeline.process, no Kafka), real 30Music "
        f"events: the first {rows[0]['warmup_events']:,} warm up, the rest of "
        f"{PROCESSOR_EVENTS:,} measured",
        ["batch", "events (batches)", "CPU us/event", "+ refine CPU us/event", "wall us/event",
         *(f"{s} us/event" for s in stages), "listeners/batch", "rescores/batch",
         "first pools/batch", "refined/batch"],
        [[str(p["batch"]), f"{p['events']:,} ({p['batches']})", f"{p['cpu_us_per_event']:.1f}",
          f"{p['refine_cpu_us_per_event']:.1f}", f"{p['wall_us_per_event']:.1f}",
          *(f"{p['stage_us_per_event'][s]:.1f}" for s in stages),
          f"{p['listeners_per_batch']:.1f}", f"{p['rescores_per_batch']:.1f}",
          f"{p['first_pools_per_batch']:.1f}", f"{p['refined_per_batch']:.1f}"] for p in rows],
    )  # fmt: skip
    print(
        "stage columns: wall time from BatchOutcome.seconds; CPU: time.process_time of "
        "ListenPipeline.process; refine: one Selector.refine tick after each batch (the "
        "worker's off-path rescores of new listeners), timed apart"
    )
    for p in rows:
        counted = ", ".join(f"{k}={v:,}" for k, v in p["outcomes"].items())
        print(
            f"batch {p['batch']}: {counted}; {p['dead_letters']} dead letters, "
            f"{p['unknown_tracks']} unknown tracks, {p['listeners_stored']:,} listeners stored, "
            f"engine loaded in {p['engine_load_s']:.2f} s"
        )
    print()


def rescore_table(rows: list[dict[str, Any]]) -> None:
    """Full-catalog top-k per query beside the matrix product alone."""
    table(
        f"Full-catalog rescore, top-{RESCORE_K} for {RESCORE_QUERIES} queries, dim {RESCORE_DIM} "
        "float32, BLAS 1 thread: ms per query (= per listener rescored)",
        ["tracks", "floor: product alone, blocked", "product, unblocked q @ M.T", "top_k_rows",
         "top_k_rows / floor", "rescores/s"],
        [[f"{x['tracks']:,}", num(x["floor_ms_per_query"], ".3f"),
          num(x["unblocked_product_ms_per_query"], ".3f"), num(x["top_k_ms_per_query"], ".3f"),
          f"{x['ratio_to_floor']:.2f}x", num(1e3 / x["top_k_ms_per_query"])] for x in rows],
    )  # fmt: skip
    print(
        "floor: benchmarks/selector_cost.py's _product (the scores alone, blocked like "
        "top_k_rows); unblocked left out above 100,000 tracks\n"
    )
