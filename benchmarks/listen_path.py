"""The listen path, measured in one run against one real Kafka broker, with figures that check out.

    python benchmarks/listen_path.py [--events 20000] [--seconds 10] [--model DIR] [--json OUT.json]
                                     [--skip-two-workers] [--skip-broker | --skip-offline]

Every listens topic has 8 partitions; events are real 30Music rows (`read_events`).
  1. engine       one `radio-engine worker` process over a backlog of N events: events / (last - first
                  queue record's Kafka timestamp), and N / (first send -> last queue record); the
                  worker's own radio_listen_events_total must sum to N
  2. latency      fresh listeners paced at half of (1) for --seconds; per EVENT: the first queue of
                  its listener whose after_event is at or after the event's offset, queue record time
                  minus event record time
  3. faust        the bare Faust counting agent (faust_counter.py), first counted to last counted
  4. aiokafka     consume -> decode + validate -> produce one record per input, sends awaited per
                  fetched batch; the output topic must end up holding N records
  5. two workers  two worker processes in one consumer group, both serving before the backlog
  6. state        bytes per listener: the last changelog record of each key after (1)
  7. processor    no Kafka: Engine.load as the worker does, ListenPipeline.process over 20,000 real
                  events in batches of 512 and 1024 against a dict store (the first 4,000 warm
                  up): CPU and wall us per event, per stage (BatchOutcome.seconds), listeners,
                  catalog rescores and first pools per batch
  8. rescore      no Kafka: top_k_rows (k=200) per query over 10k, 100k and 1M random tracks (dim
                  64, 256 queries, BLAS 1 thread) beside the matrix product alone, its floor
                  (selector_cost.py's helpers)
  9. GRU          ServingModel.step per event at batch 1..4096 beside numpy sgemm of the same shapes
 10. audio        decode + MFCC of real game-music clips: seconds of audio per second of CPU
--skip-broker runs only 7-10 (no Kafka); --skip-offline runs only 1-6.
The worker is reached only through its process interface: the command, RADIO_* variables, HTTP
/metrics and /health, and the Kafka topics. Not a test: nothing here asserts a speed.
The parts live in benchmarks/listen_bench/ (one module per job; see its __init__).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# BLAS and OpenMP to one thread before numpy loads, here and (through the env) in every child
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

BENCHMARKS = Path(__file__).resolve().parent
for _path in (BENCHMARKS.parent, BENCHMARKS):  # the repo root, then benchmarks/ (listen_bench)
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from listen_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main((__doc__ or "").splitlines()[0]))
