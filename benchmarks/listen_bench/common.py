"""Constants every phase shares: partitions, probe and latency listener ids, the stall limit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root
PARTITIONS = 8
PROBE = "bench-probe-"  # listener ids of readiness probes (left out of every figure)
LATENCY_TAG = "lat"  # prefix that makes the latency run's listeners new to the worker
STALL_S = 90.0  # a phase fails when its count has not moved for this long

Encoded = list[tuple[bytes, bytes]]  # (key, value) per event
