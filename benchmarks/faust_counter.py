"""A bare Faust agent that only counts listen events: Faust's per-message stream path, no work.

Run by listen_path.py as a child process; writes one JSON object to BENCH_OUT when it has counted
N events: {"events": N, "first": wall time of the first event counted, "last": of the N-th}.
Environment: BENCH_BROKER, BENCH_TOPIC, BENCH_N, BENCH_APP, BENCH_OUT (result file).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import faust

app = faust.App(
    os.environ.get("BENCH_APP", "bench-counter"),
    broker=f"kafka://{os.environ['BENCH_BROKER']}",
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
)
topic = app.topic(os.environ["BENCH_TOPIC"], key_type=bytes, value_type=bytes)
target = int(os.environ["BENCH_N"])
seen = {"n": 0, "first": 0.0}


@app.agent(topic)
async def count(stream: faust.StreamT) -> None:
    async for _ in stream:
        if seen["n"] == 0:
            seen["first"] = time.time()
        seen["n"] += 1
        if seen["n"] == target:
            result = {"events": target, "first": seen["first"], "last": time.time()}
            Path(os.environ["BENCH_OUT"]).write_text(json.dumps(result))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()
