"""The JSON object: headline numbers (null when not measured), every table, the run's context."""

from __future__ import annotations

from typing import Any

import numpy as np

#: results that are whole tables: top-level keys of their own, left out of "details"
TABLES = ("gru", "processor", "rescore")


def summary(r: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The JSON object: the headline numbers (null when not measured) plus everything else."""

    def get(part: str, key: str) -> Any:
        """A finite number from one part of the results, else None."""
        value = (r.get(part) or {}).get(key)
        return value if value is None or np.isfinite(value) else None

    return {
        "engine_events_per_s": get("engine", "events_per_s"),
        "engine_wall_events_per_s": get("engine", "wall_events_per_s"),
        "faust_counter_events_per_s": get("faust", "events_per_s"),
        "aiokafka_loop_events_per_s": get("aiokafka", "events_per_s"),
        "p50_ms": get("latency", "p50_ms"),
        "p99_ms": get("latency", "p99_ms"),
        "max_ms": get("latency", "max_ms"),
        "latency_rate_events_per_s": get("latency", "rate"),
        "latency_no_queue": get("latency", "no_queue"),
        "two_workers_events_per_s": get("two", "events_per_s"),
        "state_bytes_per_listener": get("state", "mean_bytes"),
        "state_bytes_max": get("state", "max_bytes"),
        "audio_rtf": get("audio", "rtf"),
        "processor_us_per_event": row_value(
            r.get("processor"), "batch", 1024, "cpu_with_refine_us_per_event"
        ),
        "rescore_1m_ms_per_listener": row_value(
            r.get("rescore"), "tracks", 1_000_000, "top_k_ms_per_query"
        ),
        "rescore_100k_ratio_to_floor": row_value(
            r.get("rescore"), "tracks", 100_000, "ratio_to_floor"
        ),
        "gru": r.get("gru"),
        "processor": r.get("processor"),
        "rescore": r.get("rescore"),
        "details": {k: v for k, v in r.items() if k not in TABLES},
        **info,
    }


def row_value(rows: list[dict[str, Any]] | None, by: str, at: Any, key: str) -> float | None:
    """`key` of the table row whose `by` is `at`, if that row exists and the value is finite."""
    for row in rows or []:
        if row.get(by) == at:
            value = row.get(key)
            return value if value is not None and np.isfinite(value) else None
    return None


def finite(obj: Any) -> Any:
    """The same structure with every NaN or infinity as None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float | np.floating) and not np.isfinite(obj):
        return None
    return obj
